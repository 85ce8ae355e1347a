"""Keras elementwise merge layers beyond Add: Subtract, Multiply, Average, Maximum, Minimum
(and their functional forms).

Shapes and masks follow :class:`Add` (Keras 3's merge base): the output mask is the OR
of the input masks, none when one input has none.  Multiply, Maximum and Minimum also
use the masks of their inputs inside the op as Keras 3 does (masked entries count as 1
for Multiply and do not take part in Maximum/Minimum).
"""
from gpulstm import _xp
from gpulstm.layers.merge import Add


def _masks_for(inputs, mask):
    """Each input's mask broadcast to the input's shape (None where it has none)."""
    if mask is None:
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
        masks = _masks_for(inputs, mask)
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
        masks = _masks_for(inputs, mask)
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
