"""The few tensor ops Keras 3 writes into functional configs to carry masks.

``ops.not_equal``, ``ops.any``... appear as graph nodes of their own in Keras 3
configs; gpulstm replays them from a fixed table of NumPy functions (nothing
from a config is imported or executed).
"""
import numpy as np

from gpulstm.layers._common import KerasLayer
from gpulstm.models.symbolic import KerasTensor, Node, _nodes

_OPS = {
    "NotEqual": lambda a, b: np.not_equal(a, b),
    "Equal": lambda a, b: np.equal(a, b),
    "LogicalOr": lambda a, b: np.logical_or(a, b),
    "LogicalAnd": lambda a, b: np.logical_and(a, b),
    "LogicalNot": lambda a: np.logical_not(a),
    "ExpandDims": lambda a, axis: np.expand_dims(a, axis),
    "Squeeze": lambda a, axis=None: np.squeeze(a, axis=axis),
    "ZerosLike": lambda a, dtype=None: np.zeros_like(a, dtype=dtype),
    "OnesLike": lambda a, dtype=None: np.ones_like(a, dtype=dtype),
    "Any": lambda a, axis=None, keepdims=False: np.any(a, axis=axis, keepdims=keepdims),
    "All": lambda a, axis=None, keepdims=False: np.all(a, axis=axis, keepdims=keepdims),
    "Cast": lambda a, dtype: np.asarray(a).astype(dtype),
}


class OpLayer(KerasLayer):
    """One of the Keras 3 mask ops in ``_OPS`` (positional args from the node)."""

    def __init__(self, op, options=None, name=None, module="keras.src.ops.numpy"):
        super().__init__(name=name)
        self.op = op
        self.module = module
        self.options = {k: v for k, v in (options or {}).items() if k not in ("name",)}

    def call(self, inputs, mask=None, training=None):
        if self.op == "Cast" and self.options.get("dtype") is None:
            raise ValueError(f"Op layer '{self.name}' (Cast) needs a dtype.")
        return _OPS[self.op](*inputs, **self.options)

    def compute_mask(self, inputs, mask=None):
        return None

    def symbolic(self, args):
        """Record a node; the output shape comes from running the op on a stand-in."""
        def stand_in(a):
            if isinstance(a, KerasTensor):
                return np.zeros(tuple(1 if d is None else d for d in a.shape), a.dtype)
            return a
        probe = np.asarray(self.call([stand_in(a) for a in args]))
        first = next(a for a in args if isinstance(a, KerasTensor))
        shape = tuple(probe.shape)
        if first.shape and first.shape[0] is None and shape:
            shape = (None,) + shape[1:]
        out = KerasTensor(shape, probe.dtype.name, self, len(_nodes(self)), 0)
        _nodes(self).append(Node(self, list(args), {}, [out]))
        return out
