"""Training-mode dropout of the recurrent layers (Keras 3 semantics), gate-count agnostic."""
import numpy as np

from gpulstm import _xp


def inputs(layer, x, B, D, xp):
    """``(x_proj, rec_masks)``: masks drawn once per call, shared over time.

    x_proj (B, T, G) is the dropped-out input projection plus the input bias
    (``layer._input_bias()``); rec_masks (B, G / U, U) the recurrent masks per gate,
    or None without recurrent dropout.
    """
    U, rng, dtype = layer.units, layer._rng, layer.dtype
    x = _xp.to_host(x)  # masks come from the layer's host generator

    def keep(rate, shape):
        if rate <= 0:
            return np.ones(shape, dtype)
        return (rng.random(shape) >= rate).astype(dtype) / (1.0 - rate)

    kernel = layer._weights[0]
    bias = layer._input_bias()
    n = kernel.shape[1] // U  # gates
    if layer.recurrent_dropout > 0:
        # Per-gate input masks (implementation 1): project each gate on its own.
        masks = keep(layer.dropout, (n, B, 1, D))
        parts = [(x * masks[g]) @ kernel[:, g * U:(g + 1) * U] for g in range(n)]
        x_proj = np.concatenate(parts, axis=-1) + bias
        rec_masks = keep(layer.recurrent_dropout, (B, n, U))
    else:
        x_proj = (x * keep(layer.dropout, (B, 1, D))) @ kernel + bias
        rec_masks = None
    return xp.asarray(x_proj.astype(dtype)), (
        None if rec_masks is None else xp.asarray(rec_masks))
