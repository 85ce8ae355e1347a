"""The contenders of ``gpulstm bench``: gpulstm's backends and the peer libraries.

Every contender is built from the same Keras weights (kernel (D, 4U),
recurrent_kernel (U, 4U), bias (4U,) in Keras gate order i, f, c, o) and is used
the way a user would use it: NumPy in, NumPy out, the last output (B, U).  Peers
are imported only when asked for; a missing library raises ``Unavailable`` and a
configuration a library cannot express (a left-padded mask for torch, say) raises
``Unsupported``, so a race records why a cell is empty instead of failing.

Thread counts: ``set_threads(n)`` sets the process-wide knobs (numba, torch,
BLAS through threadpoolctl); onnxruntime takes its count per session, so runners
are built after ``set_threads`` for each thread block.
"""
import os

import numpy as np

PEERS = ("torch", "onnxruntime", "tf_keras", "torch-cuda")
DEFAULT_PEERS = ("torch", "onnxruntime")


class Unavailable(Exception):
    """The contender's library is not installed or cannot run here."""


class Unsupported(Exception):
    """The contender cannot express this configuration."""


class Runner:
    """One contender ready to run one case.

    ``call(x)`` runs one forward pass and returns the last output (B, U) as NumPy;
    stateful runners carry h and c from call to call until ``reset()``.
    """

    def __init__(self, name, call, *, kind="peer", device="cpu", version=None, reset=None, notes=None):
        self.name = name
        self.call = call
        self.kind = kind
        self.device = device
        self.version = version
        self.reset = reset or (lambda: None)
        self.notes = notes


def _gate_blocks(a, U):
    # Keras gate blocks along the last axis: i, f, c, o.
    return [a[..., k * U:(k + 1) * U] for k in range(4)]


# ----------------------------------------------------------------------------- gpulstm
def gpulstm_runner(backend, case, kernel, recurrent_kernel, bias, threads):
    """A ``gpulstm.LSTM`` layer on ``backend`` with the case's weights."""
    try:
        import gpulstm
        LSTM = gpulstm.LSTM
    except (ImportError, AttributeError) as exc:
        raise Unavailable(f"gpulstm.LSTM cannot be imported ({exc})") from None
    if threads is not None and backend == "cpu":
        import numba  # the thread count applies to kernels launched from now on

        numba.set_num_threads(min(int(threads), numba.config.NUMBA_NUM_THREADS))
    entry = gpulstm.dispatch.BACKENDS.get(backend)
    if entry is None:
        raise Unavailable(f"gpulstm has no {backend!r} backend")
    ok, why = entry.availability()
    if not ok:
        raise Unavailable(f"gpulstm's {backend!r} backend cannot run here: {why}")
    if backend == "cpu":
        # the race times steady state: the numba kernels, not the NumPy tier that
        # serves a fresh process's first calls (``startup`` measures those)
        entry.load().load_numba()
    layer = LSTM(
        case.U,
        activation=case.activation,
        recurrent_activation=case.recurrent_activation,
        use_bias=case.use_bias,
        stateful=case.stateful,
        backend=backend,
    )
    weights = [kernel, recurrent_kernel] + ([bias] if case.use_bias else [])
    layer.set_weights(weights)  # builds the layer from the kernel's shape
    device = "cuda" if backend.startswith("cuda") else "cpu"

    def call(x, mask=None):
        return layer(x) if mask is None else layer(x, mask=mask)

    reset = layer.reset_states if case.stateful else None
    return Runner(f"gpulstm-{backend}", call, kind="gpulstm", device=device,
                  version=getattr(gpulstm, "__version__", None), reset=reset)


# ----------------------------------------------------------------------------- torch
def _torch_runner(case, kernel, recurrent_kernel, bias, threads, device="cpu"):
    try:
        import torch
    except ImportError as exc:
        raise Unavailable(f"torch is not installed ({exc}); pip install torch==2.13.0") from None
    if case.activation != "tanh" or case.recurrent_activation != "sigmoid":
        raise Unsupported("torch.nn.LSTM has fixed sigmoid/tanh activations")
    if case.mask is not None:
        raise Unsupported("torch.nn.LSTM has no left-padding mask (packed sequences pad on the right)")
    if device == "cuda" and not torch.cuda.is_available():
        raise Unavailable("torch sees no CUDA device")
    if threads is not None:
        torch.set_num_threads(int(threads))  # set_threads() ran before torch was first imported
    lstm = torch.nn.LSTM(case.D, case.U, batch_first=True, bias=case.use_bias)
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(torch.from_numpy(np.ascontiguousarray(kernel.T)))
        lstm.weight_hh_l0.copy_(torch.from_numpy(np.ascontiguousarray(recurrent_kernel.T)))
        if case.use_bias:
            # Keras has one bias; torch adds two, so the second is zero.
            lstm.bias_ih_l0.copy_(torch.from_numpy(bias))
            lstm.bias_hh_l0.zero_()
    lstm = lstm.to(device).eval()
    state = {}

    def reset():
        zeros = torch.zeros(1, case.B, case.U, device=device)
        state["hc"] = (zeros, zeros.clone())

    reset()

    def call(x, mask=None):
        with torch.inference_mode():
            xt = torch.from_numpy(x).to(device)
            if case.stateful:
                _, hc = lstm(xt, state["hc"])
                state["hc"] = hc
            else:
                _, hc = lstm(xt)
            out = hc[0][0].cpu().numpy()  # h_T is (B, U): the last output without masks
            if device == "cuda":
                torch.cuda.synchronize()
            return out

    name = "torch" if device == "cpu" else "torch-cuda"
    return Runner(name, call, device=device, version=torch.__version__, reset=reset)


def torch_runner(case, kernel, recurrent_kernel, bias, threads):
    """torch.nn.LSTM on the CPU (oneDNN), under ``torch.inference_mode``."""
    return _torch_runner(case, kernel, recurrent_kernel, bias, threads, "cpu")


def torch_cuda_runner(case, kernel, recurrent_kernel, bias, threads):
    """torch.nn.LSTM on a CUDA device (cuDNN), NumPy in and out."""
    return _torch_runner(case, kernel, recurrent_kernel, bias, threads, "cuda")


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
    i, f, c, o = _gate_blocks(kernel, U)
    W = np.concatenate([i, o, f, c], axis=-1).T[None]  # W is (1, 4U, D)
    i, f, c, o = _gate_blocks(recurrent_kernel, U)
    R = np.concatenate([i, o, f, c], axis=-1).T[None]  # R is (1, 4U, U)
    inits = [numpy_helper.from_array(np.ascontiguousarray(W, np.float32), "W"),
             numpy_helper.from_array(np.ascontiguousarray(R, np.float32), "R")]
    lstm_inputs = ["X_tbd", "W", "R"]
    if case.use_bias:
        i, f, c, o = _gate_blocks(bias, U)
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
    state = {}

    def reset():
        state["h0"] = np.zeros((1, case.B, case.U), np.float32)
        state["c0"] = np.zeros((1, case.B, case.U), np.float32)

    reset()

    def call(x, mask=None):
        if not case.stateful:
            return sess.run(["h_T"], {"X": x})[0]
        out, state["h0"], state["c0"] = sess.run(["h_T", "Y_h", "Y_c"], {"X": x, **state})
        return out

    return Runner("onnxruntime", call, version=ort.__version__, reset=reset,
                  notes="intra_op spinning off")


# ----------------------------------------------------------------------------- tf_keras
def tf_keras_runner(case, kernel, recurrent_kernel, bias, threads):
    """tf_keras.layers.LSTM in a ``tf.function`` (TensorFlow's own thread pools)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import tensorflow as tf
        import tf_keras
    except ImportError as exc:
        raise Unavailable(f"tensorflow/tf_keras not installed ({exc})") from None
    if threads is not None and threads != os.cpu_count():
        raise Unsupported("TensorFlow's thread count is fixed when it starts; run with all cores only")
    ract = case.recurrent_activation
    if ract == "hard_sigmoid":
        # tf_keras's own hard_sigmoid is Keras 2's (0.2x + 0.5); race Keras 3's formula.
        def ract(z):
            return tf.clip_by_value(z / 6.0 + 0.5, 0.0, 1.0)
    batch = {"batch_size": case.B} if case.stateful else {}
    layer = tf_keras.layers.LSTM(case.U, activation=case.activation, recurrent_activation=ract,
                                 use_bias=case.use_bias, stateful=case.stateful)
    inp = tf_keras.Input((case.T, case.D), **batch)
    m = tf_keras.Input((case.T,), dtype="bool", **batch) if case.mask else None
    layer(inp, mask=m)
    layer.set_weights([kernel, recurrent_kernel] + ([bias] if case.use_bias else []))

    @tf.function(reduce_retracing=True)
    def fwd(x, mask=None):
        return layer(x, mask=mask)

    def call(x, mask=None):
        if mask is None:
            return fwd(tf.constant(x)).numpy()
        return fwd(tf.constant(x), tf.constant(mask)).numpy()

    reset = layer.reset_states if case.stateful else None
    return Runner("tf_keras", call, version=tf_keras.__version__, reset=reset)


FACTORIES = {
    "torch": torch_runner,
    "onnxruntime": onnxruntime_runner,
    "tf_keras": tf_keras_runner,
    "torch-cuda": torch_cuda_runner,
}


def make_runner(name, case, kernel, recurrent_kernel, bias, threads):
    """Build contender ``name`` ("gpulstm-<backend>" or a peer in ``PEERS``)."""
    if name.startswith("gpulstm-"):
        return gpulstm_runner(name[len("gpulstm-"):], case, kernel, recurrent_kernel, bias, threads)
    return FACTORIES[name](case, kernel, recurrent_kernel, bias, threads)


def set_threads(n):
    """Set numba's and torch's thread counts (if imported); return a BLAS limiter context.

    Runners set their own library's count again when they import it first.
    """
    import sys

    if "numba" in sys.modules:
        import numba
        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        import contextlib
        return contextlib.nullcontext()
    return threadpool_limits(limits=n, user_api="blas")
