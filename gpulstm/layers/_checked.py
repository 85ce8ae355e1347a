"""A layer base whose ``build`` checks the input shape before anything changes."""
from gpulstm.layers._common import KerasLayer, shape_str


class CheckedLayer(KerasLayer):
    """``build`` raises Keras's "Input 0 of layer ... is incompatible" error when
    ``input_shape_error`` names a problem (the layer stays unbuilt), then makes the
    weights in ``_build``."""

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        err = self.input_shape_error(input_shape)
        if err:
            raise ValueError(f"Input 0 of layer '{self.name}' is incompatible with the layer: "
                             f"{err}. Full shape received: {shape_str(input_shape)}")
        self._build(input_shape)
        super().build(input_shape)

    def _build(self, input_shape):
        """Weights, for the layers that have some."""
