"""Manual check: tests/naive.py against the shared golden LSTM files.

Development aid only (tests never read ../shared).  For every single-layer case
it runs the float64 reference on the stored weights, inputs, mask and initial
state and compares with both the Keras outputs (``out_*``, ``seq``/``h``/``c``)
and the stored float64 reference (``ref64_*``).

    python scripts/check_shared_golden.py [--golden ../shared/golden]
"""
import argparse
import glob
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
import naive  # noqa: E402


def run_case(z):
    """Evaluate one golden/fixture file with naive.py; returns {key: (got, want)} pairs."""
    meta = json.loads(str(z["meta_json"]))
    cfg = json.loads(str(z["config_json"]))
    flavour = "keras2" if meta.get("activation_flavour") in ("tf_keras", "keras2") else "keras3"
    time_major = meta.get("input_layout") == "TBF"
    n_calls = meta.get("stateful_calls") or 0
    bias = z["bias"] if "bias" in z else None
    kw = dict(activation=cfg.get("activation", "tanh"),
              recurrent_activation=cfg.get("recurrent_activation", "sigmoid"),
              go_backwards=cfg.get("go_backwards", False),
              zero_output_for_mask=cfg.get("zero_output_for_mask", False),
              hard_sigmoid=flavour)
    rs, rst = cfg.get("return_sequences", False), cfg.get("return_state", False)

    def one(x, mask, h0, c0):
        if time_major:
            x = np.swapaxes(x, 0, 1)
            mask = None if mask is None else np.swapaxes(mask, 0, 1)
        seq, last, h, c = naive.lstm(x, z["kernel"], z["recurrent_kernel"], bias, h0, c0, mask, **kw)
        if time_major:
            seq = np.swapaxes(seq, 0, 1)
        return seq, last, h, c

    mask = z["mask"] if "mask" in z else None
    h0 = z["initial_h"] if "initial_h" in z else None
    c0 = z["initial_c"] if "initial_c" in z else None
    if n_calls:
        res = []
        h, c = h0, c0
        for k in range(n_calls):
            if z["reset_before"][k]:
                h, c = None, None
            r = one(z["x"][k], mask, h, c)
            h, c = r[2], r[3]
            res.append(r)
        seq, last, h, c = (np.stack(a) for a in zip(*res))
    else:
        seq, last, h, c = one(z["x"], mask, h0, c0)
    pairs = {}
    outs = naive.keras_outputs(seq, last, h, c, rs, rst)
    for i, o in enumerate(outs):
        if f"out_{i}" in z:
            pairs[f"out_{i}"] = (o, z[f"out_{i}"])
    for key, val in (("seq", seq), ("h", h), ("c", c)):
        if key in z:
            pairs[key] = (val, z[key])
    for key, val in (("ref64_seq", seq), ("ref64_last", last), ("ref64_h", h), ("ref64_c", c)):
        if key in z:
            pairs[key] = (val, z[key])
    if "states_after_h" in z:
        pairs["states_after_h"] = (h, z["states_after_h"])
        pairs["states_after_c"] = (c, z["states_after_c"])
    return pairs


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--golden", default=os.path.join(here, "..", "..", "shared", "golden"))
    ap.add_argument("--pattern", default="*lstm_*.npz")
    args = ap.parse_args()
    files = sorted(glob.glob(os.path.join(args.golden, args.pattern)))
    bad = 0
    for path in files:
        with np.load(path, allow_pickle=False) as z:
            pairs = run_case(z)
        worst, worst_key = 0.0, ""
        ok = True
        for key, (got, want) in pairs.items():
            want = np.asarray(want, dtype=np.float64)
            if got.shape != want.shape:
                ok, worst_key = False, f"{key} shape {got.shape} != {want.shape}"
                break
            tol = 1e-5 * max(1.0, float(np.max(np.abs(want))) if want.size else 1.0)
            err = float(np.max(np.abs(got - want))) if want.size else 0.0
            if key.startswith("ref64"):
                tol = 1e-10 * max(1.0, float(np.max(np.abs(want))))  # float64 vs float64
            if not err <= tol:
                ok = False
            if err / tol > worst:
                worst, worst_key = err / tol, f"{key} err={err:.2e} tol={tol:.1e}"
        bad += not ok
        print(f"{'OK  ' if ok else 'FAIL'} {os.path.basename(path):50s} keys={len(pairs)} worst {worst_key}")
    print(f"{len(files) - bad}/{len(files)} files match")
    return 1 if bad or not files else 0


if __name__ == "__main__":
    sys.exit(main())
