"""The ONNX peers of ``gpulstm bench``: onnxruntime and OpenVINO on one ``LSTM`` or ``GRU`` node.

Both run the same graph (``onnx_rnn_model``) built from Keras's weights.
"""
import os
import tempfile

import numpy as np

from gpulstm._peers_base import Runner, Unavailable, Unsupported, gate_blocks

# ----------------------------------------------------------------------------- onnxruntime
_ONNX_ACT = {"sigmoid": ("Sigmoid", None, None), "tanh": ("Tanh", None, None),
             "hard_sigmoid": ("HardSigmoid", 1.0 / 6.0, 0.5)}  # Keras 3 hard_sigmoid
# cell -> the node's state inputs (after X, W, R, B, sequence_lens) and final-state outputs
STATES = {"lstm": (("h0", "c0"), ("Y_h", "Y_c")), "gru": (("h0",), ("Y_h",))}


def _onnx_weights(case, kernel, recurrent_kernel, bias):
    """W (1, G, D), R (1, G, U) and B (1, 2G) or None in the ONNX node's gate order.

    LSTM: ONNX orders gates i, o, f, c and B is [Keras bias | 0].  GRU: z, r, h as in
    Keras, and the reset_after bias [input; recurrent] is ONNX's [Wb | Rb].
    """
    U = case.U

    def onnx_order(a):
        if case.cell == "gru":
            return a
        i, f, c, o = gate_blocks(a, U)
        return np.concatenate([i, o, f, c], axis=-1)

    W = onnx_order(kernel).T[None]
    R = onnx_order(recurrent_kernel).T[None]
    if not case.use_bias:
        return W, R, None
    if case.cell == "gru":
        return W, R, np.reshape(bias, (1, -1))
    return W, R, np.concatenate([onnx_order(bias), np.zeros(4 * U, np.float32)])[None]


def onnx_rnn_model(case, kernel, recurrent_kernel, bias):
    """An ONNX graph ``Transpose -> LSTM or GRU (layout 0) -> Squeeze`` with Keras's weights.

    The CPU kernels reject ``layout=1`` so the batch-major input is transposed to
    (T, B, D) first; a GRU node has ``linear_before_reset=1`` (Keras's reset_after).
    """
    from onnx import TensorProto, helper, numpy_helper

    U = case.U
    state_in, state_out = STATES[case.cell]
    W, R, Bv = _onnx_weights(case, kernel, recurrent_kernel, bias)
    inits = [numpy_helper.from_array(np.ascontiguousarray(W, np.float32), "W"),
             numpy_helper.from_array(np.ascontiguousarray(R, np.float32), "R")]
    node_inputs = ["X_tbd", "W", "R"]
    if Bv is not None:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(Bv, np.float32), "B"))
        node_inputs.append("B")
    else:
        node_inputs.append("")
    graph_inputs = [helper.make_tensor_value_info("X", TensorProto.FLOAT, [case.B, case.T, case.D])]
    if case.stateful:
        node_inputs += [""] + list(state_in)
        graph_inputs += [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, case.B, U])
                         for n in state_in]
    acts, alphas, betas = [], [], []
    functions = (case.recurrent_activation, case.activation) + ((case.activation,) if case.cell == "lstm" else ())
    for name in functions:
        if name not in _ONNX_ACT:
            raise Unsupported(f"onnxruntime's {case.cell.upper()} has no {name!r} activation")
        op, alpha, beta = _ONNX_ACT[name]
        acts.append(op)
        if alpha is not None:
            alphas.append(alpha)
            betas.append(beta)
    attrs = {"hidden_size": U, "activations": acts, "layout": 0}
    if case.cell == "gru":
        attrs["linear_before_reset"] = 1
    if alphas:
        # onnxruntime consumes alphas/betas in order, only for functions that take them.
        attrs.update(activation_alpha=alphas, activation_beta=betas)
    nodes = [
        helper.make_node("Transpose", ["X"], ["X_tbd"], perm=[1, 0, 2]),
        helper.make_node(case.cell.upper(), node_inputs, [""] + list(state_out), **attrs),
        helper.make_node("Squeeze", ["Y_h", "axes0"], ["h_T"]),
    ]
    inits.append(numpy_helper.from_array(np.array([0], np.int64), "axes0"))
    outputs = [helper.make_tensor_value_info("h_T", TensorProto.FLOAT, [case.B, U])]
    if case.stateful:
        outputs += [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, case.B, U]) for n in state_out]
    graph = helper.make_graph(nodes, f"keras_{case.cell}", graph_inputs, outputs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def onnxruntime_runner(case, kernel, recurrent_kernel, bias, threads):
    """onnxruntime's LSTM / GRU op, intra-op threads = ``threads``, spinning off."""
    try:
        import onnxruntime as ort
        import onnx  # noqa: F401
    except ImportError as exc:
        raise Unavailable(f"onnxruntime/onnx not installed ({exc}); pip install onnxruntime onnx") from None
    if case.mask is not None:
        raise Unsupported(f"onnxruntime's {case.cell.upper()} has no left-padding mask (sequence_lens pads on "
                          "the right)")
    model = onnx_rnn_model(case, kernel, recurrent_kernel, bias)
    so = ort.SessionOptions()
    so.intra_op_num_threads = int(threads)
    so.inter_op_num_threads = 1
    # Spinning threads would steal the core from the next contender of an interleaved race.
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return graph_runner("onnxruntime", case, lambda feed, names: sess.run(names, feed),
                        version=ort.__version__, notes="intra_op spinning off")


def graph_runner(name, case, run_graph, **kw):
    """A Runner over a compiled ``onnx_rnn_model`` graph: ``run_graph(feed, output_names)``
    returns the outputs; stateful cases feed ``Y_h`` (and ``Y_c``) back as ``h0`` (and ``c0``)."""
    state_in, state_out = STATES[case.cell]
    state = {}

    def reset():
        for n in state_in:
            state[n] = np.zeros((1, case.B, case.U), np.float32)

    reset()

    def call(x, mask=None):
        if not case.stateful:
            return run_graph({"X": x}, ["h_T"])[0]
        out, *finals = run_graph({"X": x, **state}, ["h_T", *state_out])
        state.update(zip(state_in, finals))
        return out

    return Runner(name, call, reset=reset, **kw)


# ----------------------------------------------------------------------------- OpenVINO
OPENVINO_CONFIG = {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"}


def openvino_runner(case, kernel, recurrent_kernel, bias, threads):
    """OpenVINO's CPU plugin on ``onnx_rnn_model``'s graph, f32, ``threads`` inference threads."""
    try:
        import openvino as ov
        import onnx  # noqa: F401
    except ImportError as exc:
        raise Unavailable(f"openvino/onnx not installed ({exc}); pip install openvino onnx") from None
    op = case.cell.upper()
    if case.mask is not None:
        raise Unsupported(f"OpenVINO runs the ONNX {op} node: no left-padding mask")
    if case.activation != "tanh" or case.recurrent_activation != "sigmoid":
        raise Unsupported(f"OpenVINO's CPU {op} takes only sigmoid/tanh (HardSigmoid: 'Unsupported "
                          "activation function')")
    model = onnx_rnn_model(case, kernel, recurrent_kernel, bias)
    config = dict(OPENVINO_CONFIG, INFERENCE_NUM_THREADS=int(threads))
    with tempfile.TemporaryDirectory() as tmp:  # compile_model of the ONNX file, as a user would
        path = os.path.join(tmp, f"{case.cell}.onnx")
        with open(path, "wb") as fh:
            fh.write(model.SerializeToString())
        compiled = ov.Core().compile_model(path, "CPU", config)
    request = compiled.create_infer_request()

    def run_graph(feed, names):
        request.infer(feed)
        return [request.get_tensor(n).data.copy() for n in names]

    return graph_runner("openvino", case, run_graph, version=ov.get_version().split("-")[0],
                        notes=", ".join(f"{k}={v}" for k, v in config.items()))
