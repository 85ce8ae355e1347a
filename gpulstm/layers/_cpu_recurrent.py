"""What the recurrent layers beside the LSTM (GRU, SimpleRNN) share: the backends they
run on (``_backends``; others refused by name), host copies of device inputs on the
CPU backend, weights built from ``_weight_shapes``."""
import numpy as np

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
    cells, called as plain functions).

    ``_backends``: ``("cpu",)`` refuses every other backend; with ``"cuda"`` the backend
    is chosen as for the LSTM (explicit requests fail loudly when unavailable, "auto"
    never picks the simulator)."""

    _backends = ("cpu",)

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
        """Run the layer on ``inputs`` (NumPy, or a device array on the CUDA backend); on
        the CPU backend device (CuPy) arrays are copied to the host and the results are
        NumPy arrays."""
        be, name = self._backend(backend, inputs)
        if name == "cpu":
            def host(v):
                return _xp.to_host(v) if _xp.is_device_array(v) else v

            if isinstance(initial_state, (list, tuple)):
                initial_state = [host(v) for v in initial_state]
            inputs, mask, initial_state = host(inputs), host(mask), host(initial_state)
        xp = getattr(be, "array_module", lambda a: np)(inputs)
        x, m, initial_state = self._checked(inputs, mask, initial_state, xp)
        return self._run(be, name, x, m, initial_state, training, xp)

    def _backend(self, backend, inputs):
        if "cuda" in getattr(self, "_backends", ()):
            return LSTM._backend(self, backend, inputs)
        # CPU only: "auto" picks it, a request for another backend is refused by name
        # (before that backend is even loaded).
        cpu_only(self.name, type(self).__name__,
                 backend if backend is not None else self.backend)
        be, name, _ = get_backend("cpu", None)
        return be, name
