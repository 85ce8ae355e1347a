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


class Layer:
    """Base class: a name, a dtype, a list of weights and a ``built`` flag.

    Subclasses define ``build(input_shape)`` (creating ``self._weights`` in
    Keras's order), ``call(...)`` and ``compute_output_shape(input_shape)``.
    """

    def __init__(self, name=None, dtype=None, trainable=True, **kwargs):
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
        self._weights = new
        self._on_weights_set()

    def _on_weights_set(self):
        """Hook for layers that keep derived copies of their weights."""

    def get_build_config(self):
        return {"input_shape": getattr(self, "_build_input_shape", None)}

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}, built={self.built}>"
