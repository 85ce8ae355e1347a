"""Keras pooling layers: Max/AveragePooling1D/2D and the global poolings (1D, 2D)."""
import numpy as np

from gpulstm import _xp
from gpulstm.layers._checked import CheckedLayer
from gpulstm.layers._spatial import (SpatialLayer, data_format_of, from_channels_last,
                                     int_tuple, out_length, padding_of, spatial_dims,
                                     to_channels_last, windows)


class _Pooling(SpatialLayer):
    """Max or average over windows of ``pool_size`` every ``strides`` (default: pool_size).

    Average pooling with ``padding="same"`` divides by the number of real (unpadded)
    values in each window, as Keras does.
    """

    mode = "max"

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(**kwargs)
        r = self.rank
        self.pool_size = int_tuple(pool_size, r, "pool_size")
        self.strides = int_tuple(self.pool_size if strides is None else strides, r, "strides")
        self.padding = padding_of(padding)
        self.data_format = data_format_of(data_format)

    def _k_eff(self):
        return list(self.pool_size)

    def input_shape_error(self, input_shape):
        return super().input_shape_error(input_shape) or self._check_output(input_shape)

    def compute_output_shape(self, input_shape):
        out = tuple(out_length(n, k, s, self.padding) for n, k, s in
                    zip(spatial_dims(input_shape, self.data_format), self.pool_size, self.strides))
        if self.data_format == "channels_last":
            return (input_shape[0],) + out + (input_shape[-1],)
        return (input_shape[0], input_shape[1]) + out

    def call(self, inputs, mask=None, training=None):
        xp = _xp.array_module(inputs)
        x = to_channels_last(xp.asarray(inputs, dtype=self.dtype), self.data_format)
        ones = (1,) * self.rank
        if self.mode == "max":
            y = windows(x, self.pool_size, self.strides, ones, self.padding,
                        fill=-np.inf).max(axis=-2)
        else:
            y = windows(x, self.pool_size, self.strides, ones, self.padding).sum(axis=-2)
            if self.padding == "same":  # count only the real values of each window
                count = windows(xp.ones((1,) + x.shape[1:-1] + (1,), dtype=self.dtype),
                                self.pool_size, self.strides, ones, self.padding).sum(axis=-2)
                y = y / count
            else:
                y = y / float(np.prod(self.pool_size))
        return from_channels_last(xp.asarray(y, dtype=self.dtype), self.data_format)

    def get_config(self):
        return {**self._base_config(), "pool_size": list(self.pool_size),
                "padding": self.padding, "strides": list(self.strides),
                "data_format": self.data_format}


class MaxPooling1D(_Pooling):
    """Max over windows of ``pool_size`` steps (Keras's ``MaxPooling1D``)."""
    rank, mode = 1, "max"


class MaxPooling2D(_Pooling):
    """Max over ``pool_size`` windows of rows and cols (Keras's ``MaxPooling2D``)."""
    rank, mode = 2, "max"


class AveragePooling1D(_Pooling):
    """Mean over windows of ``pool_size`` steps (Keras's ``AveragePooling1D``)."""
    rank, mode = 1, "average"


class AveragePooling2D(_Pooling):
    """Mean over ``pool_size`` windows of rows and cols (Keras's ``AveragePooling2D``)."""
    rank, mode = 2, "average"


class _GlobalPooling(CheckedLayer):
    """Max or mean over every spatial axis; ``keepdims`` keeps them with length 1."""

    rank, mode = 1, "max"

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(**kwargs)
        self.data_format = data_format_of(data_format)
        self.keepdims = bool(keepdims)

    def _axes(self, ndim):
        return tuple(range(1, ndim - 1)) if self.data_format == "channels_last" \
            else tuple(range(2, ndim))

    def input_shape_error(self, input_shape):
        if len(input_shape) != self.rank + 2:
            return f"expected ndim={self.rank + 2}, found ndim={len(input_shape)}"
        return None

    def compute_mask(self, inputs, mask=None):
        return None  # the pooled axes are gone: no mask goes on

    def compute_output_shape(self, input_shape):
        axes = self._axes(len(input_shape))
        if self.keepdims:
            return tuple(1 if i in axes else d for i, d in enumerate(input_shape))
        return tuple(d for i, d in enumerate(input_shape) if i not in axes)

    def call(self, inputs, mask=None, training=None):
        xp = _xp.array_module(inputs)
        x = xp.asarray(inputs, dtype=self.dtype)
        axes = self._axes(x.ndim)
        if self.mode == "max":  # Keras's GlobalMaxPooling ignores the mask
            return x.max(axis=axes, keepdims=self.keepdims)
        if mask is None or self.rank != 1:
            return x.mean(axis=axes, keepdims=self.keepdims)
        # GlobalAveragePooling1D: the mean over the unmasked steps (0/0 -> nan, as Keras)
        m = xp.expand_dims(xp.asarray(mask, dtype=bool), 2 if axes == (1,) else 1)
        total = xp.where(m, x, 0).sum(axis=axes, keepdims=self.keepdims)
        with np.errstate(invalid="ignore", divide="ignore"):
            out = total / m.astype(self.dtype).sum(axis=axes, keepdims=self.keepdims)
        return xp.asarray(out, dtype=self.dtype)

    def get_config(self):
        return {**self._base_config(), "data_format": self.data_format,
                "keepdims": self.keepdims}


class GlobalMaxPooling1D(_GlobalPooling):
    """Max over the steps of ``(batch, steps, features)`` (a mask is ignored, as in Keras)."""
    rank, mode = 1, "max"


class GlobalAveragePooling1D(_GlobalPooling):
    """Mean over the steps; with a mask, over the unmasked steps only (as Keras)."""
    rank, mode = 1, "average"


class GlobalMaxPooling2D(_GlobalPooling):
    """Max over rows and cols (Keras's ``GlobalMaxPooling2D``)."""
    rank, mode = 2, "max"


class GlobalAveragePooling2D(_GlobalPooling):
    """Mean over rows and cols (Keras's ``GlobalAveragePooling2D``)."""
    rank, mode = 2, "average"
