"""The numba CPU SimpleRNN: ``h_t = act(x_t @ kernel + bias + h_tm1 @ recurrent_kernel)``,
the whole time loop in one compiled call on the recurrence driver (``cpu_driver``).

Per row block, ``x @ kernel + bias`` is projected up front (all timesteps), then each
step runs ``h @ recurrent_kernel`` on the ``cpu_micro`` panel kernels (float32 under a
``panels*`` kernel kind) or ``cpu_fast``'s row axpy (float64, ``tiles*``), and the
activation: float32 tanh on the rational tanh of ``cpu_fast``, every other one (and
float64) the exact shared scalar switch.  Masked steps carry h over and output the
previous output (zeros before the first unmasked step), as Keras does.
"""
import numba
import numpy as np

from gpulstm.kernels.codes import CODES
from gpulstm.kernels import _cache  # noqa: F401  (first: before any cached kernel)
from gpulstm.kernels import cpu_driver
from gpulstm.kernels.cpu_driver import act as _act
from gpulstm.kernels.cpu_driver import product, project
from gpulstm.kernels.cpu_rows import emit_last, emit_step, set_inputs
from gpulstm.kernels.cpu_fast import _FAST
from gpulstm.kernels.cpu_micro import step_reversed

_TANH = CODES["tanh"]
_JIT = dict(cache=True, error_model="numpy", nogil=True)


@numba.njit(fastmath=_FAST, inline="always", **_JIT)
def _cell_loop(z, H, mask, b0, t, has_mask, act, fast):
    nb, U = H.shape
    for r in range(nb):
        if has_mask and mask[b0 + r, t] == 0:
            continue
        for j in range(U):
            H[r, j] = _act(act, z[r, j], fast)


@numba.njit(fastmath=_FAST, **cpu_driver.LEAF)
def _cell(z, H, mask, b0, t, has_mask, act, fast):
    """H = act(z) on the unmasked rows; a constant tanh code (float32) vectorises."""
    if fast and act == _TANH:
        _cell_loop(z, H, mask, b0, t, has_mask, _TANH, True)
    else:
        _cell_loop(z, H, mask, b0, t, has_mask, act, fast)


@numba.njit(**_JIT)
def run_rows(x, PK, K, b_in, P, W, h, mask, act, fast, panel, wide, go_backwards,
             return_sequences, zero_output_for_mask, out, T, b0, b1):
    """Run rows [b0, b1) of a SimpleRNN through the whole sequence.

    x (B * T, D) (row b * T + t); K (D, U) the kernel and PK its panels; b_in (U,) or
    (0,); W the recurrent kernel (U, U) and P its panels (panels when ``panel``, else
    empty); h (B, U) initial state, overwritten with the final one; mask (B, T) uint8
    or (0, 0); out (B, T, U) in processing order or (B, 1, U) (written).
    """
    nb = b1 - b0
    U = h.shape[1]
    dt = h.dtype
    has_mask = mask.shape[0] > 0
    xs3 = project(x, PK, K, b_in, b0, b1, T, panel, wide)  # (nb, T, U)
    z = np.empty((nb, U), dt)
    prev = np.zeros((nb if has_mask else 0, U), dt)
    H = h[b0:b1]
    for s in range(T):
        t = T - 1 - s if go_backwards else s
        set_inputs(xs3, b_in, z, False, False, 0, t)  # z[r] = xs3[r, t] (bias in xs3)
        product(P, W, H, z, nb, panel, wide, step_reversed(s))
        _cell(z, H, mask, b0, t, has_mask, act, fast)
        emit_step(H, prev, out, mask, b0, t, s, has_mask, zero_output_for_mask,
                  return_sequences)
    if not return_sequences:
        emit_last(H, prev, out, b0, has_mask, T)


run_parallel = cpu_driver.parallel(run_rows, "rnn_run_parallel")


# -- Python entry ---------------------------------------------------------------------
class Prepared:
    """The weights' panels, made once per set of weights."""

    def __init__(self, kernel, recurrent_kernel):
        self.kernel = np.ascontiguousarray(kernel)
        self.recurrent_kernel = np.ascontiguousarray(recurrent_kernel)
        self._cache = {}

    def parts(self, panel):
        """``(PK, P)``: the kernel's and the recurrent kernel's panels (or stand-ins)."""
        key = bool(panel)
        if key not in self._cache:
            self._cache[key] = (cpu_driver.panels(self.kernel, panel),
                                cpu_driver.panels(self.recurrent_kernel, panel))
        return self._cache[key]


def prepare(kernel, recurrent_kernel, bias=None):
    """A ``Prepared`` for these weights, to pass back as ``rnn_forward(..., prepared=)``."""
    return Prepared(kernel, recurrent_kernel)


def rnn_forward(x, kernel, recurrent_kernel, bias, h0, mask, *, activation,
                go_backwards=False, return_sequences=False, zero_output_for_mask=False,
                prepared=None):
    """CPU SimpleRNN forward pass: ``(output, h_T)``; output (B, T, U) in processing
    order when ``return_sequences``, else (B, U).

    x (B, T, D); kernel (D, U); recurrent_kernel (U, U); bias (U,) or None; h0 (B, U);
    mask (B, T) bool or None; ``activation`` a code of ``gpulstm.activations.CODES``
    (callables: see ``cpu_rnn_numpy``).
    """
    dtype = recurrent_kernel.dtype
    char = dtype.char
    B, T, D = x.shape
    U = recurrent_kernel.shape[0]
    if prepared is None:
        prepared = Prepared(kernel, recurrent_kernel)
    panel, wide = cpu_driver.kind(char)
    pk, p = prepared.parts(panel)
    b_in = cpu_driver.EMPTY[char] if bias is None else np.ascontiguousarray(bias, dtype)
    x2, h, m, out = cpu_driver.buffers(x, h0, mask, U, dtype, return_sequences)
    args = (x2, pk, prepared.kernel, b_in, p, prepared.recurrent_kernel, h, m,
            np.int64(activation), char == "f", panel, wide, bool(go_backwards),
            bool(return_sequences), bool(zero_output_for_mask), out, T)
    cpu_driver.run(run_rows, run_parallel, args, B, B * T * U * (D + U), panel and wide)
    return (out if return_sequences else out[:, 0]), h
