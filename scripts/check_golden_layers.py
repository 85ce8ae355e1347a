"""Manual check: every single-layer case of ../shared/golden through the public API.

Development aid only (tests must not read ../shared); prints one line per case.
Usage: python scripts/check_golden_layers.py [GOLDEN_DIR] [--backend cpu]
"""
import argparse
import glob
import json
import os

import numpy as np

import gpulstm


def run_case(path, backend):
    z = np.load(path, allow_pickle=False)
    meta = json.loads(str(z["meta_json"]))
    cfg = json.loads(str(z["config_json"]))
    kv = meta["framework_version"]
    layer = gpulstm.LSTM.from_config(cfg, keras_version=kv)
    layer.backend = backend
    w = [z["kernel"], z["recurrent_kernel"]] + ([z["bias"]] if "bias" in z else [])
    layer.set_weights(w)
    call = meta["call"]
    worst = 0.0
    n = meta["n_outputs"]
    calls = meta.get("stateful_calls") or 0
    for k in range(max(calls, 1)):
        kw = {}
        if "mask" in z:
            kw["mask"] = z["mask"]
        if "initial_h" in z:
            kw["initial_state"] = [z["initial_h"], z["initial_c"]]
        if call.get("training") is not None:
            kw["training"] = call["training"]
        x = z["x"][k] if calls else z["x"]
        if calls and z["reset_before"][k]:
            layer.reset_states()
        out = layer(x, **kw)
        outs = out if isinstance(out, list) else [out]
        assert len(outs) == n, (len(outs), n)
        for i, o in enumerate(outs):
            ref = z[f"out_{i}"][k] if calls else z[f"out_{i}"]
            tol = 1e-5 * max(1.0, float(np.abs(ref).max()))
            err = float(np.abs(o - ref).max())
            worst = max(worst, err / tol)
        if calls:
            h, c = layer.states
            worst = max(worst, float(np.abs(h - z["states_after_h"][k]).max()) / 1e-5)
    return worst


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("golden", nargs="?", default=os.path.join(os.path.dirname(__file__), "..", "..", "shared", "golden"))
    ap.add_argument("--backend", default="cpu")
    a = ap.parse_args()
    bad = 0
    for path in sorted(glob.glob(os.path.join(a.golden, "*lstm_*.npz"))):
        try:
            r = run_case(path, a.backend)
            status = "ok " if r <= 1 else "BAD"
        except Exception as exc:  # report and go on
            r, status = float("nan"), f"ERR {type(exc).__name__}: {exc}"
        bad += status != "ok "
        print(f"{status} {os.path.basename(path):55s} err/tol={r:.3g}")
    print(f"{bad} bad")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
