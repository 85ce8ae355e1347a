"""The CPU backend as the dispatcher loads it: numba kernels, NumPy until they pay off.

Loading numba and the cached kernels costs about a second in a fresh process
(``import numba`` ~0.3 s, SciPy's BLAS lookup ~0.3 s, numba's registries ~0.3 s on
the 2-core development machine), while a small LSTM call in NumPy costs
milliseconds.  So, as a ski rental: calls run on the NumPy tier (``cpu_numpy``)
while the NumPy time spent so far plus this call's estimate stays under
``LOAD_COST_S``; the first call that would cross it loads numba, and from then
on every call runs the numba kernels (``cpu``).  Once ``gpulstm.kernels.cpu`` is
imported (by this module or anyone else), the tier is over.

The two tiers agree to the float32 tolerance, not bit for bit.  Set
``GPULSTM_NUMPY_TIER=0`` (read at every call) for the numba kernels from the
first call on.
"""
import os
import sys
import threading
import time

from gpulstm.kernels import cpu_numpy

ENV_VAR = "GPULSTM_NUMPY_TIER"
# What loading numba costs on the development machine (seconds, fresh process,
# warm cache; 0.8-1.1 s measured): the rent the tier may spend before buying.
LOAD_COST_S = 1.0
# The tier's cost model: a fixed cost per step (about 20 NumPy calls) plus the
# step's GEMM [x_t | h_tm1] @ [kernel; recurrent_kernel].  Measured on 2 cores
# (NumPy's BLAS threads as they come), actual / estimate: (1, 100, 32, 128) 0.95
# (masked +20%); (1, 1000, 16, 64) 0.8; (8, 100, 64, 256) 1.5; (4, 200, 8, 16)
# 1.7; (64, 100, 32, 256) 1.1; (256, 50, 128, 512) 0.65; (128, 10, 64, 1024) 0.5.
STEP_S = 40e-6
FLOPS = 40e9

_NUMBA = "gpulstm.kernels.cpu"
_lock = threading.Lock()
_spent = 0.0
_cpu = None  # the numba module once this module has loaded it: the per-call fast path


def _enabled():
    return os.environ.get(ENV_VAR, "1").strip().lower() not in ("0", "false", "no", "off")


def numba_loaded():
    """Whether the numba kernels are imported (the NumPy tier is over)."""
    return _NUMBA in sys.modules


def load_numba():
    """The numba kernel module (``gpulstm.kernels.cpu``), imported now if need be."""
    global _cpu
    if _cpu is None:
        import importlib

        try:
            _cpu = importlib.import_module(_NUMBA)
        except ImportError as exc:  # numba found (dispatch checks that) but broken
            from gpulstm.dispatch import BackendUnavailableError

            raise BackendUnavailableError(
                f"The 'cpu' backend's numba kernels cannot be imported ({exc}). To fix it: "
                "pip install a numba that works with this NumPy (pyproject.toml pins the "
                "versions gpulstm is tested with).") from exc
    return _cpu


def estimate_s(B, T, D, U):
    """The NumPy tier's expected time for one call of this size (seconds)."""
    return T * (STEP_S + 2.0 * B * (D + U) * 4 * U / FLOPS)


def tier_state():
    """``(enabled, numba_loaded, seconds spent on the tier)``, for ``gpulstm.info()``."""
    return _enabled(), numba_loaded(), _spent


def _use_tier(x, recurrent_kernel, x_proj, activation, recurrent_activation):
    if numba_loaded() or not _enabled():
        return False
    if not cpu_numpy.supports(activation, recurrent_activation):
        return False
    U = recurrent_kernel.shape[0]
    B, T, D = x.shape if x_proj is None else (*x_proj.shape[:2], 0)
    return _spent + estimate_s(B, T, D, U) <= LOAD_COST_S


class Deferred:
    """``prepare``'s result: the numba kernels' packed weights, made on first use.

    Packing needs the numba module, which a call on the NumPy tier must not load.
    """

    __slots__ = ("_args", "_prepared")

    def __init__(self, kernel, recurrent_kernel, bias):
        self._args = (kernel, recurrent_kernel, bias)
        self._prepared = None

    def get(self, cpu):
        if self._prepared is None:
            self._prepared = cpu.prepare(*self._args)  # a racing thread packs the same
        return self._prepared


def prepare(kernel, recurrent_kernel, bias=None):
    """Weights kept by the layer; packed for the numba kernels when they first run."""
    return Deferred(kernel, recurrent_kernel, bias)


def lstm_forward(x, kernel, recurrent_kernel, bias, h0, c0, mask, *, activation,
                 recurrent_activation, go_backwards=False, return_sequences=False,
                 zero_output_for_mask=False, x_proj=None, rec_masks=None, prepared=None):
    """CPU LSTM forward pass (see ``gpulstm.dispatch``): the NumPy tier or numba."""
    global _spent
    cpu = _cpu
    if cpu is None:
        if _use_tier(x, recurrent_kernel, x_proj, activation, recurrent_activation):
            t0 = time.perf_counter()
            result = cpu_numpy.lstm_forward(
                x, kernel, recurrent_kernel, bias, h0, c0, mask, activation=activation,
                recurrent_activation=recurrent_activation, go_backwards=go_backwards,
                return_sequences=return_sequences, zero_output_for_mask=zero_output_for_mask,
                x_proj=x_proj, rec_masks=rec_masks)
            with _lock:
                _spent += time.perf_counter() - t0
            return result
        cpu = load_numba()
    if type(prepared) is Deferred:
        prepared = prepared.get(cpu)
    return cpu.lstm_forward(x, kernel, recurrent_kernel, bias, h0, c0, mask,
                            activation=activation, recurrent_activation=recurrent_activation,
                            go_backwards=go_backwards, return_sequences=return_sequences,
                            zero_output_for_mask=zero_output_for_mask, x_proj=x_proj,
                            rec_masks=rec_masks, prepared=prepared)


# Two independent recurrences (a Bidirectional's directions) run side by side, one
# numba thread each, once each would take long enough to pay for the hand-over
# (~20-50 us): B * T * 4U * (D + U) multiply-adds per direction.
PAIR_MIN_WORK = 1 << 22
_pool = None
_pool_lock = threading.Lock()


def run_pair(work, first, second):
    """``(first(), second())``; on two cores at once when numba has >= 2 threads here
    and ``work`` (multiply-adds each) is large enough, each call on one numba thread
    (so together they use the cores the threads would have; no nested pools)."""
    global _pool
    cpu = _cpu
    if cpu is None or work < PAIR_MIN_WORK:
        return first(), second()
    import numba

    n = cpu._threads()
    if n < 2:
        return first(), second()
    if _pool is None:
        with _pool_lock:
            if _pool is None:
                from concurrent.futures import ThreadPoolExecutor

                _pool = ThreadPoolExecutor(1, thread_name_prefix="gpulstm-pair",
                                           initializer=numba.set_num_threads, initargs=(1,))
    future = _pool.submit(second)
    numba.set_num_threads(1)  # this thread's count only
    try:
        a = first()
    finally:
        numba.set_num_threads(n)
        b = future.result()  # raises second()'s error, if any, after first() is done
    return a, b


# -- the one-state cells (GRU, SimpleRNN) ---------------------------------------------
def _module(name):
    """``gpulstm.kernels.<name>``, imported on first use (``sys.modules`` after that: an
    ``importlib.import_module`` call costs ~2.5 us, a tenth of a small GRU call)."""
    mod = sys.modules.get(f"gpulstm.kernels.{name}")
    if mod is None:
        import importlib

        mod = importlib.import_module(f"gpulstm.kernels.{name}")
    return mod


def _one_state(cell, args, kw, acts, x_proj, rec_masks, prepared):
    """``cpu_<cell>_numpy.<cell>_forward(*args, **kw)`` for custom callables, dropout
    (``x_proj``, ``rec_masks``) and the tier's first calls, else ``cpu_<cell>``'s numba
    ``<cell>_forward`` (``prepared``: a ``Deferred`` or packed weights)."""
    global _spent
    forward = getattr(_module(f"cpu_{cell}_numpy"), f"{cell}_forward")
    if x_proj is not None or rec_masks is not None or any(callable(a) for a in acts):
        return forward(*args, x_proj=x_proj, rec_masks=rec_masks, **kw)
    # the tier's cost model is the LSTM's (4U gates a step): an upper bound here
    if _cpu is None and _use_tier(args[0], args[2], None, acts[0], acts[-1]):
        t0 = time.perf_counter()
        result = forward(*args, **kw)
        with _lock:
            _spent += time.perf_counter() - t0
        return result
    load_numba()
    mod = _module(f"cpu_{cell}")
    if type(prepared) is Deferred:
        prepared = prepared.get(mod)
    return getattr(mod, f"{cell}_forward")(*args, prepared=prepared, **kw)


# -- GRU ------------------------------------------------------------------------------
def gru_prepare(kernel, recurrent_kernel, bias=None):
    """A GRU's weights, packed for the numba kernel (``cpu_gru``) when it first runs."""
    return Deferred(kernel, recurrent_kernel, bias)


def gru_forward(x, kernel, recurrent_kernel, bias, h0, mask, *, activation,
                recurrent_activation, reset_after=True, go_backwards=False,
                return_sequences=False, zero_output_for_mask=False, x_proj=None,
                rec_masks=None, prepared=None):
    """CPU GRU forward pass ``(output, h_T)``: the NumPy tier (also custom callables and
    training-mode dropout), else the numba kernel ``cpu_gru.gru_forward``."""
    kw = dict(activation=activation, recurrent_activation=recurrent_activation,
              reset_after=reset_after, go_backwards=go_backwards,
              return_sequences=return_sequences, zero_output_for_mask=zero_output_for_mask)
    return _one_state("gru", (x, kernel, recurrent_kernel, bias, h0, mask), kw,
                      (activation, recurrent_activation), x_proj, rec_masks, prepared)


# -- SimpleRNN ------------------------------------------------------------------------
def rnn_prepare(kernel, recurrent_kernel, bias=None):
    """A SimpleRNN's weights, packed for the numba kernel (``cpu_rnn``) when it first runs."""
    return Deferred(kernel, recurrent_kernel, bias)


def rnn_forward(x, kernel, recurrent_kernel, bias, h0, mask, *, activation, go_backwards=False,
                return_sequences=False, zero_output_for_mask=False, x_proj=None,
                rec_masks=None, prepared=None):
    """CPU SimpleRNN forward pass ``(output, h_T)``: the NumPy tier (also custom callables
    and training-mode dropout), else the numba kernel ``cpu_rnn.rnn_forward``."""
    kw = dict(activation=activation, go_backwards=go_backwards,
              return_sequences=return_sequences, zero_output_for_mask=zero_output_for_mask)
    return _one_state("rnn", (x, kernel, recurrent_kernel, bias, h0, mask), kw, (activation,),
                      x_proj, rec_masks, prepared)
