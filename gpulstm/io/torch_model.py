"""The functional model :func:`gpulstm.from_torch` returns for an ``nn.LSTM``, ``nn.GRU`` or ``nn.RNN``.

The graph is an ordinary Keras one, batch-major like every Keras model::

    Input(shape=(None, input_size))
    -> LSTM(H, return_sequences=True)                      # per torch layer (GRU, SimpleRNN alike), or
    -> Bidirectional(LSTM(H, return_sequences=True), merge_mode="concat")

so ``summary()``, ``get_weights()``, ``count_params()`` and ``to_json()`` are the
Keras ones.  Keras's Bidirectional flips the backward output back to input
order before concatenating, which is exactly torch's time-aligned reverse
direction.  With ``return_state`` the graph also outputs ``h_n`` (and an LSTM's
``c_n``) batch-major, (B, num_layers * dirs, H) in torch's order ``layer * dirs +
direction`` (Concatenate + Reshape), because ``Model.predict`` splits and joins
every output along axis 0.

Only the edges adopt torch's layout: ``predict`` / ``__call__`` transpose
(T, B, F) inputs and outputs when ``batch_first=False``, and return
``h_n``/``c_n`` as (num_layers * dirs, B, H).  Batching therefore always splits
the batch axis, whatever the torch layout.
"""
import numpy as np

from gpulstm.models.functional import Model


def _flat(per_dir):
    """Keras's weight list: per direction kernel, recurrent_kernel (and bias)."""
    return [w for kernel, rk, bias in per_dir
            for w in [kernel, rk] + ([] if bias is None else [bias])]


def _stack_states(states, kind, H):
    """(B, N, H) from N tensors of (B, H), in order."""
    from gpulstm.layers.merge import Concatenate
    from gpulstm.layers.reshaping import Reshape

    x = states[0] if len(states) == 1 else Concatenate(axis=-1, name=f"{kind}_concat")(states)
    return Reshape((len(states), H), name=kind)(x)


class TorchRNNModel(Model):
    """A functional gpulstm ``Model`` that speaks ``nn.LSTM``'s / ``nn.GRU``'s / ``nn.RNN``'s layouts
    at its edges.

    Built by :func:`gpulstm.from_torch`; see :mod:`gpulstm.io.torch_model`.

    Attributes
    ----------
    mode : str
        "LSTM", "GRU", "RNN_TANH" or "RNN_RELU", as torch's ``module.mode``.
    input_size, hidden_size, num_layers : int
    bidirectional, batch_first, return_state : bool
    num_directions : int
        2 when bidirectional, else 1.

    Notes
    -----
    ``output_shape``, ``summary()`` and ``to_json()`` describe the batch-major Keras
    graph: (B, T, dirs * H) and, with ``return_state``, (B, num_layers * dirs, H)
    states.  ``predict`` and ``model(x)`` return torch's layouts: (T, B, dirs * H)
    when ``batch_first=False``, and states as (num_layers * dirs, B, H).
    ``to_json()`` saves the Keras graph; reloading it gives a plain batch-major
    ``Model``.
    """

    def __init__(self, inputs, outputs, *, state_model, layer_weights, batch_first,
                 return_state, name="torch_lstm", backend=None, mode="LSTM"):
        super().__init__(inputs, outputs, name=name, backend=backend)
        self.mode = mode
        self._state_names = ("h_0", "c_0") if mode == "LSTM" else ("h_0",)
        self.batch_first = bool(batch_first)
        self.return_state = bool(return_state)
        self.num_layers = len(layer_weights)
        self.num_directions = len(layer_weights[0])
        self.bidirectional = self.num_directions == 2
        self.hidden_size = int(layer_weights[0][0][1].shape[0])
        self.input_size = int(layer_weights[0][0][0].shape[0])
        # The same layers with (h_0, c_0) or h_0 per layer and direction as extra inputs.
        self._state_model = state_model

    # -- torch layout <-> Keras layout ----------------------------------------------
    def _keras_inputs(self, x, initial_state):
        x = np.asarray(x)
        layout = "(B, T, F)" if self.batch_first else "(T, B, F)"
        if x.ndim != 3 or x.shape[-1] != self.input_size:
            raise ValueError(f"Expected an input of shape {layout} with F={self.input_size} "
                             f"(batch_first={self.batch_first}). Received: input shape {x.shape}")
        if not self.batch_first:
            x = np.swapaxes(x, 0, 1)  # x is (B, T, F)
        if initial_state is None:
            return x
        N, B, H = self.num_layers * self.num_directions, x.shape[0], self.hidden_size
        names = ", ".join(self._state_names)
        if len(self._state_names) == 1 and not isinstance(initial_state, (list, tuple)):
            initial_state = [initial_state]  # a GRU's h_0 alone, as torch takes it
        try:
            states = [np.asarray(s, dtype=np.float32) for s in initial_state]
        except (TypeError, ValueError):
            raise ValueError(f"Expected initial_state=({names}). Received: "
                             f"{type(initial_state).__name__}") from None
        if len(states) != len(self._state_names) or any(s.shape != (N, B, H) for s in states):
            raise ValueError(f"Expected initial_state=({names}) of shape {(N, B, H)} each "
                             f"(num_layers * dirs, B, H). Received: shapes "
                             f"{' and '.join(str(s.shape) for s in states)}")
        return [x] + [s[i] for i in range(N) for s in states]

    def _torch_outputs(self, outs):
        outs = outs if isinstance(outs, list) else [outs]
        y = outs[0] if self.batch_first else np.ascontiguousarray(np.swapaxes(outs[0], 0, 1))
        if not self.return_state:
            return y
        # h_n and c_n are (B, N, H) in the graph; torch's are (N, B, H).
        return [y] + [np.ascontiguousarray(np.swapaxes(s, 0, 1)) for s in outs[1:]]

    def _graph(self, initial_state):
        return None if initial_state is None else self._state_model

    # -- running ----------------------------------------------------------------------
    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None,
                backend=None, initial_state=None):
        """The module's ``output`` (and ``[output, h_n, c_n]`` with ``return_state``).

        Parameters
        ----------
        x : array
            (B, T, F) when ``batch_first`` else (T, B, F), as in torch.
        batch_size : int, optional
            Samples (along B, whatever the layout) per batch; default 32.
        initial_state : (h_0, c_0) for an LSTM, h_0 for a GRU, optional
            Each (num_layers * dirs, B, H), as in torch; zeros when omitted.
        verbose, steps, callbacks, backend :
            As in :meth:`gpulstm.Model.predict`.
        """
        xs = self._keras_inputs(x, initial_state)
        graph = self._graph(initial_state)
        if graph is None:
            outs = super().predict(xs, batch_size=batch_size, verbose=verbose, backend=backend)
        else:
            outs = graph.predict(xs, batch_size=batch_size, verbose=verbose, backend=backend)
        return self._torch_outputs(outs)

    def __call__(self, inputs, training=None, mask=None, backend=None, initial_state=None):
        """``model(x)``: like :meth:`predict` in one batch."""
        xs = self._keras_inputs(inputs, initial_state)
        graph = self._graph(initial_state)
        if graph is None:
            outs = super().__call__(xs, training=training, backend=backend)
        else:
            outs = graph(xs, training=training, backend=backend)
        return self._torch_outputs(outs)

    def predict_on_batch(self, x, backend=None, initial_state=None):
        return self(x, training=False, backend=backend, initial_state=initial_state)

    def summary(self, line_length=None, positions=None, print_fn=None, **kwargs):
        """The Keras summary, then one line on the torch layouts ``predict`` uses."""
        super().summary(line_length, positions, print_fn, **kwargs)
        x = "(B, T, F)" if self.batch_first else "(T, B, F)"
        note = (f"Converted from torch nn.{self.mode.split('_')[0]}: predict takes and returns {x} "
                f"(batch_first={self.batch_first})")
        if self.return_state:
            note += "; h_n and c_n are" if self.mode == "LSTM" else "; h_n is"
            note += " (num_layers * dirs, B, H)"
        (print_fn or print)(note + ".")


def build_torch_model(layer_weights, *, batch_first, return_state, backend=None,
                      name="torch_lstm", cell="lstm", activation=None):
    """A :class:`TorchRNNModel` from Keras-layout weights ``layer_weights[k][d]`` of
    ``cell`` "lstm", "gru" (a GRU's bias is (2, 3H): ``reset_after=True``) or "rnn"
    (SimpleRNN with ``activation``, "tanh" or "relu")."""
    from gpulstm.initializers import placeholders
    from gpulstm.layers.core import Input
    from gpulstm.layers.gru import GRU
    from gpulstm.layers.lstm import LSTM
    from gpulstm.layers.simple_rnn import SimpleRNN
    from gpulstm.layers.wrappers import Bidirectional

    layer_class = {"lstm": LSTM, "gru": GRU, "rnn": SimpleRNN}[cell]
    extra = {} if activation is None else {"activation": activation}
    mode = f"RNN_{(activation or 'tanh').upper()}" if cell == "rnn" else cell.upper()
    n_states = layer_class._n_states  # [h, c] or [h] per direction
    dirs = len(layer_weights[0])
    H = int(layer_weights[0][0][1].shape[0])
    D = int(layer_weights[0][0][0].shape[0])
    layers = []
    for k, per_dir in enumerate(layer_weights):
        rnn = layer_class(H, return_sequences=True, return_state=return_state,
                          use_bias=per_dir[0][2] is not None, backend=backend, name=f"{cell}_l{k}", **extra)
        layer = rnn if dirs == 1 else Bidirectional(rnn, merge_mode="concat",
                                                    name=f"bidirectional_l{k}")
        with placeholders():  # set_weights replaces them at once
            layer.build((None, None, D if k == 0 else dirs * H))
        layer.set_weights(_flat(per_dir))
        layers.append(layer)

    def connect(x, states):
        finals = [[] for _ in range(n_states)]  # h (and c): one per layer and direction
        for k, layer in enumerate(layers):
            per = n_states * dirs
            init = None if states is None else states[per * k: per * (k + 1)]
            out = layer(x, initial_state=init)
            if return_state:
                out, st = out[0], out[1:]  # [h, c] or [h_f, c_f, h_b, c_b] ([h] / [h_f, h_b])
                for s, f in enumerate(finals):
                    f += st[s::n_states]
            x = out
        if not return_state:
            return x
        return [x] + [_stack_states(f, kind, H) for f, kind in zip(finals, ("h_n", "c_n"))]

    x_in = Input(shape=(None, D), name="input")
    outputs = connect(x_in, None)
    N = len(layer_weights) * dirs
    sfx = [f"_l{i // dirs}" + ("_reverse" if i % dirs else "") for i in range(N)]
    state_inputs = [Input(shape=(H,), name=f"{s}_0{sfx[i]}") for i in range(N) for s in "hc"[:n_states]]
    # The shared layers' second nodes: the graph predict(initial_state=...) runs.
    state_model = Model([x_in] + state_inputs, connect(x_in, state_inputs),
                        name=name + "_with_state", backend=backend)
    return TorchRNNModel(x_in, outputs, state_model=state_model, layer_weights=layer_weights,
                         batch_first=batch_first, return_state=return_state, name=name,
                         backend=backend, mode=mode)


TorchLSTMModel = TorchRNNModel  # its name before nn.GRU
