"""The few tensor ops Keras 3 writes into functional configs to carry masks.

``ops.not_equal``, ``ops.any``... appear as graph nodes of their own in Keras 3
configs; gpulstm replays them from a fixed table of array functions (nothing
from a config is imported or executed), each taken from the array module of its
input (NumPy, or CuPy so that a model's masks stay on the device).
"""
import numpy as np

from gpulstm import _xp
from gpulstm.layers._common import KerasLayer
from gpulstm.models.symbolic import KerasTensor, Node, _nodes

# Keras 3's class name -> the op on array module ``xp`` (NumPy and CuPy both have it).
_OPS = {
    "NotEqual": lambda xp, a, b: xp.not_equal(a, b),
    "Equal": lambda xp, a, b: xp.equal(a, b),
    "LogicalOr": lambda xp, a, b: xp.logical_or(a, b),
    "LogicalAnd": lambda xp, a, b: xp.logical_and(a, b),
    "LogicalNot": lambda xp, a: xp.logical_not(a),
    "ExpandDims": lambda xp, a, axis: xp.expand_dims(a, axis),
    "Squeeze": lambda xp, a, axis=None: xp.squeeze(a, axis=axis),
    "ZerosLike": lambda xp, a, dtype=None: xp.zeros_like(a, dtype=dtype),
    "OnesLike": lambda xp, a, dtype=None: xp.ones_like(a, dtype=dtype),
    "Any": lambda xp, a, axis=None, keepdims=False: xp.any(a, axis=axis, keepdims=keepdims),
    "All": lambda xp, a, axis=None, keepdims=False: xp.all(a, axis=axis, keepdims=keepdims),
    "Cast": lambda xp, a, dtype: xp.asarray(a).astype(dtype),
    # Attention's compute_mask (keras.src.ops.core): the query's mask as a tensor
    "ConvertToTensor": lambda xp, a, dtype=None, sparse=None, ragged=None: xp.asarray(
        a, dtype=dtype),
}


def _module_of(args):
    """CuPy when any argument is a CuPy array (the others are scalars), else NumPy."""
    for a in args:
        xp = _xp.array_module(a)
        if xp is not np:
            return xp
    return np


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
        xp = _module_of(inputs)
        args = [xp.asarray(a) if isinstance(a, (list, tuple)) else a for a in inputs]
        return _OPS[self.op](xp, *args, **self.options)

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
