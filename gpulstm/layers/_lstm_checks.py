"""Argument checks of the LSTM layer, each raising a Keras-style ValueError."""
import numbers

import numpy as np

from gpulstm.layers._arrays import REAL_KINDS, check_real


def positive_int(value, arg):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(
            f"Received an invalid value for argument `{arg}`, expected a positive "
            f"integer, got {value!r}. Received: {arg}={value!r}"
        )
    return int(value)


def rate(value, arg):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < 1:
        raise ValueError(
            f"Expected `{arg}` to be a float in [0, 1). Received: {arg}={value!r}"
        )
    return float(value)


def input_shape(shape, layer, check_features=True):
    try:
        shape = tuple(None if d is None else int(d) for d in shape)
    except TypeError:
        raise ValueError(
            f"Expected `input_shape` to be a tuple of 3 dimensions. "
            f"Received: input_shape={shape!r}"
        ) from None
    if len(shape) != 3:
        raise ValueError(
            f"Input 0 of layer '{layer.name}' is incompatible with the layer: expected "
            f"ndim=3, found ndim={len(shape)}. Full shape received: {shape}. "
            f"{type(layer).__name__} takes (batch, timesteps, features)"
            + (" in time-major order (timesteps, batch, features)." if layer.time_major else ".")
        )
    if check_features and shape[-1] is None:
        raise ValueError(
            f"The last dimension of the input to layer '{layer.name}' must be known. "
            f"Received: input_shape={shape}"
        )
    return shape


def inputs(x, layer, xp=np):
    """The input as a float array of the layer's dtype, rank 3."""
    if (type(x) is np.ndarray and xp is np and x.ndim == 3 and x.dtype == layer.dtype
            and x.shape[0] and x.shape[1] and x.flags.c_contiguous):
        return x  # already what the kernels take: a streaming call's common case
    if isinstance(x, (list, tuple)):
        try:
            x = np.asarray(x)
        except ValueError:
            raise ValueError(
                f"Layer '{layer.name}' expected a numeric array. "
                f"Received: inputs of type {type(x).__name__} with ragged entries"
            ) from None
    dtype = getattr(x, "dtype", None)
    if dtype is None or np.dtype(dtype).kind not in REAL_KINDS:  # complex, str, object
        raise ValueError(
            f"Layer '{layer.name}' expected a numeric array of shape (batch, timesteps, "
            f"features). Received: inputs of type {type(x).__name__}"
            + (f" with dtype={dtype}" if dtype is not None else "")
            + ". Pass real numbers (a bool, integer or float dtype)"
        )
    input_shape(x.shape, layer)
    if 0 in x.shape[:2]:
        raise ValueError(
            f"Layer '{layer.name}' needs at least one sample and one timestep. "
            f"Received: inputs with shape {tuple(x.shape)}"
        )
    return xp.ascontiguousarray(xp.asarray(x, dtype=layer.dtype))


def mask(m, B, T, layer, xp=np):
    if m is None:
        return None
    m = check_real(xp.asarray(m), f"the mask of layer '{layer.name}'",
                   "Pass a bool mask (or 0/1 numbers), True where a timestep is used")
    expected = (T, B) if layer.time_major else (B, T)
    if tuple(m.shape) != expected:
        raise ValueError(
            f"Layer '{layer.name}' expected a mask of shape {expected} "
            f"({'timesteps, batch' if layer.time_major else 'batch, timesteps'}). "
            f"Received: mask with shape {tuple(m.shape)}"
        )
    return xp.ascontiguousarray(m.astype(bool))


def states(values, B, layer, arg, xp=np):
    """The layer's states ([h, c] for an LSTM, [h] for a GRU) checked against (B, U)
    and cast to the layer's dtype."""
    n = getattr(layer, "_n_states", 2)
    # a user cell's states may differ in width (``state_sizes``); the layers' are all U
    sizes = getattr(layer, "state_sizes", None) or [layer.units] * n
    names = ["h", "c"][:n] if n <= 2 else [f"state_{i}" for i in range(n)]
    if not isinstance(values, (list, tuple)) and n == 1 and hasattr(values, "shape"):
        values = [values]  # a GRU's single state may come bare, as in Keras
    if not isinstance(values, (list, tuple)) or len(values) != n:
        raise ValueError(
            f"Layer '{layer.name}' expects `{arg}` to be a list of {n} "
            f"array{'s' if n > 1 else ''} [{', '.join(names)}] of "
            + (f"shape (batch, {sizes[0]})" if len(set(sizes)) == 1 else
               "shapes " + ", ".join(f"(batch, {u})" for u in sizes))
            + f". Received: {arg} of type "
            f"{type(values).__name__}"
            + (f" with {len(values)} entries" if isinstance(values, (list, tuple)) else "")
        )
    out = []
    for i, v in enumerate(values):
        try:
            arr = xp.asarray(v)
        except (TypeError, ValueError):
            arr = np.asarray(v, dtype=object)  # ragged: refused just below
        check_real(arr, f"`{arg}[{i}]` of layer '{layer.name}'",
                   f"Pass float arrays of shape (batch, {sizes[i]})")
        want = (B if B is not None else arr.shape[0], sizes[i])
        if arr.ndim != 2 or tuple(arr.shape) != want:
            raise ValueError(
                f"Layer '{layer.name}' expects each entry of `{arg}` to have shape "
                f"{want}. Received: {arg}[{i}] with shape {tuple(arr.shape)}"
            )
        out.append(xp.ascontiguousarray(arr.astype(layer.dtype)))
    return out
