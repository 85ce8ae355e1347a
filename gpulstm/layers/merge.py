"""Keras merge layers: Add and Concatenate (and the functional ``add``/``concatenate``)."""
from gpulstm import _xp
from gpulstm.layers._common import KerasLayer, shape_str


class _Merge(KerasLayer):
    """Base of the layers called on a list of tensors."""

    def _check_list(self, input_shape):
        if not isinstance(input_shape, (list, tuple)) or not input_shape or \
                not isinstance(input_shape[0], (list, tuple)):
            raise ValueError(f"A `{type(self).__name__}` layer should be called on a list of "
                             f"inputs. Received: input_shape={input_shape!r}")

    def _to_arrays(self, inputs):
        if not isinstance(inputs, (list, tuple)):
            raise ValueError(f"A `{type(self).__name__}` layer should be called on a list of "
                             f"inputs. Received: inputs of type {type(inputs).__name__}")
        return [_xp.asarray(x) for x in inputs]

    def build(self, input_shape):
        err = self.input_shape_error(input_shape)
        if err:
            raise ValueError(f"Layer '{self.name}': {err}")
        super().build([tuple(s) for s in input_shape])


class Add(_Merge):
    """Elementwise sum of a list of tensors of the same shape."""

    def input_shape_error(self, input_shape):
        self._check_list(input_shape)
        ranks = {len(s) for s in input_shape}
        if len(ranks) != 1:
            return f"inputs have different ranks: {[shape_str(s) for s in input_shape]}"
        for axis in range(1, len(input_shape[0])):
            dims = {s[axis] for s in input_shape} - {None, 1}
            if len(dims) > 1:
                return ("Inputs have incompatible shapes. Received shapes "
                        + " and ".join(shape_str(s) for s in input_shape))
        return None

    def compute_output_shape(self, input_shape):
        out = []
        for dims in zip(*input_shape):
            known = [d for d in dims if d is not None]
            if len(known) < len(dims):
                big = [d for d in known if d != 1]
                out.append(big[0] if big else None)
            else:
                out.append(max(known))
        return tuple(out)

    def compute_mask(self, inputs, mask=None):
        if str(self.keras_version or "").startswith(("1.", "2.")):
            # tf_keras: the AND of the masks there are
            given = [] if mask is None else [_xp.asarray(m, dtype=bool) for m in mask
                                             if m is not None]
            out = given[0] if given else None
            for m in given[1:]:
                out = out & m
            return out
        # Keras 3: the OR of the masks, and no mask as soon as one input has none.
        if mask is None or any(m is None for m in mask):
            return None
        out = _xp.asarray(mask[0], dtype=bool)
        for m in mask[1:]:
            out = out | _xp.asarray(m, dtype=bool)
        return out

    def call(self, inputs, mask=None, training=None):
        out = inputs[0]
        for x in inputs[1:]:
            out = out + x
        return out


class Concatenate(_Merge):
    """Concatenates a list of tensors along ``axis`` (default: the last one)."""

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = int(axis)

    def input_shape_error(self, input_shape):
        self._check_list(input_shape)
        ranks = {len(s) for s in input_shape}
        if len(ranks) != 1:
            return f"inputs have different ranks: {[shape_str(s) for s in input_shape]}"
        rank = ranks.pop()
        axis = self.axis % rank
        for a in range(1, rank):
            if a == axis:
                continue
            dims = {s[a] for s in input_shape} - {None}
            if len(dims) > 1:
                return ("A `Concatenate` layer requires inputs with matching shapes except "
                        "for the concatenation axis. Received: input_shape="
                        + str([shape_str(s) for s in input_shape]))
        return None

    def compute_output_shape(self, input_shape):
        out = list(input_shape[0])
        for s in input_shape[1:]:
            if out[self.axis] is None or s[self.axis] is None:
                out[self.axis] = None
                break
            out[self.axis] += s[self.axis]
        return tuple(out)

    def compute_mask(self, inputs, mask=None):
        # Missing masks count as all-true; then any() over the last axis (tf_keras: all()).
        if mask is None or all(m is None for m in mask):
            return None
        full = []
        for x, m in zip(inputs, mask):
            x = _xp.asarray(x)
            xp = _xp.array_module(x)  # masks live where the data does
            if m is None:
                full.append(xp.ones(x.shape, dtype=bool))
                continue
            m = xp.asarray(m, dtype=bool)
            if m.ndim < x.ndim:
                m = xp.broadcast_to(m[..., None], x.shape)
            full.append(m)
        both = xp.concatenate(full, axis=self.axis)
        if str(self.keras_version or "").startswith(("1.", "2.")):
            return both.all(axis=-1)  # tf_keras reduces with all(), Keras 3 with any()
        return both.any(axis=-1)

    def call(self, inputs, mask=None, training=None):
        return _xp.array_module(inputs[0]).concatenate(inputs, axis=self.axis)

    def get_config(self):
        return {**self._base_config(), "axis": self.axis}


def add(inputs, **kwargs):
    """Functional form of :class:`Add`: ``add([x1, x2])``."""
    return Add(**kwargs)(inputs)


def concatenate(inputs, axis=-1, **kwargs):
    """Functional form of :class:`Concatenate`: ``concatenate([x1, x2], axis=-1)``."""
    return Concatenate(axis=axis, **kwargs)(inputs)
