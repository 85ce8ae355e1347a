"""Shared pieces of the non-recurrent Keras layers: a base class and activations.

These layers compute with the array module of their input: NumPy, or CuPy when a
model on the CUDA backend keeps its activations on the device (see ``gpulstm._xp``).
"""
import numpy as np

from gpulstm import _xp, initializers
from gpulstm import activations as _acts
from gpulstm.kernels.array_activations import XP_ACTIVATIONS
from gpulstm.layers._arrays import check_real
from gpulstm.layers.base import Layer

# Each activation takes ``(x, xp)``: ``xp`` is the array module holding ``x`` (NumPy,
# or CuPy on the CUDA backend), so device activations never leave the device.
_XP_ACTIVATIONS = XP_ACTIVATIONS


def _bind(name):
    fn = _XP_ACTIVATIONS[name]

    def activation(x):
        return fn(x, _xp.array_module(x))

    activation.__name__ = name
    activation.with_xp = fn  # callers that know the module skip the lookup
    return activation


_ACTIVATIONS = {name: _bind(name) for name in _XP_ACTIVATIONS}
_CODE_NAMES = {code: name for name, code in _acts.CODES.items() if name != "swish"}


def resolve_activation(activation, keras_version=None, arg="activation"):
    """``(config_name, function)`` for a Keras activation name, None or callable.

    The built-in functions compute with the module of their argument (NumPy or CuPy).
    A name ``custom_objects`` (or a scope) maps to a function gives that function.
    """
    from gpulstm._custom_objects import lookup_function

    activation = lookup_function(activation) or activation
    if callable(activation):
        return getattr(activation, "__name__", repr(activation)), activation
    if isinstance(activation, str) and activation.lower() in ("softmax", "log_softmax"):
        name = activation.lower()
        return name, _ACTIVATIONS[name]
    try:
        code, name, _ = _acts.resolve(activation, keras_version, arg)
    except ValueError:
        raise ValueError(
            f"Unknown `{arg}`. Expected one of {_acts.SUPPORTED + ['softmax', 'log_softmax']} "
            f"or a callable on NumPy arrays. Received: {arg}={activation!r}"
        ) from None
    return name, _ACTIVATIONS[_CODE_NAMES[code]]


def dtype_policy(name):
    """The Keras 3 ``DTypePolicy`` dict for a dtype name."""
    return {"module": "keras", "class_name": "DTypePolicy", "config": {"name": name},
            "registered_name": None}


def recurrent_weight_config(layer):
    """The config entries of a recurrent layer's weights, from ``kernel_initializer`` to
    ``seed`` in Keras's order (LSTM, GRU and ConvLSTM write the same ones)."""
    return {"kernel_initializer": initializers.serialize(layer.kernel_initializer),
            "recurrent_initializer": initializers.serialize(layer.recurrent_initializer),
            "bias_initializer": initializers.serialize(layer.bias_initializer),
            "unit_forget_bias": layer.unit_forget_bias,
            **{k: getattr(layer, k) for k in (
                "kernel_regularizer", "recurrent_regularizer", "bias_regularizer",
                "activity_regularizer", "kernel_constraint", "recurrent_constraint",
                "bias_constraint", "dropout", "recurrent_dropout", "seed")}}


def as_shape(shape):
    return tuple(None if d is None else int(d) for d in shape)


def shape_str(shape):
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


class KerasLayer(Layer):
    """Base of gpulstm's non-recurrent layers.

    ``layer(x)`` on a NumPy array returns NumPy, on a CuPy array CuPy (computed on
    its device); on a symbolic tensor (``Input``) it records a node of a functional
    graph.  Subclasses implement ``build``,
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
        what = f"the input of layer '{self.name}'"
        if isinstance(inputs, (list, tuple)):
            return [check_real(_xp.asarray(x), what) for x in inputs]
        return check_real(_xp.asarray(inputs), what)

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
