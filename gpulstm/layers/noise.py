"""Keras regularization layers that are the identity at inference: SpatialDropout1D/2D,
GaussianNoise, GaussianDropout, AlphaDropout.

With ``training=True`` they apply their noise from the layer's seeded NumPy generator
(drawn on the host, like :class:`Dropout`); the numbers differ from Keras's generator.
"""
import math
import numbers

import numpy as np

from gpulstm import _xp
from gpulstm.layers._common import KerasLayer
from gpulstm.layers.core import Dropout
from gpulstm.layers._spatial import data_format_of

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _unit_interval(value, arg):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value <= 1:
        raise ValueError(f"Invalid value received for argument `{arg}`. Expected a float value "
                         f"between 0 and 1. Received: {arg}={value!r}")
    return float(value)


class _SpatialDropout(Dropout):
    """Dropout of whole feature maps (the noise shape keeps only batch and channels)."""

    ndim = 3

    def __init__(self, rate, seed=None, name=None, dtype=None, **kwargs):
        super().__init__(rate, seed=seed, name=name, dtype=dtype, **kwargs)

    def input_shape_error(self, input_shape):
        if len(input_shape) != self.ndim:
            return f"expected ndim={self.ndim}, found ndim={len(input_shape)}"
        return None

    def _noise_shape(self, shape):
        if getattr(self, "data_format", "channels_last") == "channels_first":
            return shape[:2] + (1,) * (len(shape) - 2)
        return (shape[0],) + (1,) * (len(shape) - 2) + (shape[-1],)

    def call(self, inputs, mask=None, training=None):
        x = _xp.asarray(inputs)
        self.noise_shape = self._noise_shape(tuple(x.shape))
        return super().call(x, mask=mask, training=training)

    def get_config(self):
        # Keras 3's SpatialDropout config: no "trainable" (its constructor refuses it)
        base = self._base_config()
        return {"rate": self.rate, "seed": self.seed, "name": base["name"],
                "dtype": base["dtype"]}


class SpatialDropout1D(_SpatialDropout):
    """Drops whole channels of (batch, steps, channels) in training; identity at inference."""

    ndim = 3


class SpatialDropout2D(_SpatialDropout):
    """Drops whole channels of 4-D input in training; identity at inference."""

    ndim = 4

    def __init__(self, rate, data_format=None, seed=None, name=None, dtype=None, **kwargs):
        super().__init__(rate, seed=seed, name=name, dtype=dtype, **kwargs)
        self.data_format = data_format_of(data_format)

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format}


class _Gaussian(KerasLayer):
    """Base of the Gaussian layers: ``_apply(x, noise_module)`` in training only."""

    arg = "stddev"

    def __init__(self, value, seed=None, **kwargs):
        super().__init__(**kwargs)
        setattr(self, self.arg, _unit_interval(value, self.arg))
        self.seed = seed
        self._rng = np.random.default_rng(seed)

    def call(self, inputs, mask=None, training=None):
        x = _xp.asarray(inputs)
        if not training or getattr(self, self.arg) == 0:
            return x
        return self._apply(x, _xp.array_module(x)).astype(x.dtype)

    def get_config(self):
        return {**self._base_config(), self.arg: getattr(self, self.arg), "seed": self.seed}


class GaussianNoise(_Gaussian):
    """Adds N(0, stddev) noise in training; identity at inference."""

    arg = "stddev"

    def __init__(self, stddev, seed=None, **kwargs):
        super().__init__(stddev, seed=seed, **kwargs)

    def _apply(self, x, xp):
        return x + _xp.to_module(self._rng.normal(0.0, self.stddev, x.shape), xp)


class GaussianDropout(_Gaussian):
    """Multiplies by N(1, sqrt(rate / (1 - rate))) noise in training; identity at inference."""

    arg = "rate"

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(rate, seed=seed, **kwargs)

    def _apply(self, x, xp):
        sd = math.sqrt(self.rate / (1.0 - self.rate))
        return x * _xp.to_module(self._rng.normal(1.0, sd, x.shape), xp)


class AlphaDropout(Dropout):
    """SELU-preserving dropout in training (Keras's formula); identity at inference.
    Arguments and config as :class:`Dropout`'s (rate, noise_shape, seed)."""

    def call(self, inputs, mask=None, training=None):
        x = _xp.asarray(inputs)
        if not training or self.rate == 0:
            return x
        shape = x.shape if self.noise_shape is None else tuple(
            s if n is None else n for s, n in zip(x.shape, self.noise_shape))
        kept = _xp.to_module(self._rng.random(shape) >= self.rate, _xp.array_module(x))
        kept = kept.astype(x.dtype)
        alpha_p = -_SELU_ALPHA * _SELU_SCALE
        a = ((1 - self.rate) * (1 + self.rate * alpha_p ** 2)) ** -0.5
        b = -a * alpha_p * self.rate
        return (a * (x * kept + alpha_p * (1 - kept)) + b).astype(x.dtype)
