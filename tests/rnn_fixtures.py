"""Reading tests/fixtures_rnn (scripts/make_rnn_fixtures.py) with NumPy only, and the
float32 tolerance |out - ref| <= 1e-5 * max(1, max|ref|)."""
import json
import os

import numpy as np

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures_rnn")


def close(got, ref):
    got, ref = np.asarray(got, np.float64), np.asarray(ref, np.float64)
    assert got.shape == ref.shape
    assert np.max(np.abs(got - ref)) <= 1e-5 * max(1.0, float(np.max(np.abs(ref))))


def load(name):
    """``(arrays, {"class_name", "config"}, meta)`` of case ``name``."""
    d = np.load(os.path.join(HERE, f"{name}.npz"), allow_pickle=False)
    return d, json.loads(str(d["config_json"])), json.loads(str(d["meta_json"]))


def weights(d):
    return [d[f"w_{i}"] for i in range(len([k for k in d.files if k.startswith("w_")]))]


def check_call(layer, d):
    """Call ``layer`` on case ``d``'s input (mask, initial states ``h0_*``) and compare
    every output with the case's ``out_*``."""
    kw = {}
    if "mask" in d.files:
        kw["mask"] = d["mask"]
    h0 = sorted((k for k in d.files if k.startswith("h0_")), key=lambda k: int(k[3:]))
    if h0:
        kw["initial_state"] = [d[k] for k in h0]
    res = layer(d["x"], **kw)
    res = res if isinstance(res, list) else [res]
    assert len(res) == len([k for k in d.files if k.startswith("out_")])
    for i, r in enumerate(res):
        close(r, d[f"out_{i}"])
