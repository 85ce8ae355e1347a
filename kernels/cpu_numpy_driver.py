"""The NumPy recurrence driver of the one-state cells (``cpu_gru_numpy``,
``cpu_rnn_numpy``): the time loop, direction, masks and outputs, whatever the cell."""
import numpy as np

from gpulstm.kernels.cpu_numpy import activation_fn


def array_fn(fn):
    """``f(z, out)`` for a built-in code or a scalar callable (elementwise)."""
    if not callable(fn):
        return activation_fn(fn)
    vec = np.vectorize(fn, otypes=[np.float64])

    def apply(z, out):
        out[...] = vec(z)
        return out

    return apply


def run(step, x_proj, h0, mask, dtype, go_backwards, return_sequences, zero_output_for_mask):
    """``(output, h_T)`` of ``h_t = step(x_proj[:, t], h_tm1)`` over the sequence.

    x_proj (B, T, G) the projected inputs; h0 (B, U); mask (B, T) bool or None: a masked
    step keeps h and outputs the previous output (zeros before the first unmasked step,
    or always with ``zero_output_for_mask``); output (B, T, U) in processing order when
    ``return_sequences``, else (B, U)."""
    B, T = x_proj.shape[:2]
    h = np.array(h0, dtype=dtype, copy=True)
    U = h.shape[1]
    out = np.empty((B, T, U), dtype) if return_sequences else None
    prev = np.zeros((B, U), dtype)
    keep = None if mask is None else np.asarray(mask, bool)
    with np.errstate(all="ignore"):  # NaN and inf pass through silently, as on numba
        for s in range(T):
            t = T - 1 - s if go_backwards else s
            h_t = step(x_proj[:, t], h).astype(dtype)
            if keep is None:
                h = prev = h_t
            else:
                m = keep[:, t, None]
                h = np.where(m, h_t, h)
                prev = np.where(m, h_t, 0 if zero_output_for_mask else prev)
            if return_sequences:
                out[:, s] = prev
    if not return_sequences and prev is h:
        prev = prev.copy()
    return (out if return_sequences else prev), h
