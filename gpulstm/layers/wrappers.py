"""Keras layer wrappers: TimeDistributed and Bidirectional."""
import numpy as np

from gpulstm import _xp
from gpulstm.dispatch import get_backend
from gpulstm.layers._arrays import restore_on_error
from gpulstm.layers._common import KerasLayer, shape_str
from gpulstm.layers.base import Layer

_MERGE_MODES = ("sum", "mul", "ave", "concat", None)


def _call_inner(layer, x, mask=None, training=None, backend=None, initial_state=None,
                source=None):
    """Call a wrapped layer numerically (gpulstm's LSTM takes ``backend=``).

    ``source``: ``(embedding, ids)`` when ``x`` is ``embedding(ids)`` (an LSTM then
    gathers from its projected table, see ``gpulstm.layers.embedded``)."""
    from gpulstm.layers.embedded import call_on_ids
    from gpulstm.layers.lstm import LSTM

    if isinstance(layer, LSTM):
        if source is not None:
            out = call_on_ids(layer, *source, mask, initial_state, training, backend)
            if out is not NotImplemented:
                return out
        return layer.call(x, mask=mask, initial_state=initial_state, training=training,
                          backend=backend)
    return layer.call(x, mask=mask, training=training)


def _deserialize(cfg, keras_version):
    from gpulstm.models.serialization import deserialize_layer

    return deserialize_layer(cfg, keras_version)


class TimeDistributed(KerasLayer):
    """Applies ``layer`` to every time step: input (B, T, ...) -> (B, T, ...).

    Parameters
    ----------
    layer : Layer
        The layer applied to each (B, ...) slice, e.g. ``Dense(2)``.
    """

    def __init__(self, layer, **kwargs):
        if isinstance(layer, dict):
            layer = _deserialize(layer, kwargs.get("keras_version"))
        if not isinstance(layer, Layer):
            raise ValueError("Please initialize `TimeDistributed` layer with a layer "
                             f"instance. Received: layer={layer!r}")
        super().__init__(**kwargs)
        self.layer = layer
        if getattr(layer, "built", False):
            self.built = True

    @property
    def weights(self):
        return self.layer.weights

    def get_weights(self):
        return self.layer.get_weights()

    def set_weights(self, weights):
        self.layer.set_weights(weights)
        self.built = True

    def count_params(self):
        return self.layer.count_params()

    def input_shape_error(self, input_shape):
        if len(input_shape) < 3:
            return (f"`TimeDistributed` requires input with at least 3 dimensions, found "
                    f"ndim={len(input_shape)}")
        inner = getattr(self.layer, "input_shape_error", None)
        if inner is not None:
            err = inner((input_shape[0],) + tuple(input_shape[2:]))
            if err:
                return f"inner layer '{self.layer.name}': {err}"
        return None

    def build(self, input_shape):
        err = self.input_shape_error(tuple(input_shape))
        if err:
            raise ValueError(f"Input 0 of layer '{self.name}' is incompatible with the layer: "
                             f"{err}. Full shape received: {shape_str(input_shape)}")
        inner = (input_shape[0],) + tuple(input_shape[2:])
        if not self.layer.built:
            self.layer.build(inner)
        super().build(tuple(input_shape))

    def compute_output_shape(self, input_shape):
        inner = self.layer.compute_output_shape((input_shape[0],) + tuple(input_shape[2:]))
        return (inner[0], input_shape[1]) + tuple(inner[1:])

    def call(self, inputs, mask=None, training=None, backend=None):
        x = _xp.asarray(inputs)
        B, T = x.shape[:2]
        flat = x.reshape((B * T,) + x.shape[2:])  # flat is (B*T, ...)
        y = _call_inner(self.layer, flat, training=training, backend=backend)
        return y.reshape((B, T) + y.shape[1:])

    def get_config(self):
        from gpulstm.models.serialization import serialize_layer

        return {**self._base_config(), "layer": serialize_layer(self.layer)}


class Bidirectional(KerasLayer):
    """Runs an LSTM forwards and a copy backwards and merges the two outputs.

    Parameters
    ----------
    layer : LSTM
        The forward layer's template (its weights are not reused, as in Keras).
    merge_mode : {"concat", "sum", "mul", "ave", None}
        None returns ``[forward, backward]``.
    backward_layer : LSTM, optional
        The backward layer; by default a copy of ``layer`` with ``go_backwards=True``.

    Notes
    -----
    As in Keras, both layers get ``zero_output_for_mask = return_sequences``, and the
    backward sequence is flipped back to input order before merging.
    """

    def __init__(self, layer, merge_mode="concat", weights=None, backward_layer=None,
                 **kwargs):
        from gpulstm.layers.lstm import LSTM

        kv = kwargs.get("keras_version")
        if isinstance(layer, dict):
            layer = _deserialize(layer, kv)
        if isinstance(backward_layer, dict):
            backward_layer = _deserialize(backward_layer, kv)
        if not isinstance(layer, LSTM):
            raise ValueError("Please initialize `Bidirectional` layer with a gpulstm `LSTM`, "
                             f"`GRU` or `SimpleRNN` instance. Received: layer={layer!r}")
        if backward_layer is not None and not isinstance(backward_layer, LSTM):
            raise ValueError("`backward_layer` needs to be a gpulstm `LSTM`, `GRU` or `SimpleRNN` instance. "
                             f"Received: backward_layer={backward_layer!r}")
        if merge_mode not in _MERGE_MODES:
            raise ValueError(f"Invalid merge mode. Received: merge_mode={merge_mode!r}. "
                             'Merge mode should be one of {"sum", "mul", "ave", "concat", None}')
        super().__init__(**kwargs)
        self.forward_layer = self._recreate(layer, "forward_", {})
        if backward_layer is None:
            self.backward_layer = self._recreate(layer, "backward_", {"go_backwards": True})
        else:
            self.backward_layer = backward_layer
        self._verify()
        for sub in (self.forward_layer, self.backward_layer):
            sub.zero_output_for_mask = sub.return_sequences
        self.merge_mode = merge_mode
        self.stateful = layer.stateful
        self.return_sequences = layer.return_sequences
        self.return_state = layer.return_state
        self.backend = getattr(layer, "backend", None)
        if weights:
            self.build((None, None, np.shape(weights[0])[0]))
            self.set_weights(weights)

    @staticmethod
    def _recreate(layer, prefix, overrides):
        cfg = layer.get_config()
        name = layer.name[len(prefix):] if layer.name.startswith(prefix) else layer.name
        cfg.update(overrides, name=prefix + name)
        new = type(layer).from_config(cfg)
        new.backend = getattr(layer, "backend", None)
        return new

    def _verify(self):
        f, b = self.forward_layer, self.backward_layer
        if f.go_backwards == b.go_backwards:
            raise ValueError("Forward layer and backward layer should have different "
                             "`go_backwards` value. Received: forward_layer.go_backwards="
                             f"{f.go_backwards}, backward_layer.go_backwards={b.go_backwards}")
        if type(f) is not type(b):
            raise ValueError(
                "Forward layer and backward layer are expected to be of the same class. "
                f"Received: {type(f).__name__} forward and {type(b).__name__} backward layers")
        for a in ("stateful", "return_sequences", "return_state"):
            if getattr(f, a) != getattr(b, a):
                raise ValueError(
                    f'Forward layer and backward layer are expected to have the same value '
                    f'for attribute "{a}", got "{getattr(f, a)}" for forward layer and '
                    f'"{getattr(b, a)}" for backward layer')

    # -- weights: forward then backward -------------------------------------------
    def _order(self):
        """Where each of ``get_weights()`` sits in forward + backward (see weight_order)."""
        from gpulstm.models.weight_order import get_weights_order

        return get_weights_order(self)

    def _in_order(self, natural):
        order = self._order()
        return natural if len(order) != len(natural) else [natural[i] for i in order]

    @property
    def weights(self):
        return self._in_order(self.forward_layer.weights + self.backward_layer.weights)

    def get_weights(self):
        """Forward then backward; tf_keras configs: a frozen direction after a trainable one."""
        return self._in_order(self.forward_layer.get_weights() + self.backward_layer.get_weights())

    def set_weights(self, weights):
        weights = list(weights)
        order = self._order()
        from gpulstm.models.weight_order import trainable_flags

        nf = len(trainable_flags(self.forward_layer))
        if len(weights) != len(order):
            raise ValueError(f"Layer '{self.name}' expected {len(order)} weights (forward then "
                             f"backward). Received: {len(weights)} weights")
        natural = [None] * len(weights)
        for i, w in zip(order, weights):
            natural[i] = w
        with restore_on_error(self.forward_layer, self.backward_layer):  # all or nothing
            self.forward_layer.set_weights(natural[:nf])
            self.backward_layer.set_weights(natural[nf:])
        self.built = True

    def count_params(self):
        return self.forward_layer.count_params() + self.backward_layer.count_params()

    def reset_states(self):
        if not self.stateful:
            raise AttributeError("Layer must be stateful.")
        self.forward_layer.reset_states()
        self.backward_layer.reset_states()

    # -- shapes and masks -----------------------------------------------------------
    def input_shape_error(self, input_shape):
        if len(input_shape) != 3:
            return f"expected ndim=3, found ndim={len(input_shape)}"
        f = self.forward_layer
        if f.built and input_shape[-1] is not None and input_shape[-1] != f.kernel.shape[0]:
            return (f"expected axis -1 of input shape to have value {f.kernel.shape[0]}, but "
                    f"received input with shape {shape_str(input_shape)}")
        return None

    def build(self, input_shape):
        for sub in (self.forward_layer, self.backward_layer):
            if not sub.built:
                sub.build(tuple(input_shape))
        super().build(tuple(input_shape))

    def compute_output_shape(self, input_shape):
        out = self.forward_layer.compute_output_shape(tuple(input_shape))
        states = []
        if self.return_state:
            out, states = out[0], list(out[1:])
        if self.merge_mode == "concat":
            out = tuple(out[:-1]) + (out[-1] * 2,)
        outs = [out, out] if self.merge_mode is None else [out]
        if self.return_state:
            return outs + states + states
        return outs if self.merge_mode is None else out

    def compute_mask(self, inputs, mask=None):
        out_mask = mask if self.return_sequences else None
        masks = [out_mask, out_mask] if self.merge_mode is None else [out_mask]
        if self.return_state:
            return masks + [None] * (2 * self.forward_layer._n_states)
        return masks if self.merge_mode is None else out_mask

    # -- call -----------------------------------------------------------------------
    def call(self, inputs, mask=None, training=None, initial_state=None, backend=None,
             source=None):
        fs = bs = None
        if initial_state is not None:
            half = len(initial_state) // 2
            fs, bs = list(initial_state[:half]), list(initial_state[half:])
        y, y_rev = self._both(inputs, mask, training, backend, fs, bs, source)
        states = []
        if self.return_state:
            states = list(y[1:]) + list(y_rev[1:])
            y, y_rev = y[0], y_rev[0]
        if self.return_sequences:
            y_rev = y_rev[:, ::-1]  # back to input order
        xp = _xp.array_module(y)  # the LSTMs return device arrays for device input
        if self.merge_mode == "concat":
            out = [xp.concatenate([y, y_rev], axis=-1)]
        elif self.merge_mode == "sum":
            out = [y + y_rev]
        elif self.merge_mode == "ave":
            out = [(y + y_rev) / 2]
        elif self.merge_mode == "mul":
            out = [y * y_rev]
        else:
            out = [y, xp.ascontiguousarray(y_rev)]
        out = [xp.asarray(o, dtype=self.forward_layer.dtype) for o in out]
        if self.return_state:
            return out + states
        return out[0] if self.merge_mode is not None else out

    def _both(self, inputs, mask, training, backend, fs, bs, source=None):
        """Both directions' outputs; the backend may run them side by side."""
        f, b = self.forward_layer, self.backward_layer

        def forward():
            return _call_inner(f, inputs, mask, training, backend, fs, source)

        def backward():
            return _call_inner(b, inputs, mask, training, backend, bs, source)

        shape = getattr(inputs, "shape", ())
        if not (f.built and b.built) or len(shape) != 3 or f.stateful:
            return forward(), backward()
        be, _, _ = get_backend(backend if backend is not None else f.backend, inputs)
        pair = getattr(be, "run_pair", None)
        if pair is None:
            return forward(), backward()
        B, T, D = shape
        U = max(getattr(f, "units", 0), getattr(b, "units", 0))
        G = f._weights[1].shape[1]  # 4U (LSTM) or 3U (GRU); both layers are built here
        return pair(B * T * G * (D + U), forward, backward)

    def get_config(self):
        from gpulstm.models.serialization import serialize_layer

        return {**self._base_config(), "merge_mode": self.merge_mode,
                "layer": serialize_layer(self.forward_layer),
                "backward_layer": serialize_layer(self.backward_layer)}
