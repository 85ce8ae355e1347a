"""The SimpleRNN in plain NumPy: the CPU backend's first-call tier, custom activation
callables and training-mode dropout.

Same contract as ``cpu_rnn.rnn_forward`` plus ``x_proj`` (B, T, U), replacing
``x @ kernel + bias``, and ``rec_masks`` (B, 1, U) multiplying h_tm1 before the
recurrent product.  Agrees with the numba kernel to the float32 tolerance.
"""
import numpy as np

from gpulstm.kernels import cpu_numpy_driver


def rnn_forward(x, kernel, recurrent_kernel, bias, h0, mask, *, activation,
                go_backwards=False, return_sequences=False, zero_output_for_mask=False,
                x_proj=None, rec_masks=None, prepared=None):
    """NumPy SimpleRNN forward pass: ``(output, h_T)`` (``prepared`` is ignored)."""
    rk = recurrent_kernel
    dtype = rk.dtype
    act = cpu_numpy_driver.array_fn(activation)
    U = rk.shape[0]
    if x_proj is None:
        B, T, D = x.shape
        x_proj = (np.asarray(x, dtype).reshape(B * T, D) @ kernel).reshape(B, T, U)
        if bias is not None:
            x_proj += bias

    def step(xs, h):
        h_in = h if rec_masks is None else h * rec_masks[:, 0]
        return act(xs + h_in @ rk, np.empty(h.shape, dtype))

    return cpu_numpy_driver.run(step, x_proj, h0, mask, dtype, go_backwards, return_sequences,
                                zero_output_for_mask)
