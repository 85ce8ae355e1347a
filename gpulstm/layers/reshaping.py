"""Keras reshaping layers: Reshape."""
import numpy as np

from gpulstm import _xp
from gpulstm.layers._common import KerasLayer, shape_str


class Reshape(KerasLayer):
    """Reshapes each sample (the batch axis is kept): (B, ...) -> (B, *target_shape).

    Parameters
    ----------
    target_shape : tuple of int
        The shape of one sample; one entry may be -1 (inferred), as in Keras.

    Examples
    --------
    >>> import numpy as np
    >>> Reshape((2, 3))(np.zeros((4, 6), "float32")).shape
    (4, 2, 3)
    """

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        try:
            target = tuple(int(d) for d in target_shape)
        except (TypeError, ValueError):
            raise ValueError("Expected `target_shape` to be a tuple of ints. Received: "
                             f"target_shape={target_shape!r}") from None
        if sum(d == -1 for d in target) > 1 or any(d < -1 or d == 0 for d in target):
            raise ValueError("Expected `target_shape` of positive ints with at most one -1. "
                             f"Received: target_shape={target_shape!r}")
        self.target_shape = target

    def _resolved(self, input_shape):
        """``target_shape`` with -1 filled in when the sample size is known."""
        known = [d for d in self.target_shape if d != -1]
        if -1 not in self.target_shape:
            return self.target_shape
        size = None if any(d is None for d in input_shape[1:]) else int(np.prod(input_shape[1:]))
        fill = None if size is None else size // int(np.prod(known))
        return tuple(fill if d == -1 else d for d in self.target_shape)

    def input_shape_error(self, input_shape):
        if any(d is None for d in input_shape[1:]):
            return None
        size = int(np.prod(input_shape[1:]))
        known = int(np.prod([d for d in self.target_shape if d != -1]))
        ok = size % known == 0 if -1 in self.target_shape else size == known
        if ok:
            return None
        return (f"total size of the new array must be unchanged, input_shape = "
                f"{list(input_shape[1:])}, output_shape = {list(self.target_shape)}")

    def build(self, input_shape):
        err = self.input_shape_error(tuple(input_shape))
        if err:
            raise ValueError(f"Layer '{self.name}': {err}. Full shape received: "
                             f"{shape_str(input_shape)}")
        super().build(tuple(input_shape))

    def compute_output_shape(self, input_shape):
        return (input_shape[0],) + self._resolved(input_shape)

    def call(self, inputs, mask=None, training=None):
        x = _xp.asarray(inputs)
        return x.reshape((x.shape[0],) + self.target_shape)

    def get_config(self):
        return {**self._base_config(), "target_shape": list(self.target_shape)}
