"""Keras's 2-D and 3-D reshaping layers: Cropping2D/3D, ZeroPadding2D/3D, UpSampling2D/3D.

Each works on the spatial axes of (batch, *spatial, channels), or (batch, channels,
*spatial) with ``data_format="channels_first"``; none supports masking (a mask stops).
UpSampling2D interpolates "nearest" (repeats) or "bilinear" (half-pixel centres, edges
clamped: what ``tf.image.resize`` and ``jax.image.resize`` give when enlarging by an
integer factor).
"""
import numbers

from gpulstm import _xp
from gpulstm.layers._spatial import (SpatialLayer, data_format_of, from_channels_last,
                                     int_tuple, spatial_dims, to_channels_last)
from gpulstm.layers._common import shape_str


def _pairs(value, rank, arg):
    """Keras's ``cropping`` / ``padding``: an int, ``rank`` ints (symmetric) or ``rank``
    pairs -> a tuple of ``rank`` (before, after) pairs."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"`{arg}` cannot be negative. Received: {arg}={value!r}.")
        return ((int(value),) * 2,) * rank
    if not hasattr(value, "__len__") or len(value) != rank:
        raise ValueError(f"`{arg}` should be an int, a tuple of {rank} ints or a tuple of "
                         f"{rank} tuples of 2 ints. Received: {arg}={value!r}.")
    return tuple(int_tuple(v, 2, f"entry {i + 1} of {arg}", allow_zero=True)
                 for i, v in enumerate(value))


class _Spatial(SpatialLayer):
    """Base: the data format and the spatial axes of the input."""

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = data_format_of(data_format)

    def _axes(self):
        first = 1 if self.data_format == "channels_last" else 2
        return tuple(range(first, first + self.rank))

    def _reshaped(self, input_shape, fn):
        out = list(input_shape)
        for i, a in enumerate(self._axes()):
            if out[a] is not None:
                out[a] = fn(i, out[a])
        return tuple(out)


class _Cropping(_Spatial):
    """Removes ``cropping[i] = (before, after)`` entries from spatial axis i."""

    def __init__(self, cropping, data_format=None, **kwargs):
        super().__init__(data_format=data_format, **kwargs)
        self.cropping = _pairs(cropping, self.rank, "cropping")

    def input_shape_error(self, input_shape):
        err = super().input_shape_error(input_shape)
        if err is None:
            for n, (a, b) in zip(spatial_dims(input_shape, self.data_format), self.cropping):
                if n is not None and a + b >= n:
                    return (f"`cropping` parameter of `{type(self).__name__}` layer must be "
                            f"smaller than the input size. Received: cropping={self.cropping}")
        return err

    def compute_output_shape(self, input_shape):
        return self._reshaped(input_shape, lambda i, n: n - sum(self.cropping[i]))

    def call(self, inputs, mask=None, training=None):
        x = _xp.asarray(inputs)
        err = self.input_shape_error(x.shape)
        if err:
            raise ValueError(f"Layer '{self.name}': {err}, input shape {shape_str(x.shape)}")
        index = [slice(None)] * x.ndim
        for a, (lo, hi) in zip(self._axes(), self.cropping):
            index[a] = slice(lo, x.shape[a] - hi)
        return x[tuple(index)]

    def get_config(self):
        return {**self._base_config(), "cropping": [list(p) for p in self.cropping],
                "data_format": self.data_format}


class Cropping2D(_Cropping):
    """Crops rows and cols of (batch, rows, cols, channels) (Keras's ``Cropping2D``)."""

    rank = 2

    def __init__(self, cropping=((0, 0), (0, 0)), data_format=None, **kwargs):
        super().__init__(cropping, data_format=data_format, **kwargs)


class Cropping3D(_Cropping):
    """Crops the three spatial axes (Keras's ``Cropping3D``)."""

    rank = 3

    def __init__(self, cropping=((1, 1), (1, 1), (1, 1)), data_format=None, **kwargs):
        super().__init__(cropping, data_format=data_format, **kwargs)


class _ZeroPadding(_Spatial):
    """Adds ``padding[i] = (before, after)`` zeros on spatial axis i."""

    def __init__(self, padding, data_format=None, **kwargs):
        super().__init__(data_format=data_format, **kwargs)
        self.padding = _pairs(padding, self.rank, "padding")

    def compute_output_shape(self, input_shape):
        return self._reshaped(input_shape, lambda i, n: n + sum(self.padding[i]))

    def call(self, inputs, mask=None, training=None):
        x = _xp.asarray(inputs)
        pad = [(0, 0)] * x.ndim
        for a, p in zip(self._axes(), self.padding):
            pad[a] = p
        return _xp.array_module(x).pad(x, pad)

    def get_config(self):
        return {**self._base_config(), "padding": [list(p) for p in self.padding],
                "data_format": self.data_format}


class ZeroPadding2D(_ZeroPadding):
    """Zero rows and cols around (batch, rows, cols, channels) (Keras's ``ZeroPadding2D``)."""

    rank = 2

    def __init__(self, padding=(1, 1), data_format=None, **kwargs):
        super().__init__(padding, data_format=data_format, **kwargs)


class ZeroPadding3D(_ZeroPadding):
    """Zeros around the three spatial axes (Keras's ``ZeroPadding3D``)."""

    rank = 3

    def __init__(self, padding=((1, 1), (1, 1), (1, 1)), data_format=None, **kwargs):
        super().__init__(padding, data_format=data_format, **kwargs)


def _bilinear_axis(x, axis, factor, xp):
    """Enlarge ``axis`` of ``x`` ``factor`` times by linear interpolation (half-pixel
    centres, the edges clamped)."""
    n = x.shape[axis]
    src = (xp.arange(n * factor, dtype="float64") + 0.5) / factor - 0.5
    src = xp.clip(src, 0.0, n - 1)
    lo = xp.floor(src).astype("int64")
    hi = xp.minimum(lo + 1, n - 1)
    shape = [1] * x.ndim
    shape[axis] = -1
    t = (src - lo).astype(x.dtype).reshape(shape)
    a, b = xp.take(x, lo, axis=axis), xp.take(x, hi, axis=axis)
    return a + (b - a) * t


class _UpSampling(_Spatial):
    """Enlarges each spatial axis ``size[i]`` times."""

    _interpolations = ("nearest",)

    def __init__(self, size, data_format=None, interpolation="nearest", **kwargs):
        super().__init__(data_format=data_format, **kwargs)
        self.size = int_tuple(size, self.rank, "size")
        interpolation = str(interpolation).lower()
        if interpolation not in self._interpolations:
            raise ValueError(
                f"gpulstm's {type(self).__name__} supports interpolation in "
                f"{list(self._interpolations)}. Received: interpolation={interpolation!r}. "
                "Re-save the model with one of those (Keras's other modes are not built).")
        self.interpolation = interpolation

    def compute_output_shape(self, input_shape):
        return self._reshaped(input_shape, lambda i, n: n * self.size[i])

    def call(self, inputs, mask=None, training=None):
        x = _xp.asarray(inputs)
        xp = _xp.array_module(x)
        if self.interpolation == "nearest":
            for a, s in zip(self._axes(), self.size):
                x = xp.repeat(x, s, axis=a)
            return x
        y = to_channels_last(xp.asarray(x, dtype=self.dtype), self.data_format)
        for a, s in enumerate(self.size, start=1):
            y = _bilinear_axis(y, a, s, xp)
        return from_channels_last(y, self.data_format)

    def get_config(self):
        return {**self._base_config(), "size": list(self.size), "data_format": self.data_format}


class UpSampling2D(_UpSampling):
    """Repeats (or bilinearly interpolates) rows and cols (Keras's ``UpSampling2D``)."""

    rank = 2
    _interpolations = ("nearest", "bilinear")

    def __init__(self, size=(2, 2), data_format=None, interpolation="nearest", **kwargs):
        super().__init__(size, data_format=data_format, interpolation=interpolation, **kwargs)

    def get_config(self):
        return {**super().get_config(), "interpolation": self.interpolation}


class UpSampling3D(_UpSampling):
    """Repeats the entries of the three spatial axes (Keras's ``UpSampling3D``)."""

    rank = 3

    def __init__(self, size=(2, 2, 2), data_format=None, **kwargs):
        super().__init__(size, data_format=data_format, **kwargs)
