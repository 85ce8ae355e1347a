"""``gpulstm.RNN``: keras.layers.RNN over gpulstm's cells, for inference.

``RNN(cell)`` runs the cell's layer (``cell.layer``: an LSTM, GRU or SimpleRNN) through
that layer's machinery, so ``RNN(LSTMCell(u))`` gives ``LSTM(u)``'s numbers.
``RNN(StackedRNNCells([...]))`` (or ``RNN([cells])``) runs the cells one above the other at
every step: the same numbers as the stacked layers with ``return_sequences=True`` sharing
the mask (a masked step skips every cell), and states per cell, flat in the cells' order
([h, c] of an LSTM cell, [h] of the others), as Keras returns them.
"""
import numpy as np

from gpulstm.layers import _lstm_checks as checks
from gpulstm.layers._cpu_recurrent import CpuRecurrent, cpu_only
from gpulstm.layers.base import Layer
from gpulstm.layers.cells import StackedRNNCells, _Cell, deserialize_cell, serialize_cell
from gpulstm.layers.lstm import LSTM
from gpulstm.layers.user_cell import UserCellRunner, is_user_cell


_RNN_KEYS = ("name", "trainable", "dtype", "return_sequences", "return_state", "go_backwards",
             "stateful", "unroll", "zero_output_for_mask", "time_major", "keras_version")


def _sizes(lay):
    """The widths of a cell layer's states (a user cell's may differ)."""
    return getattr(lay, "state_sizes", None) or [lay.units] * lay._n_states


def _flat(values):
    if isinstance(values, (list, tuple)):
        return [v for item in values for v in _flat(item)]
    return [values]


class RNN(LSTM):
    """Recurrent layer over a cell, with Keras's arguments, defaults and numbers.

    Parameters
    ----------
    cell : LSTMCell, GRUCell, SimpleRNNCell, StackedRNNCells or a list of cells
        A list is stacked (``StackedRNNCells``), as in Keras.
    return_sequences, return_state, go_backwards, stateful, unroll, time_major,
    zero_output_for_mask : bool
        As in ``keras.layers.RNN`` (``unroll`` changes nothing numerically).
    backend, keras_version :
        As in :class:`gpulstm.LSTM`; cells other than ``LSTMCell`` run on the ``cpu``
        backend only so far.

    Examples
    --------
    >>> import numpy as np, gpulstm
    >>> layer = gpulstm.RNN(gpulstm.StackedRNNCells([gpulstm.LSTMCell(8),
    ...                                              gpulstm.GRUCell(4)]))
    >>> layer(np.zeros((2, 10, 3), "float32")).shape
    (2, 4)
    """

    def __init__(self, cell, return_sequences=False, return_state=False, go_backwards=False,
                 stateful=False, unroll=False, zero_output_for_mask=False, time_major=False,
                 backend=None, keras_version=None, **kwargs):
        if isinstance(cell, dict):
            cell = deserialize_cell(cell, keras_version)
        elif isinstance(cell, (list, tuple)):
            cell = StackedRNNCells(list(cell))
        if not isinstance(cell, (_Cell, StackedRNNCells)) and not is_user_cell(cell):
            raise ValueError(
                "Argument `cell` of gpulstm's RNN should be a gpulstm LSTMCell, GRUCell, "
                "SimpleRNNCell, a cell written on gpulstm.Layer (with `call(inputs, states)` "
                "and `state_size`), StackedRNNCells or a list of those. Received: "
                f"cell={cell!r}")
        cells = cell.cells if isinstance(cell, StackedRNNCells) else [cell]
        layers = [c.layer if isinstance(c, _Cell) else UserCellRunner(c) for c in cells]
        self.cell = cell
        self._layers = layers
        self._cpu_only = any(type(lay) is not LSTM for lay in self._layers)
        if self._cpu_only:
            cpu_only(kwargs.get("name") or "rnn", "RNN", backend)
        kwargs.setdefault("dtype", self._layers[0].dtype)
        super().__init__(
            self._layers[-1].units, return_sequences=return_sequences,
            return_state=return_state, go_backwards=go_backwards, stateful=stateful,
            time_major=time_major, unroll=unroll, zero_output_for_mask=zero_output_for_mask,
            backend=backend, keras_version=keras_version, **kwargs)
        self._n_states = sum(lay._n_states for lay in self._layers)
        # what LSTM._run reads to serialise calls that draw dropout masks
        self.dropout = max(lay.dropout for lay in self._layers)
        self.recurrent_dropout = max(lay.recurrent_dropout for lay in self._layers)

    # -- weights: the cells' own, in order -------------------------------------------
    @property
    def _weights(self):
        return [w for lay in self._layers for w in lay._weights]

    @_weights.setter
    def _weights(self, weights):
        weights = list(weights)
        if not weights:
            return  # Layer.__init__'s empty list: the cells keep theirs
        i = 0
        for lay in self._layers:
            n = len(lay._weights)
            lay._weights = weights[i:i + n]
            lay._on_weights_set()
            i += n

    @property
    def _weight_names(self):
        return [f"{lay.name}/{n}" for lay in self._layers for n in lay._weight_names]

    @_weight_names.setter
    def _weight_names(self, names):
        pass  # the cells' names

    def _n_weights(self):
        """How many weights ``get_weights`` lists (known before the layer is built, except
        for a user cell's: counted once built)."""
        return sum(lay._n_weights() if isinstance(lay, UserCellRunner)
                   else 3 if lay.use_bias else 2 for lay in self._layers)

    @property
    def weight_trainable(self):
        """Whether each weight (``get_weights`` order) is trainable: a user cell's frozen
        weights are not (legacy ``.h5`` files list every trainable weight first)."""
        return [f for lay in self._layers for f in
                (getattr(lay.cell, "weight_trainable", None) or [True] * len(lay._weights)
                 if isinstance(lay, UserCellRunner) else [True] * len(lay._weights))]

    @property
    def kernel(self):
        """The first cell's kernel (None for a user cell: its weights are its own)."""
        first = self._layers[0]
        return None if isinstance(first, UserCellRunner) or not first.built else first.kernel

    def build(self, input_shape):
        """Build every cell for an input of ``input_shape`` (B, T, D), or (T, B, D)."""
        shape = checks.input_shape(input_shape, self)
        D = shape[-1]
        for lay in self._layers:
            dim = lay.input_dim if isinstance(lay, UserCellRunner) else \
                lay._weights[0].shape[0] if lay.built else None
            if not lay.built or dim != D:
                lay.build((None, None, D))
            D = lay.units
        self._build_input_shape = shape
        self.built = True
        if self.stateful:
            batch = shape[1] if self.time_major else shape[0]
            self._states = None if batch is None else self._zero_states(batch)

    def set_weights(self, weights):
        """Set the cells' weights, in order (``[kernel, recurrent_kernel, bias]`` each)."""
        weights = list(weights)
        if self.built:
            return Layer.set_weights(self, weights)
        if len(weights) != self._n_weights() or np.ndim(weights[0]) != 2:
            raise ValueError(
                f"Layer '{self.name}' expected {self._n_weights()} weights (each cell's "
                "kernel, recurrent_kernel and bias, in order). Received: "
                f"{len(weights)} weights with shapes {[np.shape(w) for w in weights]}")
        saved = [(lay.built, lay._weights) for lay in self._layers]
        self.build((None, None, np.shape(weights[0])[0]))
        try:
            Layer.set_weights(self, weights)
        except Exception:
            for lay, (built, ws) in zip(self._layers, saved):  # as it was: unbuilt
                lay.built, lay._weights = built, ws
            self.built, self._states = False, None
            raise

    # -- states -----------------------------------------------------------------------
    def _zero_states(self, batch):
        return [np.zeros((batch, u), lay.dtype) for lay in self._layers for u in _sizes(lay)]

    def _state_units(self):
        """The width of each state, flat in the cells' order."""
        return [u for lay in self._layers for u in _sizes(lay)]

    def _split_states(self, values, B, arg, xp):
        flat = _flat(values)
        if len(flat) != self._n_states:
            raise ValueError(
                f"Layer '{self.name}' expects `{arg}` to hold {self._n_states} arrays (per "
                f"cell: [h, c] for an LSTMCell, [h] otherwise; units "
                f"{[lay.units for lay in self._layers]}). Received: {len(flat)} arrays")
        out, i = [], 0
        for lay in self._layers:
            n = lay._n_states
            out += checks.states(flat[i:i + n], B, lay, arg, xp)
            i += n
        return out

    def _initial_states(self, initial_state, B, xp):
        if initial_state is None and not self.stateful:
            return [xp.zeros((B, u), dtype=lay.dtype) for lay in self._layers
                    for u in _sizes(lay)]
        return super()._initial_states(initial_state, B, xp)

    def reset_states(self, states=None):
        """Zero the states of a stateful layer, or set them (flat or nested per cell)."""
        if states is None or not self.stateful:
            return super().reset_states(states)
        batch = self._states[0].shape[0] if self._states is not None else None
        self._states = self._split_states(states, batch, "states", np)

    def compute_output_shape(self, input_shape):
        out = super().compute_output_shape(input_shape)
        if not self.return_state:
            return out
        B = out[1][0]
        return [out[0]] + [(B, u) for u in self._state_units()]

    # -- call -------------------------------------------------------------------------
    def call(self, inputs, mask=None, initial_state=None, training=None, backend=None):
        """Run the layer on ``inputs`` (see :class:`gpulstm.LSTM`)."""
        if self._cpu_only:
            return CpuRecurrent.call(self, inputs, mask=mask, initial_state=initial_state,
                                     training=training, backend=backend)
        return super().call(inputs, mask=mask, initial_state=initial_state,
                            training=training, backend=backend)

    def _backend(self, backend, inputs):
        if self._cpu_only:
            return CpuRecurrent._backend(self, backend, inputs)
        return super()._backend(backend, inputs)

    def _checked(self, inputs, mask, initial_state, xp):
        if initial_state is not None:
            x = checks.inputs(inputs, self, xp)
            B = x.shape[1] if self.time_major else x.shape[0]
            initial_state = self._split_states(initial_state, B, "initial_state", xp)
        x, m, _ = super()._checked(inputs, mask, None, xp)
        return x, m, initial_state

    def _forward(self, be, name, x, m, states, training, xp, x_proj=None):
        """``(out, *states)``: each cell's layer in turn on the one below's sequence."""
        layers = self._layers
        single = len(layers) == 1
        for lay in layers:  # the inner layers' flags follow this layer's (Bidirectional
            lay.return_sequences = True  # sets zero_output_for_mask after construction)
            lay.zero_output_for_mask = False
            lay.go_backwards = single and self.go_backwards
        layers[-1].return_sequences = self.return_sequences
        layers[-1].zero_output_for_mask = self.zero_output_for_mask
        if self.go_backwards and not single:
            # the stack reads the reversed sequence (outputs in processing order)
            x = xp.ascontiguousarray(x[:, ::-1])
            m = None if m is None else xp.ascontiguousarray(m[:, ::-1])
        new, i = [], 0
        for lay in layers:
            n = lay._n_states
            x, *st = lay._forward(be, name, x, m, states[i:i + n], training, xp)
            new += st
            i += n
        return (x, *new)

    # -- config -----------------------------------------------------------------------
    def get_config(self):
        """The layer config in the Keras 3 dialect (plus ``time_major`` when true)."""
        own = super().get_config()  # the layer's keys, then the cell's arguments: dropped
        cfg = {k: v for k, v in own.items() if k in _RNN_KEYS}
        cfg["cell"] = serialize_cell(self.cell)
        return cfg

    @classmethod
    def from_config(cls, config, keras_version=None):
        """Build a layer from a tf_keras 2 or Keras 3 RNN config."""
        if not isinstance(config, dict) or not isinstance(config.get("cell"), (dict, list)):
            raise ValueError(f"An RNN config needs a `cell`. Received: config={config!r}")
        cfg = dict(config)
        own = cfg.pop("keras_version", None)
        kv = keras_version if keras_version is not None else own
        cell = cfg.pop("cell")
        cell = [deserialize_cell(c, kv) for c in cell] if isinstance(cell, list) else \
            deserialize_cell(cell, kv)
        return cls(cell, keras_version=kv, **cfg)
