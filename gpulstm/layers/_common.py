"""Shared pieces of the non-recurrent Keras layers: a base class and NumPy activations.

These layers compute with NumPy whatever backend the model runs the LSTMs on.
"""
import math

import numpy as np

from gpulstm import activations as _acts
from gpulstm.layers.base import Layer

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946
_erf = np.vectorize(math.erf, otypes=[np.float64])


def _sigmoid(x):
    # exp of a non-positive number only, so nothing overflows.
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _softplus(x):
    return np.logaddexp(0.0, x)


def _elu(x, alpha=1.0):
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0.0)))


def _softmax(x):
    e = np.exp(x - np.max(x, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


def _log_softmax(x):
    s = x - np.max(x, axis=-1, keepdims=True)
    return s - np.log(np.sum(np.exp(s), axis=-1, keepdims=True))


_NP_ACTIVATIONS = {
    "linear": lambda x: x,
    "tanh": np.tanh,
    "sigmoid": _sigmoid,
    "hard_sigmoid_k3": lambda x: np.clip(x / 6.0 + 0.5, 0.0, 1.0),
    "hard_sigmoid_k2": lambda x: np.clip(0.2 * x + 0.5, 0.0, 1.0),
    "relu": lambda x: np.maximum(x, 0.0),
    "softsign": lambda x: x / (1.0 + np.abs(x)),
    "softplus": _softplus,
    "elu": _elu,
    "selu": lambda x: _SELU_SCALE * _elu(x, _SELU_ALPHA),
    "silu": lambda x: x * _sigmoid(x),
    "gelu": lambda x: 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0))),
    "exponential": np.exp,
    "relu6": lambda x: np.clip(x, 0.0, 6.0),
    "hard_silu": lambda x: x * np.clip(x / 6.0 + 0.5, 0.0, 1.0),
    "leaky_relu": lambda x: np.where(x >= 0, x, 0.2 * x),
    "log_sigmoid": lambda x: -_softplus(-x),
    "mish": lambda x: x * np.tanh(_softplus(x)),
    "hard_tanh": lambda x: np.clip(x, -1.0, 1.0),
    "celu": lambda x: np.maximum(x, 0.0) + np.minimum(np.expm1(np.minimum(x, 0.0)), 0.0),
    "softmax": _softmax,
    "log_softmax": _log_softmax,
}
_CODE_NAMES = {code: name for name, code in _acts.CODES.items() if name != "swish"}


def resolve_activation(activation, keras_version=None, arg="activation"):
    """``(config_name, numpy_function)`` for a Keras activation name, None or callable."""
    if callable(activation):
        return getattr(activation, "__name__", repr(activation)), activation
    if isinstance(activation, str) and activation.lower() in ("softmax", "log_softmax"):
        name = activation.lower()
        return name, _NP_ACTIVATIONS[name]
    try:
        code, name, _ = _acts.resolve(activation, keras_version, arg)
    except ValueError:
        raise ValueError(
            f"Unknown `{arg}`. Expected one of {_acts.SUPPORTED + ['softmax', 'log_softmax']} "
            f"or a callable on NumPy arrays. Received: {arg}={activation!r}"
        ) from None
    return name, _NP_ACTIVATIONS[_CODE_NAMES[code]]


def dtype_policy(name):
    """The Keras 3 ``DTypePolicy`` dict for a dtype name."""
    return {"module": "keras", "class_name": "DTypePolicy", "config": {"name": name},
            "registered_name": None}


def as_shape(shape):
    return tuple(None if d is None else int(d) for d in shape)


def shape_str(shape):
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


class KerasLayer(Layer):
    """Base of gpulstm's non-recurrent layers.

    ``layer(x)`` on a NumPy array returns NumPy; on a symbolic tensor (``Input``)
    it records a node of a functional graph.  Subclasses implement ``build``,
    ``call(inputs, mask=None, training=None)``, ``compute_output_shape`` and,
    when they change the mask, ``compute_mask``.
    """

    # Keys real Keras configs carry that change nothing at inference.
    _NOOP_KEYS = ("input_shape", "batch_input_shape", "batch_size", "input_dim_",
                  "activity_regularizer", "autocast", "input_length")

    def __init__(self, name=None, dtype=None, trainable=True, keras_version=None, **kwargs):
        self._noop = {k: kwargs.pop(k) for k in self._NOOP_KEYS if k in kwargs}
        super().__init__(name=name, dtype=dtype, trainable=trainable, **kwargs)
        self.keras_version = None if keras_version is None else str(keras_version)
        self.stateful = False

    # -- calling -------------------------------------------------------------------
    def __call__(self, inputs, mask=None, training=None, **kwargs):
        hook = getattr(Layer, "_symbolic_call", None)
        if hook is not None:
            res = hook(self, inputs, mask=mask, training=training, **kwargs)
            if res is not NotImplemented:
                return res
        inputs = self._to_arrays(inputs)
        if not self.built:
            self.build(self._shapes_of(inputs, batch=None))
        return self.call(inputs, mask=mask, training=training, **kwargs)

    def _to_arrays(self, inputs):
        if isinstance(inputs, (list, tuple)):
            return [np.asarray(x) for x in inputs]
        return np.asarray(inputs)

    @staticmethod
    def _shapes_of(inputs, batch=None):
        if isinstance(inputs, list):
            return [(batch,) + tuple(x.shape[1:]) for x in inputs]
        return (batch,) + tuple(inputs.shape[1:])

    def build(self, input_shape):
        self._build_input_shape = input_shape
        self.built = True

    def compute_mask(self, inputs, mask=None):
        """The mask of the output: by default the input's mask passes through."""
        return mask

    def compute_output_shape(self, input_shape):
        return input_shape

    def input_shape_error(self, input_shape):
        """Why ``input_shape`` cannot feed this (built) layer, or None."""
        return None

    def reset_states(self):
        """Nothing to reset: only stateful recurrent layers keep state."""

    # -- config --------------------------------------------------------------------
    def _base_config(self):
        return {"name": self.name, "trainable": self.trainable,
                "dtype": dtype_policy(self.dtype)}

    def get_config(self):
        return self._base_config()

    @classmethod
    def from_config(cls, config, keras_version=None):
        """Build the layer from a tf_keras 2 or Keras 3 config dict."""
        if not isinstance(config, dict):
            raise ValueError(f"Expected a config dict. Received: config={config!r}")
        cfg = dict(config)
        own = cfg.pop("keras_version", None)
        cfg["keras_version"] = keras_version if keras_version is not None else own
        return cls(**cfg)
