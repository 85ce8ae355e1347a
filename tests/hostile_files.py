"""Small hostile model files, made on the fly (nothing large is committed).

Each maker writes one file to ``path`` from the committed Adam-trained fixture
(``tests/fixtures_io/adam.k3.*``) or from scratch, and returns ``path``.
"""
import io
import json
import os
import shutil
import struct
import zipfile

import numpy as np

FIX = os.path.join(os.path.dirname(__file__), "fixtures_io")
KERAS, H5 = os.path.join(FIX, "adam.k3.keras"), os.path.join(FIX, "adam.k3.h5")
_ZEROS = bytes(1 << 20)


def keras_weights_bomb(path, mib=256, declared=None):
    """A ``.keras`` whose ``model.weights.h5`` member inflates to ``mib`` MiB of zeros.

    ``declared``: patch the central directory to claim this many bytes instead (a lying header).
    """
    with zipfile.ZipFile(KERAS) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in ("metadata.json", "config.json"):
            zf.writestr(name, src.read(name))
        with zf.open("model.weights.h5", "w") as f:
            for _ in range(mib):
                f.write(_ZEROS)
    if declared is not None:
        raw = bytearray(open(path, "rb").read())
        at = raw.rindex(b"PK\x01\x02")  # the last central directory entry: the weights member
        raw[at + 24:at + 28] = struct.pack("<I", declared)
        open(path, "wb").write(bytes(raw))
    return path


def _unwritten(f, name, shape):
    del f[name]
    f.create_dataset(name, shape=shape, dtype="float32", chunks=(1 << 16,) + tuple(shape[1:]))


def h5_unwritten_weight(path, shape, which="bias"):
    """The legacy ``.h5`` with its first LSTM ``which`` weight replaced by a chunked dataset
    of ``shape`` float32 that was never written (a few KB on disk, GBs when read)."""
    import h5py

    shutil.copyfile(H5, path)
    with h5py.File(path, "r+") as f:
        g = f["model_weights/enc"]
        names = [n.decode() if isinstance(n, bytes) else n for n in g.attrs["weight_names"]]
        _unwritten(g, next(n for n in names if n.endswith("/" + which)), shape)
    return path


def weights_only_unwritten_bias(path, shape):
    """A tf_keras weights-only ``.h5`` (no config to compare with) with an unwritten bias."""
    import h5py

    shutil.copyfile(os.path.join(FIX, "seq_emb.tfk.weights-only.h5"), path)
    with h5py.File(path, "r+") as f:
        for lname in f.attrs["layer_names"]:
            g = f[lname]
            names = [n.decode() if isinstance(n, bytes) else n for n in g.attrs["weight_names"]]
            bias = [n for n in names if n.endswith("bias:0")]
            if bias:
                _unwritten(g, bias[0], shape)
                return path
    raise AssertionError("no bias in the fixture")


def keras_unwritten_weight(path, shape):
    """The ``.keras`` with its first LSTM bias replaced by an unwritten chunked dataset."""
    import h5py

    with zipfile.ZipFile(KERAS) as src:
        members = {n: src.read(n) for n in src.namelist()}
    buf = io.BytesIO(members["model.weights.h5"])
    with h5py.File(buf, "r+") as f:
        _unwritten(f, "layers/lstm/cell/vars/2", shape)
    members["model.weights.h5"] = buf.getvalue()
    with zipfile.ZipFile(path, "w") as zf:
        for n, data in members.items():
            zf.writestr(n, data)
    return path


def _bigger_lstm(config_json, units):
    cfg = json.loads(config_json)
    for layer in cfg["config"]["layers"]:
        if layer["class_name"] == "LSTM":
            layer["config"]["units"] = units
            break
    return json.dumps(cfg)


def keras_huge_config(path, units):
    """The ``.keras`` whose config declares its first LSTM with ``units`` units (weights unchanged)."""
    with zipfile.ZipFile(KERAS) as src, zipfile.ZipFile(path, "w") as zf:
        for n in src.namelist():
            data = src.read(n)
            zf.writestr(n, _bigger_lstm(data.decode(), units) if n == "config.json" else data)
    return path


def h5_huge_config(path, units):
    """The legacy ``.h5`` whose ``model_config`` declares its first LSTM with ``units`` units."""
    import h5py

    shutil.copyfile(H5, path)
    with h5py.File(path, "r+") as f:
        raw = f.attrs["model_config"]
        f.attrs["model_config"] = _bigger_lstm(raw.decode() if isinstance(raw, bytes) else raw, units)
    return path


def onnx_with_big_constants(path, op, used):
    """A small LSTM graph plus ``op`` on constants whose result is huge.

    ``op="MatMul"``: (20000, 1) @ (1, 20000) float32 (1.6 GB); ``op="ConstantOfShape"``:
    2**28 int64 (2 GiB).  ``used``: the result is a graph output, else nothing needs it.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    W, R = rng.standard_normal((1, 8, 3), np.float32), rng.standard_normal((1, 8, 2), np.float32)
    inits = [numpy_helper.from_array(W, "W"), numpy_helper.from_array(R, "R")]
    nodes = [helper.make_node("LSTM", ["X", "W", "R"], ["Y", "Y_h"], hidden_size=2)]
    if op == "MatMul":
        inits += [numpy_helper.from_array(np.ones((20000, 1), np.float32), "A"),
                  numpy_helper.from_array(np.ones((1, 20000), np.float32), "B")]
        nodes.append(helper.make_node("MatMul", ["A", "B"], ["big"]))
    else:
        inits.append(numpy_helper.from_array(np.array([1 << 28], np.int64), "shape"))
        nodes.append(helper.make_node("ConstantOfShape", ["shape"], ["big"],
                                      value=helper.make_tensor("v", TensorProto.INT64, [1], [7])))
    outs = ["Y_h"] + (["big"] if used else [])
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [4, 1, 3])],
                          [helper.make_tensor_value_info(o, TensorProto.UNDEFINED, None) for o in outs], inits)
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 14)]), path)
    return path
