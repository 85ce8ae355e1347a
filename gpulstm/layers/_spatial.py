"""Shared pieces of the convolution and pooling layers: argument checks, padding, windows.

Windows are gathered with one strided slice per kernel offset (``prod(kernel_size)``
slices), which works the same on NumPy and CuPy arrays; a convolution then is that
stack of slices (im2col) times the kernel, one GEMM per group.
"""
import itertools
import numbers

from gpulstm import _xp
from gpulstm.layers._checked import CheckedLayer
from gpulstm.layers._common import shape_str


def int_tuple(value, n, arg, allow_zero=False):
    """Keras's ``standardize_tuple``: an int or ``n`` ints -> a tuple of ``n`` ints."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value,) * n
    try:
        out = tuple(int(v) for v in value)
        ok = len(out) == n and all(not isinstance(v, bool) and int(v) == v for v in value)
    except (TypeError, ValueError):
        ok = False
    low = 0 if allow_zero else 1
    if not ok or any(v < low for v in out):
        raise ValueError(
            f"The `{arg}` argument must be a tuple of {n} integers "
            f"{'>= 0' if allow_zero else '> 0'} (or one such integer). Received: {arg}={value!r}")
    return out


def data_format_of(value):
    """``"channels_last"`` (the default, as Keras's config default) or ``"channels_first"``."""
    value = "channels_last" if value is None else str(value).lower()
    if value not in ("channels_last", "channels_first"):
        raise ValueError("The `data_format` argument must be one of {'channels_first', "
                         f"'channels_last'}}. Received: data_format={value!r}")
    return value


def padding_of(value, allowed=("valid", "same")):
    value = str(value).lower() if isinstance(value, str) else value
    if value not in allowed:
        raise ValueError(f"The `padding` argument must be a value in {set(allowed)}. "
                         f"Received: padding={value!r}")
    return value


def out_length(n, k_eff, stride, padding):
    """The output length of one spatial axis (None stays None), as Keras computes it."""
    if n is None:
        return None
    if padding == "valid":
        return (n - k_eff) // stride + 1
    return (n - 1) // stride + 1  # "same" and "causal"


def pads(n, k_eff, stride, padding):
    """``(before, after)`` zero padding of one axis of length ``n`` (TF's 'same' rule)."""
    if padding == "valid":
        return 0, 0
    if padding == "causal":
        return k_eff - 1, 0
    total = max((out_length(n, k_eff, stride, "same") - 1) * stride + k_eff - n, 0)
    return total // 2, total - total // 2


def to_channels_last(x, data_format):
    if data_format == "channels_last":
        return x
    return x.transpose((0,) + tuple(range(2, x.ndim)) + (1,))


def from_channels_last(y, data_format):
    if data_format == "channels_last":
        return y
    return y.transpose((0, y.ndim - 1) + tuple(range(1, y.ndim - 1)))


def spatial_dims(shape, data_format):
    return tuple(shape[1:-1]) if data_format == "channels_last" else tuple(shape[2:])


def windows(x, kernel_size, strides, dilation, padding, fill=0.0):
    """``(B, *out, K, C)``: every window of channels-last ``x`` (B, *S, C), K = prod(kernel).

    ``fill`` pads the borders ("same"/"causal"); the slices are views, the stack one copy.
    """
    xp = _xp.array_module(x)
    spatial = x.shape[1:-1]
    k_eff = [d * (k - 1) + 1 for k, d in zip(kernel_size, dilation)]
    pad = [pads(n, ke, s, padding) for n, ke, s in zip(spatial, k_eff, strides)]
    if any(p != (0, 0) for p in pad):
        x = xp.pad(x, [(0, 0)] + pad + [(0, 0)], constant_values=fill)
    out = [out_length(n, ke, s, padding) for n, ke, s in zip(spatial, k_eff, strides)]
    cols = []
    for offset in itertools.product(*(range(k) for k in kernel_size)):
        index = (slice(None),) + tuple(
            slice(o * d, o * d + s * (m - 1) + 1, s)
            for o, d, s, m in zip(offset, dilation, strides, out)) + (slice(None),)
        cols.append(x[index])
    return xp.stack(cols, axis=-2)


def conv(x, kernel2d, kernel_size, strides, dilation, padding):
    """``(B, *out, F)``: channels-last ``x`` (B, *S, C) convolved with ``kernel2d``
    (prod(kernel_size) * C, F) as one im2col + GEMM."""
    cols = windows(x, kernel_size, strides, dilation, padding)
    lead = cols.shape[:-2]
    y = cols.reshape(-1, cols.shape[-2] * cols.shape[-1]) @ kernel2d
    return y.reshape(lead + (kernel2d.shape[-1],))


class SpatialLayer(CheckedLayer):
    """Base of conv and pooling layers: a fixed input rank, and no mask passes through
    (Keras 3's convolution and pooling layers do not support masking)."""

    rank = 1

    def compute_mask(self, inputs, mask=None):
        return None

    def input_shape_error(self, input_shape):
        want = self.rank + 2
        if len(input_shape) != want:
            return f"expected ndim={want}, found ndim={len(input_shape)}"
        return None

    def _check_output(self, input_shape):
        """A clear error when a "valid" window is larger than the (padded) input."""
        for n, ke in zip(spatial_dims(input_shape, self.data_format), self._k_eff()):
            if n is not None and self.padding == "valid" and n < ke:
                return (f"computed output size would be zero or negative: an axis of "
                        f"length {n} is shorter than the window ({ke}). Full shape received: "
                        f"{shape_str(input_shape)}")
        return None
