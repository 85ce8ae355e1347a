"""Manual check: every visible golden model file loads and predicts within tolerance.

    python scripts/check_shared_models.py [/work/shared/golden]

Not a test (tests may not read ../shared). Exits non-zero on any failure.
"""
import glob
import json
import os
import sys

import numpy as np

import gpulstm.io as gio

FORMATS = {".keras": "k3", ".k3.h5": "k3", ".tfk.h5": "tfk", ".tfk.keras": "tfk"}


def main(root):
    bad = 0
    for npz in sorted(glob.glob(os.path.join(root, "model_*.npz"))):
        z = np.load(npz)
        name = os.path.basename(npz)[len("model_"):-len(".npz")]
        xs = [z[k] for k in sorted(k for k in z.files if k.startswith("x_"))]
        for ext, flavour in FORMATS.items():
            path = os.path.join(root, f"model_{name}{ext}")
            refs = [z[k] for k in sorted(k for k in z.files if k.startswith(f"y_{flavour}_"))]
            try:
                model = gio.load_model(path)
                y = model.predict(xs[0] if len(xs) == 1 else xs, verbose=0)
                ys = y if isinstance(y, list) else [y]
                errs = [float(np.abs(np.asarray(a) - r).max()) for a, r in zip(ys, refs)]
                tol = [1e-5 * max(1.0, float(np.abs(r).max())) for r in refs]
                ok = len(ys) == len(refs) and all(e <= t for e, t in zip(errs, tol))
                params = model.count_params()
                want = json.loads(str(z["meta_json"]))[f"count_params_{flavour}"]
                ok = ok and params == want
                print(f"{'OK ' if ok else 'BAD'} {os.path.basename(path):32s} max|err|={max(errs):.2e} "
                      f"tol={min(tol):.1e} params={params} (want {want})")
            except Exception as e:  # report and keep going
                ok = False
                print(f"ERR {os.path.basename(path):32s} {type(e).__name__}: {e}")
            bad += not ok
    print(f"{bad} failure(s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "/work/shared/golden"))
