"""The small Layer base that every gpulstm layer shares (names, dtype, weights)."""
import re
import threading
from collections import defaultdict

import numpy as np

from gpulstm.layers._arrays import WEIGHTS_FIX, as_real_array, readonly, weight_copy

_name_lock = threading.Lock()
_name_counts = defaultdict(int)


def to_snake_case(name):
    """Keras's class-name to snake_case rule (``LSTM`` -> ``lstm``)."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def unique_name(prefix):
    """``prefix``, then ``prefix_1``, ``prefix_2``... like Keras's auto names."""
    with _name_lock:
        n = _name_counts[prefix]
        _name_counts[prefix] += 1
    return prefix if n == 0 else f"{prefix}_{n}"


def reset_names():
    """Restart automatic layer names (like ``keras.backend.clear_session``)."""
    with _name_lock:
        _name_counts.clear()


def dtype_name(dtype):
    """The compute dtype name from a Keras dtype (str, DTypePolicy dict or None)."""
    if dtype is None:
        return "float32"
    if isinstance(dtype, dict):  # Keras 3 DTypePolicy / tf_keras Policy serialisation
        cfg = dtype.get("config", {})
        dtype = cfg.get("name", "float32")
    if not isinstance(dtype, str):
        dtype = np.dtype(dtype).name
    if dtype.startswith("mixed_"):
        return "float32"  # mixed_float16 / mixed_bfloat16 compute in float32 for now
    if dtype not in ("float32", "float64"):
        raise ValueError(
            "Expected dtype 'float32' or 'float64' (or a mixed_* policy). "
            f"Received: dtype={dtype!r}"
        )
    return dtype


# add_weight arguments that only matter for training: accepted and ignored.
_ADD_WEIGHT_TRAINING_ARGS = ("regularizer", "constraint", "aggregation", "autocast",
                             "overwrite_with_gradient", "synchronization", "use_resource",
                             "experimental_autocast", "partitioner", "caching_device")


class Layer:
    """The base of every gpulstm layer, and of the layers users write (``gpulstm.Layer``).

    As in Keras, a custom layer subclasses it and defines ``build(input_shape)``
    (creating weights with :meth:`add_weight`), ``call(inputs, ...)`` (on NumPy
    arrays), and when useful ``compute_output_shape``, ``compute_mask`` and
    ``get_config`` (the constructor's extra arguments). ``layer(x)`` then builds the
    layer and calls it; on symbolic tensors it records a graph node, and models
    holding it save, load (``custom_objects={"Name": cls}``), summarise and predict
    like Keras's. ``call(y_true, y_pred)``-style layers take several positional
    inputs; ``mask`` / ``training`` are passed when ``call`` names them. See
    ``gpulstm.layers._user`` for the calling conventions.

    >>> class Gain(gpulstm.Layer):
    ...     def build(self, input_shape):
    ...         self.gain = self.add_weight(shape=(input_shape[-1],), initializer="ones")
    ...     def call(self, inputs):
    ...         return inputs * self.gain

    gpulstm's own layers override the calling machinery (``__call__``); they share
    the name, dtype and weights handling.
    """

    # Keras's base-layer arguments a user layer's config may carry; no effect at inference.
    _USER_NOOP_KEYS = ("input_shape", "batch_input_shape", "batch_size", "input_dim",
                       "autocast", "activity_regularizer", "dynamic", "input_length")

    def __init__(self, name=None, dtype=None, trainable=True, **kwargs):
        if type(self).__call__ is Layer.__call__:  # a user layer
            for k in self._USER_NOOP_KEYS:
                kwargs.pop(k, None)
        if kwargs:
            raise TypeError(
                f"Unrecognized keyword arguments passed to {type(self).__name__}: "
                f"{kwargs}"
            )
        self.name = name or unique_name(to_snake_case(type(self).__name__))
        self._dtype_config = dtype
        self.dtype = dtype_name(dtype)
        self.trainable = trainable
        self.built = False
        self._weights = []
        self._weight_names = []

    # -- weights ---------------------------------------------------------------
    @property
    def weights(self):
        """The layer's weight arrays, in Keras's order, read-only (edit copies from
        ``get_weights()`` and call ``set_weights``)."""
        return [readonly(w) for w in self._weights]

    def get_weights(self):
        """Writable copies of the weights, in Keras's order."""
        return [w.copy() for w in self._weights]

    def count_params(self):
        """The number of scalars in the weights (the layer must be built)."""
        if not self.built:
            raise ValueError(
                f"You tried to call `count_params` on layer '{self.name}', but the "
                "layer isn't built. You can build it manually via: "
                "`layer.build(input_shape)`."
            )
        return int(sum(w.size for w in self._weights))

    def _check_weights(self, weights, expected_shapes, names=None):
        """Copies of ``weights`` in the layer's dtype, after checking count, shapes and
        dtypes (bool, integer or float); nothing of the layer changes."""
        names = self._weight_names if names is None else names
        weights = list(weights)
        if len(weights) != len(expected_shapes):
            raise ValueError(
                f"Layer '{self.name}' expected {len(expected_shapes)} weights "
                f"with shapes {[tuple(s) for s in expected_shapes]}. "
                f"Received: {len(weights)} weights"
            )
        out = []
        for i, (w, shape) in enumerate(zip(weights, expected_shapes)):
            arr = as_real_array(w, f"weight {i} ({names[i]}) of layer '{self.name}'",
                                WEIGHTS_FIX)
            if arr.shape != tuple(shape):
                raise ValueError(
                    f"Layer '{self.name}' weight {i} ({names[i]}) "
                    f"expected shape {tuple(shape)}. Received: weight with shape "
                    f"{arr.shape}"
                )
            out.append(weight_copy(arr, self.dtype))
        return out

    def set_weights(self, weights):
        """Replace the weights (built layers); shapes must match exactly."""
        if not self.built:
            raise ValueError(
                f"Layer '{self.name}' is not built yet, so it has no weights to set. "
                "Call `layer.build(input_shape)` first."
            )
        new = self._check_weights(weights, [w.shape for w in self._weights])
        if type(self).__call__ is Layer.__call__:  # a user layer keeps its add_weight arrays
            for old, w in zip(self._weights, new):
                old[...] = w
        else:
            self._weights = new
        self._on_weights_set()

    def _on_weights_set(self):
        """Hook for layers that keep derived copies of their weights."""

    # -- the Keras Layer API for user layers ---------------------------------------
    def add_weight(self, shape=None, initializer=None, dtype=None, trainable=True,
                   name=None, **kwargs):
        """Create a weight (a NumPy array the layer owns; ``set_weights`` and loading
        fill it in place) and return it.

        Keras's arguments: ``shape``, ``initializer`` (a Keras initializer name or
        config; default ``"glorot_uniform"``, ``"zeros"`` for a non-float dtype),
        ``dtype`` (default the layer's), ``trainable``, ``name`` (pass it by keyword,
        as Keras 3's order puts ``shape`` first); ``regularizer``,
        ``constraint``, ``aggregation``... are training-only and ignored. Weights are
        listed (``get_weights``, files) trainable ones first, each group in creation
        order, as Keras lists them.
        """
        from gpulstm import initializers

        unknown = sorted(set(kwargs) - set(_ADD_WEIGHT_TRAINING_ARGS))
        if unknown:
            raise TypeError(f"add_weight() got unexpected keyword arguments {unknown}. "
                            f"Expected some of: shape, initializer, dtype, trainable, name, "
                            f"{', '.join(_ADD_WEIGHT_TRAINING_ARGS)}")
        try:
            shape = () if shape is None else tuple(int(d) for d in np.atleast_1d(shape))
        except (TypeError, ValueError):
            raise ValueError(f"Layer '{self.name}': expected `shape` to be a tuple of ints. "
                             f"Received: shape={shape!r} (weight {name!r})") from None
        dtype = self.dtype if dtype is None else np.dtype(dtype).name
        if initializer is None:
            initializer = "glorot_uniform" if np.dtype(dtype).kind == "f" else "zeros"
        init = initializers.get(initializer, "initializer")
        value = np.array(init(shape, dtype if np.dtype(dtype).kind == "f" else "float32",
                              np.random.default_rng()), dtype=dtype)
        flags = list(getattr(self, "weight_trainable", None) or [])
        at = sum(flags) if trainable else len(flags)  # trainable weights first, as Keras
        self._weights.insert(at, value)
        self._weight_names.insert(at, name or f"variable_{len(flags)}")
        flags.insert(at, bool(trainable))
        self.weight_trainable = flags
        return value

    def _weights_with_flags(self):
        ws = self.weights
        flags = getattr(self, "weight_trainable", None) or [True] * len(ws)
        return [(w, bool(t) and bool(self.trainable)) for w, t in zip(ws, flags)]

    @property
    def trainable_weights(self):
        """The weights training would update (read-only views), as Keras lists them."""
        return [w for w, t in self._weights_with_flags() if t]

    @property
    def non_trainable_weights(self):
        return [w for w, t in self._weights_with_flags() if not t]

    def __call__(self, *args, **kwargs):
        from gpulstm.layers import _user

        return _user.call(self, args, kwargs)

    def build(self, input_shape):
        """Create the weights for ``input_shape`` (override; call ``super().build``)."""
        self._build_input_shape = input_shape
        self.built = True

    def call(self, inputs, *args, **kwargs):
        raise NotImplementedError(
            f"Layer {type(self).__name__} does not have a `call()` method implemented.")

    def compute_output_shape(self, input_shape):
        """Override when ``call`` should not be traced on zeros to learn the shape."""
        raise NotImplementedError(
            f"Layer {type(self).__name__} does not implement `compute_output_shape`.")

    @property
    def supports_masking(self):
        """Keras 3: true when the class overrides ``compute_mask`` (settable)."""
        own = self.__dict__.get("_supports_masking")
        return own if own is not None else type(self).compute_mask is not Layer.compute_mask

    @supports_masking.setter
    def supports_masking(self, value):
        self._supports_masking = bool(value)

    def compute_mask(self, inputs, mask=None):
        """The output's mask: the input's when the layer supports masking, else None."""
        return mask if self.supports_masking else None

    def get_config(self):
        """Keras's base keys; subclasses add their constructor's arguments."""
        from gpulstm.layers._common import dtype_policy

        return {"name": self.name, "trainable": self.trainable,
                "dtype": dtype_policy(self.dtype)}

    @classmethod
    def from_config(cls, config):
        """``cls(**config)``; Keras's base keys the constructor does not take are set after."""
        from gpulstm.layers import _user

        return _user.from_config(cls, config)

    def get_build_config(self):
        return {"input_shape": getattr(self, "_build_input_shape", None)}

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}, built={self.built}>"
