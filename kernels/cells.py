"""Each recurrent cell's scalar state update, written once for every backend.

The activations are ``gpulstm.kernels.activations``; these are the few lines of
arithmetic around them that make a cell (Keras's equations, one value at a time):

* LSTM (gates i, f, c, o): ``c_t = f * c_tm1 + i * g``, ``h_t = o * act(c_t)``.
* GRU (gates z, r, h): ``h_t = z * h_tm1 + (1 - z) * hh``; with ``reset_after``
  the candidate's input is ``x_h + r * rec_h`` (``rec_h`` = h_tm1 @ U_h + b_rec_h),
  without it ``x_h + (r * h_tm1) @ U_h`` (a second product, the driver's business).
* SimpleRNN (one gate): ``h_t = act(x_proj + h_tm1 @ U)``: nothing beyond the
  activation.

Like the activations they are written once in ``_build`` and compiled per caller:
``lstm_c`` / ``gru_h`` / ``gru_candidate`` are plain ``numba.jit`` scalar functions
that the ``@cuda.jit`` cells (``cuda_cells``) call on the device, and the
``*_fast`` set is the same source inlined into numba's IR (``inline="always"``) so
the CPU kernels' ``fastmath`` loops keep vectorising and contracting it as before.
The constant 1 is float32: float32 in, float32 out; float64 in, float64 out.
"""
import numba
import numpy as np

from gpulstm.kernels import _cache  # noqa: F401  (first: before any cached kernel)

_ONE = np.float32(1.0)
# the CPU kernels' fastmath flags (NaN and inf keep their meaning)
FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}


def _build(**options):
    jit = numba.jit(nopython=True, cache=True, **options)

    @jit
    def lstm_c(f, c_tm1, i, g):
        """The LSTM's new cell state."""
        return f * c_tm1 + i * g

    @jit
    def gru_candidate(x_h, r, rec_h):
        """The GRU candidate's pre-activation with ``reset_after``."""
        return x_h + r * rec_h

    @jit
    def gru_h(z, h_tm1, hh):
        """The GRU's new state from its update gate and candidate."""
        return z * h_tm1 + (_ONE - z) * hh

    return lstm_c, gru_candidate, gru_h


# the device cells' functions (numba.jit, compiled for whichever target calls them)
lstm_c, gru_candidate, gru_h = _build()
# the same source inlined into the CPU kernels' fastmath loops
lstm_c_fast, gru_candidate_fast, gru_h_fast = _build(fastmath=FASTMATH, inline="always")
