"""The ONNX LSTM node as onnxruntime runs it: sequence_lens, weights fed at run time, refusals."""
import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from gpulstm.io import UnsupportedModelError, load_onnx  # noqa: E402
from test_io_onnx import _close, _graph, onnx_lstm_ref  # noqa: E402

_SIG = [("Sigmoid", 0, 0), ("Tanh", 0, 0), ("Tanh", 0, 0)]


def _weights(rng, dirs, H, F):
    return (rng.uniform(-1, 1, (dirs, 4 * H, F)).astype(np.float32),
            rng.uniform(-1, 1, (dirs, 4 * H, H)).astype(np.float32),
            rng.uniform(-1, 1, (dirs, 8 * H)).astype(np.float32))


def _model(path, node, feeds, inits=None):
    """A one-node graph: ``feeds`` (name -> array) are graph inputs, ``inits`` initializers."""
    inputs = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
              for n, a in feeds.items()]
    outs = [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in node.output if o]
    inits = [numpy_helper.from_array(a, n) for n, a in (inits or {}).items()]
    g = helper.make_graph([node], "g", inputs, outs, inits)
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 14)]), str(path))
    return str(path)


def _ort(path, feeds):
    ort = pytest.importorskip("onnxruntime")
    return ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, feeds)


def test_sequence_lens_out_of_range_is_refused_like_onnxruntime(tmp_path):
    rng = np.random.default_rng(3)
    W, R, B = _weights(rng, 1, 3, 2)
    path = _graph(tmp_path / "m.onnx", W, R, B, "forward", 0, with_lens=True, with_state=True)
    m = load_onnx(path)
    X = rng.standard_normal((4, 2, 2)).astype(np.float32)
    h0 = c0 = np.zeros((1, 2, 3), np.float32)
    for bad in ([5, 2], [-1, 2]):
        lens = np.array(bad, np.int32)
        with pytest.raises(ValueError, match=r"sequence_lens.*>= 0 and <= seq_length=4.*Received"):
            m.predict(X, lens, h0, c0)
        with pytest.raises(Exception, match="sequence_lens"):
            _ort(path, {"X": X, "lens": lens, "h0": h0, "c0": c0})
    with pytest.raises(ValueError, match=r"sequence_lens must hold integers.*float32"):
        m.predict(X, np.array([4.0, 2.0], np.float32), h0, c0)


@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
def test_zero_length_with_initial_state_matches_onnxruntime(tmp_path, direction):
    """onnxruntime gives zeros in Y, Y_h and Y_c for a row of length 0, not its initial state."""
    rng = np.random.default_rng(4)
    dirs = 2 if direction == "bidirectional" else 1
    W, R, B = _weights(rng, dirs, 3, 2)
    path = _graph(tmp_path / "m.onnx", W, R, B, direction, 0, with_lens=True, with_state=True)
    X = rng.standard_normal((5, 4, 2)).astype(np.float32)
    lens = np.array([0, 3, 5, 0], np.int32)
    h0, c0 = (rng.uniform(-1, 1, (dirs, 4, 3)).astype(np.float32) for _ in range(2))
    got = load_onnx(path).predict(X, lens, h0, c0)
    ref = _ort(path, {"X": X, "lens": lens, "h0": h0, "c0": c0})
    for a, b in zip(got, ref):
        assert a.shape == b.shape
        _close(a, b)
    assert not np.any(got[1][:, [0, 3]]) and not np.any(got[2][:, [0, 3]])


def _backend_cases(op="LSTM"):
    """ONNX's own node tests of ``op`` (onnx.backend.test.case.node.lstm, .gru): node, inputs, outputs."""
    import importlib

    try:
        cases = importlib.import_module(f"onnx.backend.test.case.node.{op.lower()}")
    except ImportError:
        return []
    found = []

    def capture(node, inputs, outputs, name, **kwargs):
        found.append((name, node, inputs, outputs))

    real = cases.expect
    cases.expect = capture
    try:
        for attr in sorted(dir(getattr(cases, op))):
            if attr.startswith("export"):
                getattr(getattr(cases, op), attr)()
    finally:
        cases.expect = real
    return found


_CASES = _backend_cases()


@pytest.mark.skipif(not _CASES, reason="onnx ships no backend test cases")
@pytest.mark.parametrize("case", _CASES, ids=[c[0] for c in _CASES])
def test_onnx_backend_lstm_cases(tmp_path, case):
    """W, R and B come in as graph inputs, as in onnx/backend/test/data/node/test_lstm_*."""
    if "peephole" in case[0]:
        name, node, inputs, _ = case
        path = _model(tmp_path / f"{name}.onnx", node, dict(zip([i for i in node.input if i], inputs)))
        with pytest.raises(UnsupportedModelError, match=r"\]: LSTM peepholes \(input P\) are not supported"):
            load_onnx(path)
        return
    check_backend_case(tmp_path, case)


def check_backend_case(tmp_path, case):
    """Run one of ONNX's node tests (every input fed at run time) and compare every output."""
    name, node, inputs, outputs = case
    feeds = dict(zip([i for i in node.input if i], inputs))
    got = load_onnx(_model(tmp_path / f"{name}.onnx", node, feeds)).predict(feeds)
    got = got if isinstance(got, list) else [got]
    assert len(got) == len(outputs)
    for a, b in zip(got, outputs):
        assert a.shape == b.shape
        _close(a, b)


def test_weights_fed_at_run_time_match_initializers(tmp_path):
    rng = np.random.default_rng(5)
    W, R, B = _weights(rng, 2, 3, 2)
    X = rng.standard_normal((5, 4, 2)).astype(np.float32)
    node = helper.make_node("LSTM", ["X", "W", "R", "B"], ["Y", "Y_h", "Y_c"], hidden_size=3,
                            direction="bidirectional")
    path = _model(tmp_path / "rt.onnx", node, {"X": X, "W": W, "R": R, "B": B})
    m = load_onnx(path)
    assert m.input_names == ["X", "W", "R", "B"]
    for scale in (1.0, 0.5):  # new weights at the second call are used, not the first ones kept
        got = m.predict(X, W * scale, R * scale, B * scale)
        ref = onnx_lstm_ref(X, W * scale, R * scale, B * scale, [5] * 4, np.zeros((2, 4, 3)),
                            np.zeros((2, 4, 3)), "bidirectional", 0, _SIG)
        for a, b in zip(got, ref):
            _close(a, b)
        for a, b in zip(got, _ort(path, {"X": X, "W": W * scale, "R": R * scale, "B": B * scale})):
            _close(a, b)


def test_weights_computed_by_nodes_are_refused_with_the_right_reason(tmp_path):
    rng = np.random.default_rng(6)
    W, R, B = _weights(rng, 1, 3, 2)
    ident = helper.make_node("Identity", ["Win"], ["W"])
    node = helper.make_node("LSTM", ["X", "W", "R"], ["Y"], hidden_size=3)
    g = helper.make_graph([ident, node], "g",
                          [helper.make_tensor_value_info("X", TensorProto.FLOAT, [5, 1, 2]),
                           helper.make_tensor_value_info("Win", TensorProto.FLOAT, W.shape)],
                          [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
                          [numpy_helper.from_array(R, "R")])
    path = str(tmp_path / "c.onnx")
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 14)]), path)
    with pytest.raises(UnsupportedModelError, match=r"W are computed by other nodes.*initializers or as "
                       "graph inputs"):
        load_onnx(path)


def test_peepholes_get_the_peephole_error_first(tmp_path):
    rng = np.random.default_rng(7)
    W, R, B = _weights(rng, 1, 3, 2)
    P = np.full((1, 9), 0.1, np.float32)
    X = np.zeros((5, 1, 2), np.float32)
    ins = ["X", "W", "R", "B", "", "", "", "P"]
    # with clip and an unsupported activation too: the peepholes are named
    node = helper.make_node("LSTM", ins, ["Y"], hidden_size=3, clip=3.0,
                            activations=["Sigmoid", "Tanh", "Relu"])
    with pytest.raises(UnsupportedModelError, match=r"\]: LSTM peepholes \(input P\) are not supported"):
        load_onnx(_model(tmp_path / "a.onnx", node, {"X": X}, {"W": W, "R": R, "B": B, "P": P}))
    node = helper.make_node("LSTM", ins, ["Y"], hidden_size=3)  # P fed at run time
    with pytest.raises(UnsupportedModelError, match=r"\]: LSTM peepholes \(input P\) are not supported"):
        load_onnx(_model(tmp_path / "b.onnx", node, {"X": X, "P": P}, {"W": W, "R": R, "B": B}))
    # zero peepholes are plain LSTM
    load_onnx(_model(tmp_path / "c.onnx", node, {"X": X}, {"W": W, "R": R, "B": B, "P": 0 * P}))


def test_run_time_plumbing_is_capped_before_allocating(tmp_path):
    """A shape computed from the input at run time cannot make ConstantOfShape allocate GBs."""
    from gpulstm.io import ModelFileError

    nodes = [helper.make_node("Shape", ["X"], ["s"]),
             helper.make_node("Concat", ["s", "k"], ["shape"], axis=0),
             helper.make_node("ConstantOfShape", ["shape"], ["Y"],
                              value=helper.make_tensor("v", TensorProto.INT64, [1], [1]))]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["N", 3])],
                          [helper.make_tensor_value_info("Y", TensorProto.INT64, None)],
                          [numpy_helper.from_array(np.array([1 << 25], np.int64), "k")])
    path = str(tmp_path / "p.onnx")
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 14)]), path)
    m = load_onnx(path)
    with pytest.raises(ModelFileError, match=r"ConstantOfShape would allocate 1610612736 bytes"):
        m.predict(np.zeros((2, 3), np.float32))
