"""The ONNX peers of ``gpulstm bench``: onnxruntime and OpenVINO on one ``LSTM`` node.

Both run the same graph (``onnx_lstm_model``) built from Keras's weights.
"""
import os
import tempfile

import numpy as np

from gpulstm._peers_base import Runner, Unavailable, Unsupported, gate_blocks

# ----------------------------------------------------------------------------- onnxruntime
_ONNX_ACT = {"sigmoid": ("Sigmoid", None, None), "tanh": ("Tanh", None, None),
             "hard_sigmoid": ("HardSigmoid", 1.0 / 6.0, 0.5)}  # Keras 3 hard_sigmoid


def onnx_lstm_model(case, kernel, recurrent_kernel, bias):
    """An ONNX graph ``Transpose -> LSTM(layout 0) -> Squeeze`` with Keras's weights.

    ONNX orders gates i, o, f, c; the CPU kernel rejects ``layout=1`` so the
    batch-major input is transposed to (T, B, D) first.
    """
    from onnx import TensorProto, helper, numpy_helper

    U = case.U
    i, f, c, o = gate_blocks(kernel, U)
    W = np.concatenate([i, o, f, c], axis=-1).T[None]  # W is (1, 4U, D)
    i, f, c, o = gate_blocks(recurrent_kernel, U)
    R = np.concatenate([i, o, f, c], axis=-1).T[None]  # R is (1, 4U, U)
    inits = [numpy_helper.from_array(np.ascontiguousarray(W, np.float32), "W"),
             numpy_helper.from_array(np.ascontiguousarray(R, np.float32), "R")]
    lstm_inputs = ["X_tbd", "W", "R"]
    if case.use_bias:
        i, f, c, o = gate_blocks(bias, U)
        Bv = np.concatenate([i, o, f, c, np.zeros(4 * U, np.float32)])[None]  # B is (1, 8U)
        inits.append(numpy_helper.from_array(Bv.astype(np.float32), "B"))
        lstm_inputs.append("B")
    else:
        lstm_inputs.append("")
    graph_inputs = [helper.make_tensor_value_info("X", TensorProto.FLOAT, [case.B, case.T, case.D])]
    if case.stateful:
        lstm_inputs += ["", "h0", "c0"]
        graph_inputs += [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, case.B, U])
                         for n in ("h0", "c0")]
    acts, alphas, betas = [], [], []
    for name in (case.recurrent_activation, case.activation, case.activation):
        if name not in _ONNX_ACT:
            raise Unsupported(f"onnxruntime's LSTM has no {name!r} activation")
        op, alpha, beta = _ONNX_ACT[name]
        acts.append(op)
        if alpha is not None:
            alphas.append(alpha)
            betas.append(beta)
    attrs = {"hidden_size": U, "activations": acts, "layout": 0}
    if alphas:
        # onnxruntime consumes alphas/betas in order, only for functions that take them.
        attrs.update(activation_alpha=alphas, activation_beta=betas)
    nodes = [
        helper.make_node("Transpose", ["X"], ["X_tbd"], perm=[1, 0, 2]),
        helper.make_node("LSTM", lstm_inputs, ["", "Y_h", "Y_c"], **attrs),
        helper.make_node("Squeeze", ["Y_h", "axes0"], ["h_T"]),
    ]
    inits.append(numpy_helper.from_array(np.array([0], np.int64), "axes0"))
    outputs = [helper.make_tensor_value_info("h_T", TensorProto.FLOAT, [case.B, U])]
    if case.stateful:
        outputs += [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, case.B, U]) for n in ("Y_h", "Y_c")]
    graph = helper.make_graph(nodes, "keras_lstm", graph_inputs, outputs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def onnxruntime_runner(case, kernel, recurrent_kernel, bias, threads):
    """onnxruntime's LSTM op, intra-op threads = ``threads``, spinning off."""
    try:
        import onnxruntime as ort
        import onnx  # noqa: F401
    except ImportError as exc:
        raise Unavailable(f"onnxruntime/onnx not installed ({exc}); pip install onnxruntime onnx") from None
    if case.mask is not None:
        raise Unsupported("onnxruntime's LSTM has no left-padding mask (sequence_lens pads on the right)")
    model = onnx_lstm_model(case, kernel, recurrent_kernel, bias)
    so = ort.SessionOptions()
    so.intra_op_num_threads = int(threads)
    so.inter_op_num_threads = 1
    # Spinning threads would steal the core from the next contender of an interleaved race.
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return graph_runner("onnxruntime", case, lambda feed, names: sess.run(names, feed),
                        version=ort.__version__, notes="intra_op spinning off")


def graph_runner(name, case, run_graph, **kw):
    """A Runner over a compiled ``onnx_lstm_model`` graph: ``run_graph(feed, output_names)``
    returns the outputs; stateful cases feed ``Y_h``/``Y_c`` back as ``h0``/``c0``."""
    state = {}

    def reset():
        state["h0"] = np.zeros((1, case.B, case.U), np.float32)
        state["c0"] = np.zeros((1, case.B, case.U), np.float32)

    reset()

    def call(x, mask=None):
        if not case.stateful:
            return run_graph({"X": x}, ["h_T"])[0]
        out, state["h0"], state["c0"] = run_graph({"X": x, **state}, ["h_T", "Y_h", "Y_c"])
        return out

    return Runner(name, call, reset=reset, **kw)


# ----------------------------------------------------------------------------- OpenVINO
OPENVINO_CONFIG = {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"}


def openvino_runner(case, kernel, recurrent_kernel, bias, threads):
    """OpenVINO's CPU plugin on ``onnx_lstm_model``'s graph, f32, ``threads`` inference threads."""
    try:
        import openvino as ov
        import onnx  # noqa: F401
    except ImportError as exc:
        raise Unavailable(f"openvino/onnx not installed ({exc}); pip install openvino onnx") from None
    if case.mask is not None:
        raise Unsupported("OpenVINO runs the ONNX LSTM node: no left-padding mask")
    if case.activation != "tanh" or case.recurrent_activation != "sigmoid":
        raise Unsupported("OpenVINO's CPU LSTM takes only sigmoid/tanh (HardSigmoid: 'Unsupported "
                          "activation function')")
    model = onnx_lstm_model(case, kernel, recurrent_kernel, bias)
    config = dict(OPENVINO_CONFIG, INFERENCE_NUM_THREADS=int(threads))
    with tempfile.TemporaryDirectory() as tmp:  # compile_model of the ONNX file, as a user would
        path = os.path.join(tmp, "lstm.onnx")
        with open(path, "wb") as fh:
            fh.write(model.SerializeToString())
        compiled = ov.Core().compile_model(path, "CPU", config)
    request = compiled.create_infer_request()

    def run_graph(feed, names):
        request.infer(feed)
        return [request.get_tensor(n).data.copy() for n in names]

    return graph_runner("openvino", case, run_graph, version=ov.get_version().split("-")[0],
                        notes=", ".join(f"{k}={v}" for k, v in config.items()))
