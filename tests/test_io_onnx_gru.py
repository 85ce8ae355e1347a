"""The ONNX GRU node on gpulstm.GRU: both linear_before_reset values, directions, layouts,
sequence_lens and initial_h, against tests/naive.py, onnxruntime and ONNX's own node tests."""
import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import helper  # noqa: E402

import naive  # noqa: E402
from gpulstm.io import ModelFileError, UnsupportedModelError, load_onnx  # noqa: E402
from test_io_onnx import _close, _graph  # noqa: E402
from test_io_onnx_node import _backend_cases, _model, _ort, check_backend_case  # noqa: E402


def node_ref(X, lens, h0, direction, layout, run):
    """Y, Y_h in an ONNX node's layout from ``run(d, x (B, T, F), h0_d, mask, go_backwards)``
    -> ``(seq, h)`` of tests/naive.py, one direction at a time.  A row of length 0 ends with
    zero states (onnxruntime)."""
    if layout == 1:
        X, h0 = X.transpose(1, 0, 2), h0.transpose(1, 0, 2)
    T, N, _ = X.shape
    dirs, H = h0.shape[0], h0.shape[2]
    mask = np.arange(T)[None, :] < np.asarray(lens)[:, None]
    Y, Yh = np.zeros((T, dirs, N, H)), np.zeros((dirs, N, H))
    for d in range(dirs):
        rev = direction == "reverse" or d == 1
        seq, h = run(d, X.transpose(1, 0, 2), h0[d], mask, rev)
        Y[:, d] = (seq[:, ::-1] if rev else seq).transpose(1, 0, 2)
        Yh[d] = np.where(mask.any(axis=1)[:, None], h, 0.0)
    if layout == 1:
        return Y.transpose(2, 0, 1, 3), Yh.transpose(1, 0, 2)
    return Y, Yh


def onnx_gru_ref(X, W, R, B, lens, h0, direction, layout, lbr, act="tanh", ract="sigmoid",
                 hard_sigmoid="keras3"):
    """The GRU node from naive.gru: ONNX's z, r, h gate blocks are Keras's (kernel W[d].T,
    recurrent kernel R[d].T); linear_before_reset=1 is reset_after (bias [Wb; Rb]), 0 one
    bias Wb + Rb."""
    H = R.shape[2]

    def run(d, x, h0_d, mask, rev):
        b = B[d].reshape(2, 3 * H) if lbr else B[d, :3 * H].astype(np.float64) + B[d, 3 * H:]
        seq, _, h = naive.gru(x, W[d].T, R[d].T, b, h0=h0_d, mask=mask, activation=act,
                              recurrent_activation=ract, reset_after=bool(lbr), go_backwards=rev,
                              zero_output_for_mask=True, hard_sigmoid=hard_sigmoid)
        return seq, h

    return node_ref(X, lens, h0, direction, layout, run)


def _weights(rng, dirs, H, F):
    return (rng.uniform(-1, 1, (dirs, 3 * H, F)).astype(np.float32),
            rng.uniform(-1, 1, (dirs, 3 * H, H)).astype(np.float32),
            rng.uniform(-1, 1, (dirs, 6 * H)).astype(np.float32))


@pytest.mark.parametrize("direction,layout,lbr,acts", [
    ("forward", 0, 1, None),
    ("reverse", 0, 0, None),
    ("bidirectional", 0, 1, None),
    ("bidirectional", 1, 0, "k3"),
    ("forward", 1, 1, "k2"),
    ("bidirectional", 0, 0, "relu"),
])
def test_gru_node_semantics(tmp_path, direction, layout, lbr, acts):
    rng = np.random.default_rng(11)
    dirs, H, F, T, N = 2 if direction == "bidirectional" else 1, 3, 2, 5, 4
    W, R, B = _weights(rng, dirs, H, F)
    names = alphas = betas = None
    ref_kw = {}
    if acts in ("k2", "k3"):
        alpha = 0.2 if acts == "k2" else 1 / 6
        names, alphas, betas = ["HardSigmoid", "Tanh"] * dirs, [alpha] * dirs, [0.5] * dirs
        ref_kw = dict(ract="hard_sigmoid", hard_sigmoid="keras2" if acts == "k2" else "keras3")
    elif acts == "relu":
        names, ref_kw = ["Sigmoid", "Relu"] * dirs, dict(act="relu")
    path = _graph(tmp_path / "m.onnx", W, R, B, direction, layout, names, alphas, betas,
                  extra={"linear_before_reset": lbr}, with_lens=True, with_state=True, op="GRU")
    X = rng.uniform(-3, 3, (T, N, F) if layout == 0 else (N, T, F)).astype(np.float32)
    lens = np.array([5, 3, 0, 1], np.int32)
    h0 = rng.uniform(-1, 1, (dirs, N, H) if layout == 0 else (N, dirs, H)).astype(np.float32)
    model = load_onnx(path)
    assert [type(layer).__name__ for layer in model.layers[0].layers] == ["GRU"] * dirs
    assert all(layer.reset_after == bool(lbr) for layer in model.layers[0].layers)
    got = model.predict(X, lens, h0)
    check_outputs(path, got, onnx_gru_ref(X, W, R, B, lens, h0, direction, layout, lbr, **ref_kw),
                  {"X": X, "lens": lens, "h0": h0}, layout)


def check_outputs(path, got, ref, feeds, layout):
    """``got`` equals the reference ``ref`` and, for layout 0, what onnxruntime gives for ``feeds``."""
    assert len(got) == len(ref)
    for a, b in zip(got, ref):
        assert a.shape == b.shape
        _close(a, b)
    if layout == 0:  # onnxruntime's CPU provider rejects layout=1
        for a, b in zip(got, _ort(path, feeds)):
            _close(a, b)


_CASES = _backend_cases("GRU")


@pytest.mark.skipif(not _CASES, reason="onnx ships no backend test cases")
@pytest.mark.parametrize("case", _CASES, ids=[c[0] for c in _CASES])
def test_onnx_backend_gru_cases(tmp_path, case):
    """W, R and B come in as graph inputs, as in onnx/backend/test/data/node/test_gru_*."""
    check_backend_case(tmp_path, case)


def test_weights_fed_at_run_time_are_reconverted(tmp_path):
    rng = np.random.default_rng(12)
    W, R, B = _weights(rng, 2, 3, 2)
    X = rng.standard_normal((5, 4, 2)).astype(np.float32)
    node = helper.make_node("GRU", ["X", "W", "R", "B"], ["Y", "Y_h"], hidden_size=3,
                            direction="bidirectional", linear_before_reset=1)
    path = _model(tmp_path / "rt.onnx", node, {"X": X, "W": W, "R": R, "B": B})
    m = load_onnx(path)
    assert m.input_names == ["X", "W", "R", "B"] and m.layers == []
    lines = []
    m.summary(print_fn=lines.append)
    assert "0 LSTM node(s), 1 GRU node(s)" in lines[0]
    for scale in (1.0, 0.5):
        got = m.predict(X, W * scale, R * scale, B * scale)
        ref = onnx_gru_ref(X, W * scale, R * scale, B * scale, [5] * 4, np.zeros((2, 4, 3)),
                           "bidirectional", 0, 1)
        for a, b in zip(got, ref):
            _close(a, b)
        for a, b in zip(got, _ort(path, {"X": X, "W": W * scale, "R": R * scale, "B": B * scale})):
            _close(a, b)
    with pytest.raises(ValueError, match=r"do not fit hidden_size=3 \(GRU: 3 gate block\(s\) of H rows\)"):
        m.predict(X, W[:, :6], R, B)


def test_refusals(tmp_path):
    rng = np.random.default_rng(13)
    W, R, B = _weights(rng, 1, 2, 2)

    def load(name, **kw):
        return load_onnx(_graph(tmp_path / name, W, R, B, "forward", 0, op="GRU", **kw))

    with pytest.raises(UnsupportedModelError, match=r"\(GRU ''\)\]: GRU 'clip' is not supported"):
        load("a.onnx", extra={"clip": 3.0})
    with pytest.raises(UnsupportedModelError, match=r"GRU activation LeakyRelu\(alpha=0.01"):
        load("b.onnx", acts=["Sigmoid", "LeakyRelu"])
    with pytest.raises(UnsupportedModelError, match=r"GRU activation HardSigmoid\(alpha=0.3"):
        load("c.onnx", acts=["HardSigmoid", "Tanh"], alphas=[0.3], betas=[0.5])
    with pytest.raises(ModelFileError, match="GRU activations: expected 2 names, found 3"):
        load("d.onnx", acts=["Sigmoid", "Tanh", "Tanh"])
    with pytest.raises(ModelFileError, match="linear_before_reset must be 0 or 1"):
        load("e.onnx", extra={"linear_before_reset": 2})
    with pytest.raises(ModelFileError, match=r"B must be \(1, 12\)"):
        load_onnx(_graph(tmp_path / "f.onnx", W, R, B[:, :6], "forward", 0, op="GRU"))
    Wn = W.copy()
    Wn[0, 0, 0] = np.nan
    with pytest.raises(ModelFileError, match="NaN or infinity"):
        load_onnx(_graph(tmp_path / "g.onnx", Wn, R, B, "forward", 0, op="GRU"))
    W2, R2, B2 = _weights(rng, 2, 2, 2)
    with pytest.raises(UnsupportedModelError, match="different activations per direction"):
        load_onnx(_graph(tmp_path / "h.onnx", W2, R2, B2, "bidirectional", 0, ["Sigmoid", "Tanh", "Sigmoid", "Relu"],
                         op="GRU"))
    # ScaledTanh(alpha=1, beta=1) is tanh exactly: it loads
    load("i.onnx", acts=["Sigmoid", "ScaledTanh"], alphas=[1.0], betas=[1.0])


def test_bad_run_time_inputs(tmp_path):
    rng = np.random.default_rng(14)
    W, R, B = _weights(rng, 1, 3, 2)
    path = _graph(tmp_path / "m.onnx", W, R, B, "forward", 0, with_lens=True, with_state=True, op="GRU")
    m = load_onnx(path)
    X = rng.standard_normal((4, 2, 2)).astype(np.float32)
    h0 = np.zeros((1, 2, 3), np.float32)
    with pytest.raises(ValueError, match=r"sequence_lens.*>= 0 and <= seq_length=4.*Received: \[5, 2\]"):
        m.predict(X, np.array([5, 2], np.int32), h0)
    with pytest.raises(ValueError, match="GRU input X must be 3-d"):
        m.predict(X[0], np.array([1, 2], np.int32), h0)
