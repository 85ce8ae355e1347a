"""The contenders of ``gpulstm bench``: gpulstm's backends and the peer libraries.

Every contender is built from the same Keras weights of the case's cell (LSTM:
kernel (D, 4U), recurrent_kernel (U, 4U), bias (4U,) in Keras gate order i, f, c, o;
GRU: (D, 3U), (U, 3U), bias (2, 3U) in gate order z, r, h with ``reset_after=True``)
and is used the way a user would use it: NumPy in, NumPy out, the last output (B, U).  Peers
are imported only when asked for; a missing library raises ``Unavailable`` and a
configuration a library cannot express (a left-padded mask for torch, say) raises
``Unsupported``, so a race records why a cell is empty instead of failing.

Thread counts: ``set_threads(n)`` sets the process-wide knobs (numba, torch,
BLAS through threadpoolctl); onnxruntime takes its count per session, so runners
are built after ``set_threads`` for each thread block.
"""
import os

import numpy as np

from gpulstm._peers_base import Runner, Unavailable, Unsupported, gate_blocks  # noqa: F401
from gpulstm._peers_jax import jax_runner
from gpulstm._peers_onnx import onnx_rnn_model, onnxruntime_runner, openvino_runner  # noqa: F401

PEERS = ("torch", "onnxruntime", "openvino", "jax", "tf_keras", "torch-cuda")
DEFAULT_PEERS = ("torch", "onnxruntime", "openvino", "jax")
# How each peer is run (recorded in every results file).
DESCRIPTIONS = {
    "torch": "nn.LSTM / nn.GRU batch_first, inference_mode, set_num_threads(threads)",
    "onnxruntime": "one LSTM / GRU (linear_before_reset=1) node, intra_op_num_threads=threads, inter_op 1, "
                   "allow_spinning=0",
    "openvino": "compile_model(same ONNX graph, 'CPU', INFERENCE_NUM_THREADS=threads, "
                "INFERENCE_PRECISION_HINT=f32, PERFORMANCE_HINT=LATENCY)",
    "jax": "jax.jit(x @ W + b, then lax.scan of the LSTM / GRU step with h @ U); 1 thread: XLA_FLAGS="
           "'--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1' (cpu_util says "
           "whether honoured)",
    "tf_keras": "tf_keras.layers.LSTM / GRU in tf.function, all cores only",
    "torch-cuda": "nn.LSTM / nn.GRU on CUDA (cuDNN), NumPy in and out",
}


# ----------------------------------------------------------------------------- gpulstm
def gpulstm_runner(backend, case, kernel, recurrent_kernel, bias, threads):
    """A ``gpulstm.LSTM`` (or ``gpulstm.GRU``) layer on ``backend`` with the case's weights."""
    layer_name = case.cell.upper()
    try:
        import gpulstm
        layer_class = getattr(gpulstm, layer_name)
    except (ImportError, AttributeError) as exc:
        raise Unavailable(f"gpulstm.{layer_name} cannot be imported ({exc})") from None
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
    try:
        layer = layer_class(case.U, activation=case.activation, recurrent_activation=case.recurrent_activation,
                            use_bias=case.use_bias, stateful=case.stateful, backend=backend)
    except gpulstm.dispatch.BackendUnavailableError as exc:  # a cell this backend does not run yet
        raise Unsupported(str(exc)) from None
    weights = [kernel, recurrent_kernel] + ([bias] if case.use_bias else [])
    layer.set_weights(weights)  # builds the layer from the kernel's shape
    device = "cuda" if backend.startswith("cuda") else "cpu"

    def call(x, mask=None):
        return layer(x) if mask is None else layer(x, mask=mask)

    reset = layer.reset_states if case.stateful else None
    return Runner(f"gpulstm-{backend}", call, kind="gpulstm", device=device,
                  version=getattr(gpulstm, "__version__", None), reset=reset)


# ----------------------------------------------------------------------------- torch
def torch_weights(case, kernel, recurrent_kernel, bias):
    """torch's ``weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0`` for Keras weights.

    The gate blocks go back to torch's order (``gpulstm.io.torch_import.CELLS``, the
    importer's map); an LSTM's one Keras bias becomes ``bias_ih`` with ``bias_hh = 0``, a
    GRU's [input; recurrent] rows become ``bias_ih`` and ``bias_hh``.
    """
    from gpulstm.io.torch_import import CELLS

    blocks = np.argsort(CELLS[case.cell][2])  # torch block j = Keras block blocks[j]
    U = case.U

    def torch_rows(a):  # (., G) in Keras order -> (G, .) in torch order
        keras = gate_blocks(a, U)
        return np.ascontiguousarray(np.concatenate([keras[k] for k in blocks], axis=-1).T)

    if not case.use_bias:
        return torch_rows(kernel), torch_rows(recurrent_kernel), None, None
    b = np.reshape(bias, (-1, bias.shape[-1]))
    b_hh = torch_rows(b[1]) if case.cell == "gru" else np.zeros(bias.shape[-1], np.float32)
    return torch_rows(kernel), torch_rows(recurrent_kernel), torch_rows(b[0]), b_hh


def _torch_runner(case, kernel, recurrent_kernel, bias, threads, device="cpu"):
    try:
        import torch
    except ImportError as exc:
        raise Unavailable(f"torch is not installed ({exc}); pip install torch==2.13.0") from None
    module = "nn." + case.cell.upper()
    if case.activation != "tanh" or case.recurrent_activation != "sigmoid":
        raise Unsupported(f"torch.{module} has fixed sigmoid/tanh activations")
    if case.mask is not None:
        raise Unsupported(f"torch.{module} has no left-padding mask (packed sequences pad on the right)")
    if device == "cuda" and not torch.cuda.is_available():
        raise Unavailable("torch sees no CUDA device")
    if threads is not None:
        torch.set_num_threads(int(threads))  # set_threads() ran before torch was first imported
    rnn = getattr(torch.nn, case.cell.upper())(case.D, case.U, batch_first=True, bias=case.use_bias)
    with torch.no_grad():
        for name, w in zip(("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"),
                           torch_weights(case, kernel, recurrent_kernel, bias)):
            if w is not None:
                getattr(rnn, name).copy_(torch.from_numpy(w))
    rnn = rnn.to(device).eval()
    state = {}

    def reset():
        zeros = torch.zeros(1, case.B, case.U, device=device)
        state["s"] = (zeros, zeros.clone()) if case.cell == "lstm" else zeros

    reset()

    def call(x, mask=None):
        with torch.inference_mode():
            xt = torch.from_numpy(x).to(device)
            if case.stateful:
                _, s = rnn(xt, state["s"])
                state["s"] = s
            else:
                _, s = rnn(xt)
            h = s[0] if case.cell == "lstm" else s  # (h_n, c_n) or h_n
            out = h[0].cpu().numpy()  # h_T is (B, U): the last output without masks
            if device == "cuda":
                torch.cuda.synchronize()
            return out

    name = "torch" if device == "cpu" else "torch-cuda"
    return Runner(name, call, device=device, version=torch.__version__, reset=reset)


def torch_runner(case, kernel, recurrent_kernel, bias, threads):
    """torch.nn.LSTM / nn.GRU on the CPU (oneDNN), under ``torch.inference_mode``."""
    return _torch_runner(case, kernel, recurrent_kernel, bias, threads, "cpu")


def torch_cuda_runner(case, kernel, recurrent_kernel, bias, threads):
    """torch.nn.LSTM / nn.GRU on a CUDA device (cuDNN), NumPy in and out."""
    return _torch_runner(case, kernel, recurrent_kernel, bias, threads, "cuda")


# ----------------------------------------------------------------------------- tf_keras
def tf_keras_runner(case, kernel, recurrent_kernel, bias, threads):
    """tf_keras.layers.LSTM (or GRU) in a ``tf.function`` (TensorFlow's own thread pools)."""
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
    layer = getattr(tf_keras.layers, case.cell.upper())(
        case.U, activation=case.activation, recurrent_activation=ract, use_bias=case.use_bias,
        stateful=case.stateful)
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
    "openvino": openvino_runner,
    "jax": jax_runner,
    "tf_keras": tf_keras_runner,
    "torch-cuda": torch_cuda_runner,
}


JAX_ONE_THREAD_FLAGS = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


def worker_env(name, threads):
    """Environment a contender's worker process needs before its library is imported."""
    if name != "jax":
        return {}
    env = {"JAX_PLATFORMS": "cpu"}
    if int(threads) == 1:  # XLA reads its thread settings once, at start-up
        env["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + JAX_ONE_THREAD_FLAGS).strip()
    return env


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
