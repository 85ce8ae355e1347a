"""The cells the persistent CUDA driver (``cuda_warp``) runs: product split and gate update.

The driver owns the time loop, direction, masks, states, the staging of the
product's input and the exchange between blocks; a cell owns two things:

* ``Cell.phases``: how a step's recurrent product is split, one entry per product
  ``(first gate, number of gates)`` in the packed recurrent weights (``gates``
  per unit, Keras's column order).  One product serves LSTM (i, f, c, o), GRU with
  ``reset_after`` (z, r, h: ``r * (h @ U_h + b_h)`` kept apart from the input part)
  and SimpleRNN; GRU without ``reset_after`` has two: ``h @ U_zr`` and then, after an
  exchange, ``(r * h) @ U_h``.
* ``finish(dyn, phase, gate, r, xv, s, bv, carry, h_tm1, act, ract) -> (v1, v2)``,
  the device function after each product.  On entry lane ``l`` holds ``s``, the full
  sum of the phase's gate ``gate = l >> 3`` for batch row ``r = l & 7``, with ``xv``
  its input projection and ``bv`` its recurrent bias (cells with ``rec_bias``, else
  0).  Lane ``r`` (``< rows``) also holds ``carry`` (the LSTM's c_tm1; in a later
  phase ``aux[0]`` of the phase before) and ``h_tm1`` (cells with ``needs_h``).
  After the last phase lane ``r`` returns ``(h_t, c_t)`` (c_t: LSTM only); an
  earlier phase returns two values the driver publishes as ``aux[0]`` and ``aux[1]``
  (the next product's input).

``finish`` must be block-uniform: every lane makes the same ``ishfl`` exchanges in the
same order, and consecutive exchanges use different scratch slots (the driver's
reduction ends on slot 1 and starts on slot 0).  The arithmetic around the
activations is ``gpulstm.kernels.cells``, shared with the CPU kernels.
"""
from dataclasses import dataclass

import numba
from numba import cuda

from gpulstm.kernels.cells import gru_candidate, gru_h, lstm_c

float32 = numba.float32


@dataclass(frozen=True)
class Cell:
    name: str
    gates: int                 # gates per unit in the packed recurrent weights
    phases: tuple              # per product: (first gate, number of gates)
    has_c: bool = False        # a second state (LSTM's c)
    rec_bias: bool = False     # a recurrent bias kept apart from the input bias
    needs_h: bool = False      # finish reads h_tm1


LSTM = Cell("lstm", 4, ((0, 4),), has_c=True)
GRU = Cell("gru", 3, ((0, 3),), rec_bias=True, needs_h=True)                  # reset_after
GRU_RESET_BEFORE = Cell("gru_reset_before", 3, ((0, 2), (2, 1)), needs_h=True)
SIMPLE_RNN = Cell("simple_rnn", 1, ((0, 1),))
CELLS = {c.name: c for c in (LSTM, GRU, GRU_RESET_BEFORE, SIMPLE_RNN)}


def gru_cell(reset_after):
    return GRU if reset_after else GRU_RESET_BEFORE


def make_finish(cell, act_f, ract_f, ishfl):
    """The device function ``finish`` of ``cell`` (see the module docstring)."""
    if cell is LSTM:
        @cuda.jit(device=True)
        def finish(dyn, phase, gate, r, xv, s, bv, carry, h_tm1, act, ract):
            # z_* = x_t @ kernel + bias + h_tm1 @ recurrent_kernel, one gate per lane
            z = xv + s
            if gate == 2:
                a = act_f(act, z)
            else:
                a = ract_f(ract, z)
            # slots 2, 0, 2: differ from the reduction's last (1) and next first (0)
            f_t = ishfl(dyn, a, 8 + r, 2)
            g_t = ishfl(dyn, a, 16 + r, 0)
            o_t = ishfl(dyn, a, 24 + r, 2)
            c_t = float32(lstm_c(f_t, carry, float32(a), g_t))
            return o_t * act_f(act, c_t), c_t
    elif cell is GRU:
        @cuda.jit(device=True)
        def finish(dyn, phase, gate, r, xv, s, bv, carry, h_tm1, act, ract):
            rec = s + bv                      # h_tm1 @ U + b_rec, this lane's gate
            a = ract_f(ract, xv + rec)        # z (lanes 0-7), r (8-15)
            r_t = ishfl(dyn, a, 8 + r, 2)     # slots 2, 1
            if gate == 2:
                a = act_f(act, float32(gru_candidate(xv, float32(r_t), rec)))
            hh = ishfl(dyn, a, 16 + r, 1)
            return float32(gru_h(float32(a), h_tm1, hh)), float32(0.0)
    elif cell is GRU_RESET_BEFORE:
        @cuda.jit(device=True)
        def finish(dyn, phase, gate, r, xv, s, bv, carry, h_tm1, act, ract):
            if phase == 0:
                a = float32(ract_f(ract, xv + s))  # z (lanes 0-7), r (8-15)
                r_t = ishfl(dyn, a, 8 + r, 2)
                return a, r_t * h_tm1             # aux: z, and r * h_tm1 for U_h
            hh = act_f(act, xv + s)               # s = (r * h_tm1) @ U_h; carry = z
            return float32(gru_h(carry, h_tm1, float32(hh))), float32(0.0)
    elif cell is SIMPLE_RNN:
        @cuda.jit(device=True)
        def finish(dyn, phase, gate, r, xv, s, bv, carry, h_tm1, act, ract):
            return float32(act_f(act, xv + s)), float32(0.0)
    else:
        raise ValueError(f"Expected one of the cells {sorted(CELLS)}. Received: cell={cell!r}")
    return finish
