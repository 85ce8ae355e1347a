"""The GRU in plain NumPy: the CPU backend's first-call tier, custom activation
callables and training-mode dropout (per-gate input projections and recurrent masks).

Same contract as ``cpu_gru.gru_forward`` plus ``x_proj`` (B, T, 3U), replacing
``x @ kernel + b_in``, and ``rec_masks`` (B, 3, U) multiplying h_tm1 per gate before
the recurrent product.  Agrees with the numba kernel to the float32 tolerance.
"""
import numpy as np

from gpulstm.kernels import cpu_numpy_driver


def gru_forward(x, kernel, recurrent_kernel, bias, h0, mask, *, activation,
                recurrent_activation, reset_after=True, go_backwards=False,
                return_sequences=False, zero_output_for_mask=False, x_proj=None,
                rec_masks=None, prepared=None):
    """NumPy GRU forward pass: ``(output, h_T)`` (``prepared`` is ignored)."""
    return _forward(x, kernel, recurrent_kernel, bias, h0, mask, activation,
                    recurrent_activation, reset_after, go_backwards, return_sequences,
                    zero_output_for_mask, x_proj, rec_masks)


def _forward(x, kernel, rk, bias, h0, mask, activation, recurrent_activation, reset_after,
             go_backwards, return_sequences, zero_output_for_mask, x_proj, rec_masks):
    dtype = rk.dtype
    act = cpu_numpy_driver.array_fn(activation)
    ract = cpu_numpy_driver.array_fn(recurrent_activation)
    U = rk.shape[0]
    b_in = b_rec = None
    if bias is not None:
        b_in, b_rec = (bias[0], bias[1]) if reset_after else (bias, None)
    if x_proj is None:
        B, T, D = x.shape
        x_proj = (np.asarray(x, dtype).reshape(B * T, D) @ kernel).reshape(B, T, 3 * U)
        if b_in is not None:
            x_proj += b_in

    def step(xs, h):
        B = h.shape[0]
        hz = hr = hh_in = h
        if rec_masks is not None:
            hz, hr, hh_in = (h * rec_masks[:, g] for g in range(3))
        rz = np.concatenate([hz @ rk[:, :U], hr @ rk[:, U:2 * U]], axis=1)
        if reset_after and b_rec is not None:
            rz += b_rec[:2 * U]
        zr = ract(xs[:, :2 * U] + rz, np.empty((B, 2 * U), dtype))
        z, r = zr[:, :U], zr[:, U:]
        if reset_after:
            rec_h = hh_in @ rk[:, 2 * U:]
            if b_rec is not None:
                rec_h += b_rec[2 * U:]
            rec_h *= r
        else:
            rec_h = (r * hh_in) @ rk[:, 2 * U:]
        hh = act(xs[:, 2 * U:] + rec_h, np.empty((B, U), dtype))
        return z * h + (1 - z) * hh

    return cpu_numpy_driver.run(step, x_proj, h0, mask, dtype, go_backwards, return_sequences,
                                zero_output_for_mask)
