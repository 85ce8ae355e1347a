"""Keras activation layers: Activation, ReLU, LeakyReLU, ELU, PReLU, Softmax.

All of them pass the mask on (Keras's ``supports_masking``); Softmax also uses it.
"""
import numbers

import numpy as np

from gpulstm import _xp, initializers
from gpulstm.layers._checked import CheckedLayer
from gpulstm.layers._common import KerasLayer, resolve_activation


def _number(value, arg, low=0.0, allow_none=False, layer="ReLU"):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or value < low:
        raise ValueError(f"{arg} of a {layer} layer cannot be None or a negative value. "
                         f"Received: {arg}={value!r}")
    return float(value)


class _Elementwise(CheckedLayer):
    """An elementwise function of the input (same shape, mask passed on)."""

    def _f(self, x, xp):
        raise NotImplementedError

    def call(self, inputs, mask=None, training=None):
        xp = _xp.array_module(inputs)
        x = xp.asarray(inputs, dtype=self.dtype)
        return xp.asarray(self._f(x, xp), dtype=self.dtype)


class Activation(_Elementwise):
    """Applies a Keras activation (any name :class:`Dense` takes, "softmax" included)."""

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation, self._act = resolve_activation(activation, self.keras_version)
        self._act_xp = getattr(self._act, "with_xp", None)

    def _f(self, x, xp):
        return self._act(x) if self._act_xp is None else self._act_xp(x, xp)

    def get_config(self):
        return {**self._base_config(), "activation": self.activation}


class ReLU(_Elementwise):
    """``min(max_value, x)`` for ``x >= threshold``, else ``negative_slope * (x - threshold)``."""

    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0, **kwargs):
        super().__init__(**kwargs)
        self.max_value = _number(max_value, "max_value", allow_none=True)
        self.negative_slope = _number(negative_slope, "negative_slope")
        self.threshold = _number(threshold, "threshold")

    def _f(self, x, xp):
        # Keras's order of operations (``activations.relu``): a value equal to a nonzero
        # threshold gives 0.
        t, slope = self.threshold, self.negative_slope
        y = x * (x > t) if t != 0 else xp.maximum(x, 0.0)
        if self.max_value is not None:
            y = xp.clip(y, 0.0, self.max_value)
        if slope != 0:
            y = y - slope * xp.maximum(t - x, 0.0)
        return y

    def get_config(self):
        return {**self._base_config(), "max_value": self.max_value,
                "negative_slope": self.negative_slope, "threshold": self.threshold}


class LeakyReLU(_Elementwise):
    """``x`` for ``x >= 0``, else ``negative_slope * x`` (tf_keras's ``alpha`` accepted)."""

    def __init__(self, negative_slope=0.3, **kwargs):
        if "alpha" in kwargs:  # tf_keras 2's name
            negative_slope = kwargs.pop("alpha")
        super().__init__(**kwargs)
        self.negative_slope = _number(negative_slope, "negative_slope", layer="Leaky ReLU")

    def _f(self, x, xp):
        return xp.where(x >= 0, x, self.negative_slope * x)

    def get_config(self):
        return {**self._base_config(), "negative_slope": self.negative_slope}


class ELU(_Elementwise):
    """``x`` for ``x > 0``, else ``alpha * (exp(x) - 1)``."""

    def __init__(self, alpha=1.0, **kwargs):
        super().__init__(**kwargs)
        if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real):
            raise ValueError(f"Expected `alpha` to be a number. Received: alpha={alpha!r}")
        self.alpha = float(alpha)

    def _f(self, x, xp):
        return xp.where(x > 0, x, self.alpha * xp.expm1(xp.minimum(x, 0.0)))

    def get_config(self):
        # Keras 3 leaves alpha out of its config (it reloads as 1.0); gpulstm keeps it.
        return {**self._base_config(), "alpha": self.alpha}


class PReLU(_Elementwise):
    """``x`` for ``x >= 0``, else ``alpha * x`` with a learned ``alpha`` of the input's
    shape (without the batch axis), length 1 along ``shared_axes``."""

    def __init__(self, alpha_initializer="Zeros", alpha_regularizer=None,
                 alpha_constraint=None, shared_axes=None, **kwargs):
        super().__init__(**kwargs)
        self.alpha_initializer = initializers.get(alpha_initializer, "alpha_initializer")
        self.alpha_regularizer, self.alpha_constraint = alpha_regularizer, alpha_constraint
        if shared_axes is None:
            self.shared_axes = None
        else:
            axes = list(shared_axes) if isinstance(shared_axes, (list, tuple)) else [shared_axes]
            if not all(isinstance(a, numbers.Integral) and not isinstance(a, bool) and a >= 1
                       for a in axes):
                raise ValueError("Expected `shared_axes` to be positive axis indices (the batch "
                                 f"axis cannot be shared). Received: shared_axes={shared_axes!r}")
            self.shared_axes = [int(a) for a in axes]

    def _param_shape(self, input_shape):
        shape = list(input_shape[1:])
        for a in self.shared_axes or ():
            shape[a - 1] = 1
        return tuple(shape)

    def input_shape_error(self, input_shape):
        if any(a >= len(input_shape) for a in self.shared_axes or ()):
            return f"shared_axes {self.shared_axes} out of range for rank {len(input_shape)}"
        shape = self._param_shape(input_shape)
        if any(d is None for d in shape):
            return "every axis that is not shared must be known"
        if self.built and shape != self._weights[0].shape:
            return f"expected alpha of shape {self._weights[0].shape}, input gives {shape}"
        return None

    def _build(self, input_shape):
        self._weights = [self.alpha_initializer(self._param_shape(input_shape), self.dtype,
                                                np.random.default_rng())]
        self._weight_names = ["alpha"]

    def _f(self, x, xp):
        alpha = self._weights[0] if xp is np else _xp.weights_on(self, xp)[0]
        return xp.maximum(x, 0.0) - alpha * xp.maximum(-x, 0.0)

    def get_config(self):
        return {**self._base_config(),
                "alpha_initializer": initializers.serialize(self.alpha_initializer),
                "alpha_regularizer": self.alpha_regularizer,
                "alpha_constraint": self.alpha_constraint, "shared_axes": self.shared_axes}


class Softmax(KerasLayer):
    """Softmax along ``axis`` (an int or a list of axes); masked entries (a mask
    broadcastable to the input) get probability 0, as in Keras."""

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        if isinstance(axis, (list, tuple)):
            self.axis = [int(a) for a in axis]
        else:
            self.axis = int(axis)

    def call(self, inputs, mask=None, training=None):
        xp = _xp.array_module(inputs)
        x = xp.asarray(inputs, dtype=self.dtype)
        if mask is not None:
            m = xp.asarray(mask)
            if m.ndim > x.ndim or any(a not in (1, b) for a, b in zip(m.shape[::-1],
                                                                        x.shape[::-1])):
                raise ValueError("The `mask` must be broadcastable to `inputs`. Received: "
                                 f"inputs.shape={x.shape}, mask.shape={m.shape}")
            m = m.astype(bool) if m.dtype == bool else m > 0.5
            x = xp.where(m, x, np.float32(-1e9) if self.dtype == "float32" else -1e9)
        axis = tuple(self.axis) if isinstance(self.axis, list) else self.axis
        e = xp.exp(x - x.max(axis=axis, keepdims=True))
        y = e / e.sum(axis=axis, keepdims=True)
        if mask is not None:
            y = xp.where(m, y, 0.0)
        return xp.asarray(y, dtype=self.dtype)

    def get_config(self):
        return {**self._base_config(), "axis": self.axis}
