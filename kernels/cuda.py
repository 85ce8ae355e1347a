"""The numba.cuda + CuPy backend's entry points: ``lstm_forward``, ``gru_forward`` and
``rnn_forward`` (SimpleRNN; one ``run`` for every cell of ``cuda_cells``), and the
weights a layer keeps across calls (``prepare``).

One CuPy GEMM projects every timestep, ``(B*T, D) @ (D, G) + bias`` in full fp32;
then one persistent kernel runs the whole recurrence in a single launch, one grid
barrier per timestep (two for GRU without ``reset_after``): by default ``cuda_warp``
(the cell-agnostic driver: a warp per hidden unit, the block's
weights in shared memory as far as they fit, warp-shuffle reductions, float32
activations, flag barrier when every block is resident); ``cuda_kernels`` (the
first version) serves as the benchmark baseline.

Training-mode recurrent dropout (``rec_masks`` (B, gates, U), h_tm1 multiplied by
each gate's mask before that gate's recurrent product) runs on the warp driver's
masked variant for GRU and SimpleRNN; the LSTM keeps the first-version kernel for
masks by default until a GPU run has validated the warp driver's masked LSTM (an
explicit ``WarpPlan`` runs it there: the simulator tests do).

``prepare`` keeps the float32 / device copies and the packed recurrent weights of a
layer across calls.

Arrays: NumPy in gives NumPy out; CuPy or any ``__cuda_array_interface__`` input
gives CuPy out on the same device, on the caller's current CuPy stream.  Every call
allocates its own buffers (CuPy's pool), so concurrent calls share nothing mutable.

Running one call on the kernels (the projection, the buffers, the default plan, the
launch, the simulator's path and the plans' opt-in drivers) is ``cuda_launch``'s job.
"""
import threading

import numpy as np

from gpulstm._xp import is_device_array
from gpulstm.kernels import cuda_cells as _cells
from gpulstm.kernels.cuda_launch import SIM, _forward_gpu, _forward_sim, simulator  # noqa: F401
from gpulstm.kernels.cuda_plan import (Plan, WarpPlan, make_plan, make_warp_plan,  # noqa: F401
                                       pack_recurrent)


def array_module(a):
    """The array module the layer should use for ``a``: CuPy for device input."""
    if not SIM and is_device_array(a):
        import cupy

        return cupy
    return np


class Prepared:
    """Weights kept for one layer: float32 copies (device arrays on a GPU) and the
    packed recurrent weights per ``(n_blocks, upb)``, made once instead of per call.
    ``bias`` is the input bias; ``rec_bias`` a recurrent bias kept apart (GRU with
    ``reset_after``) or None."""

    def __init__(self, xp, kernel, recurrent_kernel, bias, rec_bias=None):
        f32 = np.float32
        self.kernel = None if kernel is None else xp.ascontiguousarray(xp.asarray(kernel, f32))
        self.recurrent_kernel = xp.ascontiguousarray(xp.asarray(recurrent_kernel, f32))
        self.bias = None if bias is None else xp.asarray(bias, f32)
        self.rec_bias = (xp.zeros(0, f32) if rec_bias is None
                         else xp.ascontiguousarray(xp.asarray(rec_bias, f32)))
        self._xp = xp
        self._packed = {}
        self._lock = threading.Lock()

    def packed(self, n_blocks, upb):
        key = (n_blocks, upb)
        with self._lock:
            got = self._packed.get(key)
            if got is None:
                got = self._packed[key] = pack_recurrent(self._xp, self.recurrent_kernel,
                                                         n_blocks, upb)
            return got


def prepare(kernel, recurrent_kernel, bias, rec_bias=None):
    """Upload / convert the weights once; pass the result as ``lstm_forward(prepared=)``."""
    if SIM:
        return Prepared(np, kernel, recurrent_kernel, bias, rec_bias)
    import cupy

    return Prepared(cupy, kernel, recurrent_kernel, bias, rec_bias)


def lstm_forward(x, kernel, recurrent_kernel, bias, h0, c0, mask, *, activation,
                 recurrent_activation, go_backwards=False, return_sequences=False,
                 zero_output_for_mask=False, x_proj=None, rec_masks=None, plan=None,
                 prepared=None):
    """CUDA LSTM forward pass; see ``gpulstm.dispatch`` for the contract.

    ``plan`` (a ``WarpPlan`` or a first-version ``Plan``) overrides the launch
    configuration (tests, benchmarks; with ``rec_masks`` the default is the first
    version's, a ``WarpPlan`` runs the warp driver's masked variant).  ``prepared``
    (from ``prepare``) replaces ``kernel``, ``recurrent_kernel`` and ``bias``.
    """
    weights = (kernel if x_proj is None else None, recurrent_kernel,
               bias if x_proj is None else None)
    return run(_cells.LSTM, x, weights, prepared, h0, c0, mask, activation,
               recurrent_activation, go_backwards, return_sequences, zero_output_for_mask,
               x_proj, rec_masks, plan)


def run(cell, x, weights, prepared, h0, c0, mask, activation, recurrent_activation,
        go_backwards, return_sequences, zero_output, x_proj, rec_masks, plan):
    """Any cell's forward pass ``(out, h, c)`` (c: LSTM only, else None).

    ``weights`` ``(kernel, recurrent_kernel, bias[, rec_bias])`` when ``prepared`` is None.
    """
    if SIM:
        return _forward_sim(cell, x, prepared or Prepared(np, *weights), h0, c0, mask,
                            activation, recurrent_activation, go_backwards, return_sequences,
                            zero_output, x_proj, rec_masks, plan)
    import cupy

    device_in = is_device_array(x if x_proj is None else x_proj)
    try:
        if prepared is None:
            prepared = Prepared(cupy, *weights)
        out = _forward_gpu(cupy, cell, x, prepared, h0, c0, mask, activation,
                           recurrent_activation, go_backwards, return_sequences,
                           zero_output, x_proj, rec_masks, plan)
    except cupy.cuda.memory.OutOfMemoryError as exc:
        raise MemoryError(
            f"gpulstm: the GPU ran out of memory for this {cell.name} call "
            f"({exc}). Use a smaller batch, free device memory, or pass backend='cpu'."
        ) from None
    if device_in:
        return out
    return tuple(None if a is None else cupy.asnumpy(a) for a in out)


def gru_prepare(kernel, recurrent_kernel, bias=None):
    """A GRU's weights for ``gru_forward(prepared=)``: a (2, 3U) bias (``reset_after``) is
    split into the input bias and the recurrent one (kept apart: ``r * (h @ U_h + b_h)``)."""
    b_in, b_rec = _gru_biases(bias, bias is not None and np.ndim(bias) == 2)
    return prepare(kernel, recurrent_kernel, b_in, b_rec)


def _gru_biases(bias, reset_after):
    if bias is None:
        return None, None
    return (bias[0], bias[1]) if reset_after else (bias, None)


def gru_forward(x, kernel, recurrent_kernel, bias, h0, mask, *, activation,
                recurrent_activation, reset_after=True, go_backwards=False,
                return_sequences=False, zero_output_for_mask=False, x_proj=None,
                rec_masks=None, plan=None, prepared=None):
    """CUDA GRU forward pass ``(output, h_T)``, gate order z, r, h (the contract of the CPU
    backend's ``gru_forward``).  ``x_proj`` (B, T, 3U) replaces ``x @ kernel + b_in``;
    ``prepared`` (from ``gru_prepare`` with the same ``reset_after``) the weights."""
    b_in, b_rec = _gru_biases(bias, reset_after)
    weights = (kernel if x_proj is None else None, recurrent_kernel,
               b_in if x_proj is None else None, b_rec)
    out, h, _ = run(_cells.gru_cell(reset_after), x, weights, prepared, h0, None, mask,
                    activation, recurrent_activation, go_backwards, return_sequences,
                    zero_output_for_mask, x_proj, rec_masks, plan)
    return out, h


def rnn_prepare(kernel, recurrent_kernel, bias=None):
    """A SimpleRNN's weights for ``rnn_forward(prepared=)``."""
    return prepare(kernel, recurrent_kernel, bias)


def rnn_forward(x, kernel, recurrent_kernel, bias, h0, mask, *, activation, go_backwards=False,
                return_sequences=False, zero_output_for_mask=False, x_proj=None,
                rec_masks=None, plan=None, prepared=None):
    """CUDA SimpleRNN forward pass ``(output, h_T)``: ``h_t = act(x_t @ kernel + bias +
    h_tm1 @ recurrent_kernel)``; ``x_proj`` (B, T, U) replaces ``x @ kernel + bias``."""
    weights = (kernel if x_proj is None else None, recurrent_kernel,
               bias if x_proj is None else None)
    out, h, _ = run(_cells.SIMPLE_RNN, x, weights, prepared, h0, None, mask, activation,
                    activation, go_backwards, return_sequences, zero_output_for_mask, x_proj,
                    rec_masks, plan)
    return out, h


__all__ = ["lstm_forward", "prepare", "gru_forward", "gru_prepare", "rnn_forward", "rnn_prepare",
           "array_module", "is_device_array", "make_plan", "make_warp_plan", "Plan", "WarpPlan", "simulator", "pack_recurrent"]
