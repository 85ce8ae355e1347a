"""Keras elementwise merge layers beyond Add: Subtract, Multiply, Average, Maximum, Minimum
(and their functional forms).

Shapes and masks follow :class:`Add`: the output mask is the OR of the input masks, none
when one input has none (Keras 3), or the AND of the masks there are (layers from tf_keras
2 configs).  Multiply, Maximum and Minimum also use the masks of their inputs inside the
op as Keras 3 does (masked entries count as 1 for Multiply and do not take part in
Maximum/Minimum); tf_keras's do not.
"""
import numpy as np

from gpulstm import _xp
from gpulstm.layers.merge import Add


def _masks_for(layer, inputs, mask):
    """Each input's mask broadcast to the input's shape (None where it has none); no masks
    for tf_keras 2 layers (its merges ignore masks inside the op)."""
    if mask is None or str(layer.keras_version or "").startswith(("1.", "2.")):
        return [None] * len(inputs)
    out = []
    for x, m in zip(inputs, mask):
        if m is None:
            out.append(None)
            continue
        xp = _xp.array_module(x)
        m = xp.asarray(m, dtype=bool)
        out.append(xp.broadcast_to(m[..., None], x.shape) if m.ndim < x.ndim else m)
    return out


class Subtract(Add):
    """``inputs[0] - inputs[1]`` (exactly two inputs)."""

    def input_shape_error(self, input_shape):
        self._check_list(input_shape)
        if len(input_shape) != 2:
            return ("A `Subtract` layer should be called on exactly 2 inputs. Received: "
                    f"{len(input_shape)} inputs")
        return super().input_shape_error(input_shape)

    def call(self, inputs, mask=None, training=None):
        return inputs[0] - inputs[1]


class Average(Add):
    """The elementwise mean of the inputs."""

    def call(self, inputs, mask=None, training=None):
        return super().call(inputs) / len(inputs)


class Multiply(Add):
    """The elementwise product; with every input masked, masked entries count as 1 and
    the output is 0 where no input is unmasked (Keras 3)."""

    def call(self, inputs, mask=None, training=None):
        masks = _masks_for(self, inputs, mask)
        xp = _xp.array_module(inputs[0])
        out, out_mask = None, None
        every = all(m is not None for m in masks)
        for x, m in zip(inputs, masks):
            if m is not None:
                x = xp.where(m, x, 1.0)  # a Python scalar keeps x's dtype (no upload)
                if every:
                    out_mask = m if out_mask is None else out_mask | m
            out = x if out is None else out * x
        if every:
            out = xp.where(out_mask, out, 0.0)
        return out


class _Extremum(Add):
    """Maximum / Minimum with Keras 3's handling of masked inputs."""

    def _op(self, xp, a, b):
        raise NotImplementedError

    def call(self, inputs, mask=None, training=None):
        masks = _masks_for(self, inputs, mask)
        xp = _xp.array_module(inputs[0])
        out, out_mask = inputs[0], masks[0]
        for x, m in zip(inputs[1:], masks[1:]):
            if m is not None:
                x = xp.where(m, x, out)
            if out_mask is not None:
                out = xp.where(out_mask, out, x)
            out_mask = out_mask | m if (m is not None and out_mask is not None) else None
            out = self._op(xp, out, x)
        return out


class Maximum(_Extremum):
    """The elementwise maximum of the inputs."""

    def _op(self, xp, a, b):
        return xp.maximum(a, b)


class Minimum(_Extremum):
    """The elementwise minimum of the inputs."""

    def _op(self, xp, a, b):
        return xp.minimum(a, b)


def subtract(inputs, **kwargs):
    """Functional form of :class:`Subtract`."""
    return Subtract(**kwargs)(inputs)


def multiply(inputs, **kwargs):
    """Functional form of :class:`Multiply`."""
    return Multiply(**kwargs)(inputs)


def average(inputs, **kwargs):
    """Functional form of :class:`Average`."""
    return Average(**kwargs)(inputs)


def maximum(inputs, **kwargs):
    """Functional form of :class:`Maximum`."""
    return Maximum(**kwargs)(inputs)


def minimum(inputs, **kwargs):
    """Functional form of :class:`Minimum`."""
    return Minimum(**kwargs)(inputs)


class Dot(Add):
    """Batchwise dot product of two tensors along ``axes`` (an int, or one axis per input;
    the batch axis cannot be one); ``normalize=True`` L2-normalizes both first (cosine).
    The output is x's remaining axes then y's (at least (batch, 1)); no mask goes on."""

    def __init__(self, axes, normalize=False, **kwargs):
        super().__init__(**kwargs)
        ok = isinstance(axes, int) and not isinstance(axes, bool)
        if not ok:
            if not isinstance(axes, (list, tuple)):
                raise TypeError("Invalid type for argument `axes`: it should be a list or an "
                                f"int. Received: axes={axes!r}")
            if len(axes) != 2 or not all(isinstance(a, int) and not isinstance(a, bool)
                                         for a in axes):
                raise ValueError("Invalid format for argument `axes`: it should contain two "
                                 f"integers. Received: axes={axes!r}")
        self.axes = axes if ok else list(axes)
        self.normalize = bool(normalize)

    def _axes_for(self, ranks):
        axes = [self.axes] * 2 if isinstance(self.axes, int) else self.axes
        return [a % r if a < 0 else a for a, r in zip(axes, ranks)]

    def input_shape_error(self, input_shape):
        self._check_list(input_shape)
        if len(input_shape) != 2:
            return f"A `Dot` layer should be called on a list of 2 inputs. Received: " \
                   f"{len(input_shape)} inputs"
        s1, s2 = input_shape
        if min(len(s1), len(s2)) < 2:
            return "Cannot do batch_dot on inputs with rank < 2"
        a1, a2 = self._axes_for([len(s1), len(s2)])
        if 0 in (a1, a2) or a1 >= len(s1) or a2 >= len(s2):
            return f"Cannot perform batch_dot over axes {self.axes} (0 is the batch axis)"
        if s1[a1] != s2[a2]:
            return (f"Incompatible input shapes: axis values {s1[a1]} (at axis {a1}) != "
                    f"{s2[a2]} (at axis {a2}). Full input shapes: {s1}, {s2}")
        return None

    def compute_output_shape(self, input_shape):
        s1, s2 = (list(s) for s in input_shape)
        a1, a2 = self._axes_for([len(s1), len(s2)])
        s1.pop(a1)
        s2.pop(a2)
        out = s1 + s2[1:]
        return tuple(out + [1] if len(out) == 1 else out)

    def compute_mask(self, inputs, mask=None):
        return None

    def call(self, inputs, mask=None, training=None):
        x, y = inputs
        xp = _xp.array_module(x)
        a1, a2 = self._axes_for([x.ndim, y.ndim])
        if self.normalize:
            x, y = _l2_normalize(x, a1, xp), _l2_normalize(y, a2, xp)
        # x: (B, *xr, D) and y: (B, D, *yr), then one batched matmul
        x = x.transpose([i for i in range(x.ndim) if i != a1] + [a1])
        y = y.transpose([0, a2] + [i for i in range(1, y.ndim) if i != a2])
        xr, yr = x.shape[1:-1], y.shape[2:]
        b, d = x.shape[0], x.shape[-1]
        out = x.reshape(b, -1, d) @ y.reshape(b, d, -1)
        shape = (b,) + tuple(xr) + tuple(yr)
        return out.reshape(shape if len(shape) > 1 else (b, 1))

    def get_config(self):
        return {**self._base_config(), "axes": self.axes, "normalize": self.normalize}


def _l2_normalize(x, axis, xp):
    """Keras's ``normalize(x, axis)``: ``x * min(1 / sqrt(sum(x**2)), 1 / epsilon)``."""
    with np.errstate(divide="ignore"):  # an all-zero vector: 1/0 -> inf -> 1e7
        inv = 1.0 / xp.sqrt((x * x).sum(axis=axis, keepdims=True))
    return x * xp.minimum(inv, 1e7)


def dot(inputs, axes=-1, **kwargs):
    """Functional form of :class:`Dot`."""
    return Dot(axes=axes, **kwargs)(inputs)
