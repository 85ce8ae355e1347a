"""Small hostile model files are refused cheaply: < 2 s and < 200 MB of peak memory.

Each file is loaded in a fresh child process; the child takes its peak RSS
(``ru_maxrss``) after the imports as a baseline, loads the file, and reports the
time the load took, how much the peak grew and what was raised.  The files are
made here (tests/hostile_files.py) from the small committed fixtures; the
children run in parallel.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import hostile_files as hf
from gpulstm.io import ModelFileError, load_model

h5py = pytest.importorskip("h5py")
onnx = pytest.importorskip("onnx")

MAX_SECONDS, MAX_GROWTH_MB = 2.0, 200

_CHILD = r"""
import json, resource, sys, time
import numpy, h5py
import gpulstm, gpulstm.io, gpulstm.models
from gpulstm.io import expected, keras_zip, legacy_h5
kind, path = sys.argv[1], sys.argv[2]
if kind == "onnx":  # onnx takes ~1 s to import: only where it is used
    import onnx, gpulstm.io.onnx_import
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
err = None
try:
    {"onnx": gpulstm.io.load_onnx, "read": gpulstm.io.read_model_file}.get(kind, gpulstm.io.load_model)(path)
except Exception as e:
    err = [type(e).__name__, str(e), isinstance(e, gpulstm.io.ModelFileError)]
seconds = time.perf_counter() - t0
growth = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024
print(json.dumps({"err": err, "seconds": seconds, "growth_mb": growth}))
"""

# name: (maker, kind, what the refusal says; None: the file loads)
CASES = {
    "keras_weights_bomb": (lambda p: hf.keras_weights_bomb(p, 128), "keras", "expands past"),
    "keras_lying_header": (lambda p: hf.keras_weights_bomb(p, 64, declared=1024), "keras", "corrupted member"),
    "keras_unwritten_bias": (lambda p: hf.keras_unwritten_weight(p, (1 << 28,)), "keras", r"\(268435456,\).*\(32,\)"),
    "h5_unwritten_bias": (lambda p: hf.h5_unwritten_weight(p, (1 << 28,)), "h5", r"\(268435456,\).*\(32,\)"),
    "h5_unwritten_kernel": (lambda p: hf.h5_unwritten_weight(p, (1 << 23, 32), "kernel"), "h5",
                            r"\(8388608, 32\).*\(3, 32\)"),
    "weights_only_unwritten_bias": (lambda p: hf.weights_only_unwritten_bias(p, (1 << 28,)), "read",
                                    "declares 1073741824 bytes but stores 0"),
    "keras_huge_config": (lambda p: hf.keras_huge_config(p, 4000), "keras", r"config.json\]: the model config "
                          "declares at least 64"),
    "h5_huge_config": (lambda p: hf.h5_huge_config(p, 4000), "h5", "declares at least 64"),
    "onnx_unused_matmul": (lambda p: hf.onnx_with_big_constants(p, "MatMul", False), "onnx", None),
    "onnx_used_matmul": (lambda p: hf.onnx_with_big_constants(p, "MatMul", True), "onnx", "MatMul would allocate"),
    "onnx_unused_constant_of_shape": (lambda p: hf.onnx_with_big_constants(p, "ConstantOfShape", False),
                                      "onnx", None),
    "onnx_used_constant_of_shape": (lambda p: hf.onnx_with_big_constants(p, "ConstantOfShape", True),
                                    "onnx", "ConstantOfShape would allocate"),
}


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    """Run every case in its own child process, two at a time."""
    d = tmp_path_factory.mktemp("hostile")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [os.path.dirname(os.path.dirname(
        os.path.abspath(hf.__file__))), os.environ.get("PYTHONPATH")])))
    names, results = list(CASES), {}
    for k in range(0, len(names), 2):
        procs = {}
        for name in names[k:k + 2]:
            maker, kind, _ = CASES[name]
            path = maker(str(d / (name + {"keras": ".keras", "h5": ".h5", "onnx": ".onnx", "read": ".h5"}[kind])))
            assert os.path.getsize(path) < 4 << 20, "hostile files must stay small"
            procs[name] = subprocess.Popen([sys.executable, "-c", _CHILD, kind, path], env=env,
                                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name, p in procs.items():
            out, err = p.communicate(timeout=120)
            assert p.returncode == 0, err
            results[name] = json.loads(out.strip().splitlines()[-1])
    return results


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_file_is_cheap(outcomes, name):
    import re

    res, expect = outcomes[name], CASES[name][2]
    if expect is None:
        assert res["err"] is None, res["err"]
    else:
        assert res["err"] is not None, "the hostile file was accepted"
        kind, msg, is_model_file_error = res["err"]
        assert is_model_file_error, (kind, msg)
        assert re.search(expect, msg), msg
    assert res["seconds"] < MAX_SECONDS, res
    assert res["growth_mb"] < MAX_GROWTH_MB, res


@pytest.mark.parametrize("ext", [".keras", ".h5"])
def test_adam_trained_model_loads(ext):
    """A model saved after training keeps Adam's state in the file: within the caps."""
    z = np.load(os.path.join(hf.FIX, "adam.k3.npz"))
    assert int(z["n_optimizer_vars"]) > 0
    y = load_model(os.path.join(hf.FIX, "adam.k3" + ext)).predict(z["x"])
    assert np.max(np.abs(y - z["y"])) <= 1e-5 * max(1.0, float(np.max(np.abs(z["y"]))))


def test_weights_member_cap_follows_the_model(tmp_path):
    """The member may hold 4 x the parameter bytes + 16 MiB (optimizer state), not 8 GiB."""
    from gpulstm.io import expected

    exp = expected.from_config("m", json.loads(_config_json()), "3.15.1", False)
    assert exp.nbytes == 4 * (384 + 280 + 12)
    assert expected.member_limit(exp) == 4 * exp.nbytes + 16 * 2**20
    p = hf.keras_weights_bomb(str(tmp_path / "b.keras"), 17)  # just past the cap
    with pytest.raises(ModelFileError, match=r"model.weights.h5.*expands past 16788\d\d\d bytes"):
        load_model(p)


def _config_json():
    import zipfile

    with zipfile.ZipFile(hf.KERAS) as z:
        return z.read("config.json").decode()


def test_load_weights_compares_declared_shapes_before_reading(tmp_path, monkeypatch):
    """model.load_weights(.weights.h5): the model's shapes are checked on the headers alone."""
    import shutil

    from gpulstm.io import common
    from gpulstm.models import model_from_json

    cfg = str(np.load(os.path.join(hf.FIX, "seq_emb.k3.npz"))["config_json"])
    model = model_from_json(cfg)
    before = [w.copy() for w in model.get_weights()]
    p = str(tmp_path / "m.weights.h5")
    shutil.copyfile(os.path.join(hf.FIX, "seq_emb.k3.weights.h5"), p)
    with h5py.File(p, "r+") as f:
        hf._unwritten(f, "layers/lstm/cell/vars/2", (1 << 28,))

    def no_read(*a, **k):
        raise AssertionError("a dataset was read before the shapes were compared")

    monkeypatch.setattr(common, "read_dataset", no_read)
    monkeypatch.setattr("gpulstm.io._keras_tree.read_dataset", no_read)
    with pytest.raises(ModelFileError, match=r"layers/lstm/cell/vars/2\]: weight declared with shape "
                       r"\(268435456,\); the model config needs \(\d+,\)"):
        model.load_weights(p)
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), before))


def test_a_config_gpulstm_cannot_build_is_still_read_for_its_summary(tmp_path):
    """read_model_file / summary fall back to the global limits; load_model refuses it."""
    import zipfile

    from gpulstm.io import UnsupportedModelError, read_model_file

    src, p = os.path.join(hf.FIX, "seq_emb.k3.keras"), str(tmp_path / "u.keras")
    with zipfile.ZipFile(src) as zs, zipfile.ZipFile(p, "w") as zd:
        for n in zs.namelist():
            data = zs.read(n)
            if n == "config.json":
                cfg = json.loads(data)
                cfg["config"]["layers"].insert(2, {"module": "keras.layers", "class_name": "ActivityRegularization",
                                                   "config": {"name": "reg", "l1": 0.0, "l2": 0.0}})
                data = json.dumps(cfg)
            zd.writestr(n, data)
    assert len(read_model_file(p).weights) == len(read_model_file(src).weights)
    with pytest.raises(UnsupportedModelError, match=r"\[config\]: .*ActivityRegularization"):
        load_model(p)
