"""gpulstm.load_onnx: real torch.onnx.export graphs (LSTM, GRU, RNN) and hand-built LSTM nodes."""
import os

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from gpulstm.io import ModelFileError, UnsupportedModelError, load_onnx  # noqa: E402

FIX = os.path.join(os.path.dirname(__file__), "fixtures_io")


def _close(a, ref):
    np.testing.assert_allclose(a, ref, rtol=0, atol=1e-5 * max(1.0, float(np.abs(ref).max())))


@pytest.mark.parametrize("name", ["onnx_lstm_head", "onnx_bilstm_head", "onnx_stack_seq", "onnx_bigru_head",
                                  "onnx_gru_stack_seq", "onnx_birnn_relu_seq"])
def test_torch_exports(name):
    z = np.load(os.path.join(FIX, name + ".npz"))
    model = load_onnx(os.path.join(FIX, name + ".onnx"))
    _close(model.predict(z["x"]), z["y"])
    ort = pytest.importorskip("onnxruntime")
    x = z["x"] + np.float32(0.5)  # the export has static shapes; new values only
    sess = ort.InferenceSession(os.path.join(FIX, name + ".onnx"), providers=["CPUExecutionProvider"])
    _close(model.predict(x), sess.run(None, {"x": x})[0])


# --- an independent float64 reference written from the ONNX LSTM definition ---
_F = {"Sigmoid": lambda x, a, b: 1 / (1 + np.exp(-x)), "Tanh": lambda x, a, b: np.tanh(x),
      "Relu": lambda x, a, b: np.maximum(x, 0),
      "HardSigmoid": lambda x, a, b: np.clip(a * x + b, 0, 1)}


def onnx_lstm_ref(X, W, R, B, lens, h0, c0, direction, layout, acts):
    """acts: [(name, alpha, beta)] * 3 for f, g, h. Returns Y, Y_h, Y_c in the node's layout."""
    if layout == 1:
        X, h0, c0 = X.transpose(1, 0, 2), h0.transpose(1, 0, 2), c0.transpose(1, 0, 2)
    T, Bn, _ = X.shape
    dirs, H = W.shape[0], R.shape[2]
    f, g, hh = [(lambda v, n=n, a=a, b=b: _F[n](v, a, b)) for n, a, b in acts]
    Y = np.zeros((T, dirs, Bn, H))
    Yh, Yc = h0.astype(np.float64).copy(), c0.astype(np.float64).copy()
    for d in range(dirs):
        rev = direction == "reverse" or d == 1
        for b in range(Bn):
            hs, cs = Yh[d, b].copy(), Yc[d, b].copy()
            steps = range(int(lens[b]))
            for t in (reversed(steps) if rev else steps):
                z = X[t, b] @ W[d].T + hs @ R[d].T + B[d, :4 * H] + B[d, 4 * H:]
                i, o, fg, c = (z[k * H:(k + 1) * H] for k in range(4))
                cs = f(fg) * cs + f(i) * g(c)
                hs = f(o) * hh(cs)
                Y[t, d, b] = hs
            Yh[d, b], Yc[d, b] = hs, cs
    if layout == 1:
        return Y.transpose(2, 0, 1, 3), Yh.transpose(1, 0, 2), Yc.transpose(1, 0, 2)
    return Y, Yh, Yc


def _graph(path, W, R, B, direction, layout, acts=None, alphas=None, betas=None, extra=None,
           with_lens=False, with_state=False, op="LSTM"):
    dirs, H, F = W.shape[0], R.shape[2], W.shape[2]
    ins = ["X", "W", "R", "B", "lens" if with_lens else "", "h0" if with_state else "",
           "c0" if with_state else ""]
    attrs = dict(hidden_size=H, direction=direction, layout=layout)
    if acts:
        attrs.update(activations=acts)
    if alphas:
        attrs.update(activation_alpha=alphas)
    if betas:
        attrs.update(activation_beta=betas)
    attrs.update(extra or {})
    outs = ["Y", "Y_h", "Y_c"]
    if op in ("GRU", "RNN"):  # inputs X, W, R, B, sequence_lens, initial_h; outputs Y, Y_h
        ins, outs = ins[:6], outs[:2]
    node = helper.make_node(op, ins, outs, **attrs)
    inits = [numpy_helper.from_array(a, n) for a, n in ((W, "W"), (R, "R"), (B, "B"))]
    xs = ["T", "N"] if layout == 0 else ["N", "T"]
    inputs = [helper.make_tensor_value_info("X", TensorProto.FLOAT, xs + [F])]
    if with_lens:
        inputs.append(helper.make_tensor_value_info("lens", TensorProto.INT32, ["N"]))
    if with_state:
        sh = [dirs, "N", H] if layout == 0 else ["N", dirs, H]
        inputs += [helper.make_tensor_value_info(n, TensorProto.FLOAT, sh) for n in ins[5:]]
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outs]
    g = helper.make_graph([node], "g", inputs, outs, inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 14)])
    onnx.save(m, str(path))
    return str(path)


@pytest.mark.parametrize("direction,layout,acts", [
    ("forward", 0, None),
    ("reverse", 1, None),
    ("bidirectional", 0, None),
    ("bidirectional", 1, "k3"),
    ("forward", 1, "k2"),
    ("forward", 0, "relu"),
])
def test_lstm_node_semantics(tmp_path, direction, layout, acts):
    rng = np.random.default_rng(7)
    dirs, H, F, T, N = 2 if direction == "bidirectional" else 1, 3, 2, 5, 4
    W = rng.uniform(-1, 1, (dirs, 4 * H, F)).astype(np.float32)
    R = rng.uniform(-1, 1, (dirs, 4 * H, H)).astype(np.float32)
    B = rng.uniform(-1, 1, (dirs, 8 * H)).astype(np.float32)
    names = alphas = betas = None
    ref_acts = [("Sigmoid", 0, 0), ("Tanh", 0, 0), ("Tanh", 0, 0)]
    if acts in ("k2", "k3"):
        alpha = 0.2 if acts == "k2" else 1 / 6
        names, alphas, betas = ["HardSigmoid", "Tanh", "Tanh"] * dirs, [alpha] * dirs, [0.5] * dirs
        ref_acts[0] = ("HardSigmoid", alpha, 0.5)
    elif acts == "relu":
        names = ["Sigmoid", "Relu", "Relu"]
        ref_acts[1] = ref_acts[2] = ("Relu", 0, 0)
    path = _graph(tmp_path / "m.onnx", W, R, B, direction, layout, names, alphas, betas,
                  with_lens=True, with_state=True)
    X = rng.uniform(-3, 3, (T, N, F) if layout == 0 else (N, T, F)).astype(np.float32)
    lens = np.array([5, 3, 1, 5], np.int32)
    sshape = (dirs, N, H) if layout == 0 else (N, dirs, H)
    h0, c0 = (rng.uniform(-1, 1, sshape).astype(np.float32) for _ in range(2))
    got = load_onnx(path).predict(X, lens, h0, c0)
    ref = onnx_lstm_ref(X, W, R, B, lens, h0, c0, direction, layout, ref_acts)
    for a, b in zip(got, ref):
        assert a.shape == b.shape
        _close(a, b)
    if layout == 0:  # onnxruntime's CPU provider rejects layout=1
        ort = pytest.importorskip("onnxruntime")
        sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        for a, b in zip(got, sess.run(None, {"X": X, "lens": lens, "h0": h0, "c0": c0})):
            _close(a, b)


def test_refusals(tmp_path):
    rng = np.random.default_rng(1)
    W = rng.standard_normal((1, 8, 2)).astype(np.float32)
    R = rng.standard_normal((1, 8, 2)).astype(np.float32)
    B = np.zeros((1, 16), np.float32)
    with pytest.raises(UnsupportedModelError, match="'Scan' is not supported"):
        load_onnx(_graph(tmp_path / "a.onnx", W, R, B, "forward", 0, op="Scan"))
    with pytest.raises(ModelFileError, match=r"GRU.*do not fit hidden_size=2 \(GRU: 3 gate block\(s\) of H rows\)"):
        load_onnx(_graph(tmp_path / "g.onnx", W, R, B, "forward", 0, op="GRU"))
    with pytest.raises(UnsupportedModelError, match="clip"):
        load_onnx(_graph(tmp_path / "b.onnx", W, R, B, "forward", 0, extra={"clip": 3.0}))
    with pytest.raises(UnsupportedModelError, match="differ"):
        load_onnx(_graph(tmp_path / "c.onnx", W, R, B, "forward", 0, ["Sigmoid", "Tanh", "Relu"]))
    with pytest.raises(UnsupportedModelError, match="HardSigmoid"):
        load_onnx(_graph(tmp_path / "d.onnx", W, R, B, "forward", 0, ["HardSigmoid", "Tanh", "Tanh"],
                         [0.3], [0.5]))
    Wn = W.copy()
    Wn[0, 0, 0] = np.inf
    with pytest.raises(ModelFileError, match="infinity"):
        load_onnx(_graph(tmp_path / "e.onnx", Wn, R, B, "forward", 0))
    with pytest.raises(ModelFileError, match="B must be"):
        load_onnx(_graph(tmp_path / "f.onnx", W, R, B[:, :8], "forward", 0))


def test_corrupted_bytes(tmp_path):
    raw = open(os.path.join(FIX, "onnx_lstm_head.onnx"), "rb").read()
    p = tmp_path / "t.onnx"
    p.write_bytes(raw[: len(raw) // 3])
    with pytest.raises(ModelFileError, match="t.onnx"):
        load_onnx(p)
