"""Keras reshaping layers around sequences: RepeatVector, Flatten, Permute, Cropping1D,
ZeroPadding1D, UpSampling1D.

None of them supports masking in Keras 3: a mask stops at them.
"""
import numbers

import numpy as np

from gpulstm import _xp
from gpulstm.layers._checked import CheckedLayer
from gpulstm.layers._spatial import data_format_of, int_tuple


def _positive_int(value, arg):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"Argument `{arg}` should be a positive integer. "
                         f"Received: {arg}={value!r}")
    return int(value)


class _Shaping(CheckedLayer):
    """Base: an optional fixed input rank checked at build; the mask is dropped."""

    ndim = None

    def compute_mask(self, inputs, mask=None):
        return None

    def input_shape_error(self, input_shape):
        if self.ndim is not None and len(input_shape) != self.ndim:
            return f"expected ndim={self.ndim}, found ndim={len(input_shape)}"
        return None


class RepeatVector(_Shaping):
    """(batch, features) -> (batch, n, features): the vector repeated ``n`` times."""

    ndim = 2

    def __init__(self, n, **kwargs):
        super().__init__(**kwargs)
        self.n = _positive_int(n, "n")

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.n, input_shape[1])

    def call(self, inputs, mask=None, training=None):
        x = _xp.asarray(inputs)
        return _xp.array_module(x).repeat(x[:, None, :], self.n, axis=1)

    def get_config(self):
        return {**self._base_config(), "n": self.n}


class Flatten(_Shaping):
    """(batch, ...) -> (batch, prod(...)); "channels_first" moves the channels last first."""

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = data_format_of(data_format)

    def compute_output_shape(self, input_shape):
        rest = input_shape[1:]
        size = None if any(d is None for d in rest) else int(np.prod(rest, dtype=np.int64))
        return (input_shape[0], size)

    def call(self, inputs, mask=None, training=None):
        x = _xp.asarray(inputs)
        if self.data_format == "channels_first" and x.ndim > 2:
            x = x.transpose((0,) + tuple(range(2, x.ndim)) + (1,))
        return x.reshape(x.shape[0], -1)

    def get_config(self):
        return {**self._base_config(), "data_format": self.data_format}


class Permute(_Shaping):
    """Permutes the non-batch axes: ``dims`` is a permutation of 1..rank-1."""

    def __init__(self, dims, **kwargs):
        super().__init__(**kwargs)
        try:
            dims = tuple(int(d) for d in dims)
        except (TypeError, ValueError):
            dims = None
        if dims is None or sorted(dims) != list(range(1, len(dims) + 1)):
            raise ValueError("Invalid permutation argument `dims` for Permute Layer. The set of "
                             "indices in `dims` must be consecutive and start from 1. "
                             f"Received dims={dims!r}")
        self.dims = dims
        self.ndim = len(dims) + 1

    def compute_output_shape(self, input_shape):
        return (input_shape[0],) + tuple(input_shape[d] for d in self.dims)

    def call(self, inputs, mask=None, training=None):
        return _xp.asarray(inputs).transpose((0,) + self.dims)

    def get_config(self):
        return {**self._base_config(), "dims": list(self.dims)}


class Cropping1D(_Shaping):
    """Removes ``cropping = (start, end)`` steps from the time axis of (batch, steps, features)."""

    ndim = 3

    def __init__(self, cropping=(1, 1), **kwargs):
        super().__init__(**kwargs)
        self.cropping = int_tuple(cropping, 2, "cropping", allow_zero=True)

    def input_shape_error(self, input_shape):
        err = super().input_shape_error(input_shape)
        if err is None and input_shape[1] is not None and sum(self.cropping) >= input_shape[1]:
            err = ("`cropping` parameter of `Cropping1D` layer must be smaller than the input "
                   f"length. Received: cropping={self.cropping}")
        return err

    def compute_output_shape(self, input_shape):
        n = input_shape[1]
        return (input_shape[0], None if n is None else n - sum(self.cropping), input_shape[2])

    def call(self, inputs, mask=None, training=None):
        x = _xp.asarray(inputs)
        err = self.input_shape_error(x.shape)
        if err:
            raise ValueError(f"Layer '{self.name}': {err}, input shape {x.shape}")
        return x[:, self.cropping[0]:x.shape[1] - self.cropping[1], :]

    def get_config(self):
        return {**self._base_config(), "cropping": list(self.cropping)}


class ZeroPadding1D(_Shaping):
    """Adds ``padding = (start, end)`` zero steps on the time axis."""

    ndim = 3

    def __init__(self, padding=1, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.padding = int_tuple(padding, 2, "padding", allow_zero=True)
        self.data_format = data_format_of(data_format)

    def _axis(self):
        return 2 if self.data_format == "channels_first" else 1

    def compute_output_shape(self, input_shape):
        out = list(input_shape)
        a = self._axis()
        if out[a] is not None:
            out[a] += sum(self.padding)
        return tuple(out)

    def call(self, inputs, mask=None, training=None):
        x = _xp.asarray(inputs)
        pad = [(0, 0)] * 3
        pad[self._axis()] = self.padding
        return _xp.array_module(x).pad(x, pad)

    def get_config(self):
        return {**self._base_config(), "padding": list(self.padding),
                "data_format": self.data_format}


class UpSampling1D(_Shaping):
    """Repeats each time step ``size`` times."""

    ndim = 3

    def __init__(self, size=2, **kwargs):
        super().__init__(**kwargs)
        self.size = _positive_int(size, "size")

    def compute_output_shape(self, input_shape):
        n = input_shape[1]
        return (input_shape[0], None if n is None else n * self.size, input_shape[2])

    def call(self, inputs, mask=None, training=None):
        x = _xp.asarray(inputs)
        return _xp.array_module(x).repeat(x, self.size, axis=1)

    def get_config(self):
        return {**self._base_config(), "size": self.size}
