"""What the recurrent layers that run on the CPU backend only (GRU, SimpleRNN) share:
refusing other backends, host copies of device inputs, weights built from
``_weight_shapes``."""
from gpulstm import _xp
from gpulstm.dispatch import BackendUnavailableError, get_backend, requested_backend
from gpulstm.layers.lstm import LSTM


def cpu_only(layer_name, class_name, backend):
    """Refuse a request (argument or GPULSTM_BACKEND) for a backend other than the CPU."""
    asked, source = requested_backend(backend)
    if asked not in ("auto", "cpu"):
        raise BackendUnavailableError(
            f"Layer '{layer_name}' ({class_name}) cannot run on the '{asked}' backend "
            f"(requested by the {source}): gpulstm's {class_name} runs on the 'cpu' backend "
            "only so far. To fix it: pass backend='cpu' (or 'auto').")


class CpuRecurrent:
    """Mixin before ``LSTM`` in a layer's bases (its methods also serve ``RNN`` over such
    cells, called as plain functions)."""

    def build(self, input_shape):
        """Create the weights for an input of ``input_shape`` (B, T, D), or (T, B, D)."""
        from gpulstm.layers import _lstm_checks as checks

        shape = checks.input_shape(input_shape, self)
        kernel_shape, rec_shape, bias_shape = self._weight_shapes(shape[-1])
        rng = self._rng
        weights = [self.kernel_initializer(kernel_shape, self.dtype, rng),
                   self.recurrent_initializer(rec_shape, self.dtype, rng)]
        if self.use_bias:
            weights.append(self.bias_initializer(bias_shape, self.dtype, rng))
        self._set_built(weights, shape)

    def call(self, inputs, mask=None, initial_state=None, training=None, backend=None):
        """Run the layer on ``inputs``; device (CuPy) arrays are copied to the host (the
        layer runs on the CPU backend) and the results are NumPy arrays."""
        def host(v):
            return _xp.to_host(v) if _xp.is_device_array(v) else v

        if isinstance(initial_state, (list, tuple)):
            initial_state = [host(v) for v in initial_state]
        return LSTM.call(self, host(inputs), mask=host(mask),
                         initial_state=host(initial_state), training=training, backend=backend)

    def _backend(self, backend, inputs):
        # Only the CPU backend runs these layers so far: "auto" picks it, a request for
        # another backend is refused by name (before that backend is even loaded).
        cpu_only(self.name, type(self).__name__,
                 backend if backend is not None else self.backend)
        be, name, _ = get_backend("cpu", None)
        return be, name
