"""The ONNX RNN node on gpulstm.SimpleRNN (Tanh, Relu): directions, layouts, sequence_lens and
initial_h against tests/naive.py, onnxruntime and ONNX's own node tests."""
import numpy as np
import pytest

onnx = pytest.importorskip("onnx")

import naive  # noqa: E402
from gpulstm.io import ModelFileError, UnsupportedModelError, load_onnx  # noqa: E402
from test_io_onnx import _graph  # noqa: E402
from test_io_onnx_gru import check_outputs, node_ref  # noqa: E402
from test_io_onnx_node import _backend_cases, check_backend_case  # noqa: E402


def onnx_rnn_ref(X, W, R, B, lens, h0, direction, layout, act="tanh"):
    """The RNN node from naive.simple_rnn: kernel W[d].T, recurrent kernel R[d].T, bias Wb + Rb."""
    H = R.shape[2]

    def run(d, x, h0_d, mask, rev):
        seq, _, h = naive.simple_rnn(x, W[d].T, R[d].T, B[d, :H].astype(np.float64) + B[d, H:], h0=h0_d,
                                     mask=mask, activation=act, go_backwards=rev, zero_output_for_mask=True)
        return seq, h

    return node_ref(X, lens, h0, direction, layout, run)


@pytest.mark.parametrize("direction,layout,act", [
    ("forward", 0, "tanh"), ("reverse", 0, "relu"), ("bidirectional", 0, "tanh"), ("bidirectional", 1, "relu")])
def test_rnn_node_semantics(tmp_path, direction, layout, act):
    rng = np.random.default_rng(31)
    dirs, H, F, T, N = 2 if direction == "bidirectional" else 1, 3, 2, 5, 4
    W = rng.uniform(-1, 1, (dirs, H, F)).astype(np.float32)
    R = rng.uniform(-1, 1, (dirs, H, H)).astype(np.float32)
    B = rng.uniform(-1, 1, (dirs, 2 * H)).astype(np.float32)
    names = ["Relu"] * dirs if act == "relu" else None
    path = _graph(tmp_path / "m.onnx", W, R, B, direction, layout, names, with_lens=True, with_state=True, op="RNN")
    X = rng.uniform(-3, 3, (T, N, F) if layout == 0 else (N, T, F)).astype(np.float32)
    lens = np.array([5, 0, 2, 4], np.int32)
    h0 = rng.uniform(-1, 1, (dirs, N, H) if layout == 0 else (N, dirs, H)).astype(np.float32)
    model = load_onnx(path)
    assert [type(layer).__name__ for layer in model.layers[0].layers] == ["SimpleRNN"] * dirs
    got = model.predict(X, lens, h0)
    check_outputs(path, got, onnx_rnn_ref(X, W, R, B, lens, h0, direction, layout, act),
                  {"X": X, "lens": lens, "h0": h0}, layout)


_CASES = _backend_cases("RNN")


@pytest.mark.skipif(not _CASES, reason="onnx ships no backend test cases")
@pytest.mark.parametrize("case", _CASES, ids=[c[0] for c in _CASES])
def test_onnx_backend_rnn_cases(tmp_path, case):
    """W, R and B come in as graph inputs, as in onnx/backend/test/data/node/test_*rnn*."""
    check_backend_case(tmp_path, case)


def test_refusals(tmp_path):
    rng = np.random.default_rng(32)
    W, R = rng.uniform(-1, 1, (1, 2, 2)).astype(np.float32), rng.uniform(-1, 1, (1, 2, 2)).astype(np.float32)
    B = np.zeros((1, 4), np.float32)

    def load(name, **kw):
        return load_onnx(_graph(tmp_path / name, W, R, B, "forward", 0, op="RNN", **kw))

    with pytest.raises(UnsupportedModelError, match=r"\(RNN ''\)\]: RNN 'clip' is not supported"):
        load("a.onnx", extra={"clip": 1.0})
    with pytest.raises(UnsupportedModelError, match=r"RNN activation LeakyRelu\(alpha=0.01"):
        load("b.onnx", acts=["LeakyRelu"])
    with pytest.raises(ModelFileError, match=r"do not fit hidden_size=2 \(RNN: 1 gate block\(s\) of H rows\)"):
        load_onnx(_graph(tmp_path / "c.onnx", np.zeros((1, 6, 2), np.float32), R, B, "forward", 0, op="RNN"))
    load("d.onnx", acts=["Sigmoid"])  # an activation Keras has exactly: it loads
