"""``RNN(cell)`` over a cell the user writes on :class:`gpulstm.Layer` (``custom_objects``).

Keras's cell protocol: ``state_size`` (an int, or a list of ints: one per state; the
first is the output size unless the cell has ``output_size``), ``build(input_shape)``
with the step's input shape ``(batch, features)``, and ``call(inputs, states)`` (plus
``training`` when its signature names it) returning ``(output, new_states)``, states a
list (a single array is taken as one state).  The cell's ``call`` runs in NumPy once per
step; masks follow Keras's rule (a masked step keeps every state and outputs the
previous output, zeros with ``zero_output_for_mask``).

``UserCellRunner`` gives such a cell what ``gpulstm.RNN`` reads of the layer behind each
of its cells (``units``, ``state_sizes``, ``_weights``, ``build``, ``_forward``...).
"""
import numpy as np

from gpulstm import _xp
from gpulstm.layers import _user


def is_user_cell(cell):
    """Whether ``cell`` is a user's cell (a :class:`gpulstm.Layer` subclass instance that
    keeps the base ``__call__``)."""
    return _user.is_user_layer(cell)


def _state_sizes(cell):
    size = getattr(cell, "state_size", None)
    sizes = [size] if isinstance(size, (int, np.integer)) else size
    if not isinstance(sizes, (list, tuple)) or not sizes or not all(
            isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s > 0
            for s in sizes):
        raise ValueError(
            "The RNN cell should have a `state_size` attribute (single integer or list of "
            "integers, one integer per RNN state; nested sizes are not supported). "
            f"Received: cell={cell!r} with state_size={size!r}")
    return [int(s) for s in sizes]


class UserCellRunner:
    """A user cell seen as one of ``gpulstm.RNN``'s cell layers (see the module doc)."""

    dropout = recurrent_dropout = 0.0  # the cell's own business

    def __init__(self, cell):
        if not callable(getattr(cell, "call", None)):
            raise ValueError(f"Argument `cell` should have a `call` method. Received: "
                             f"cell={cell!r}")
        self.cell = cell
        self.state_sizes = _state_sizes(cell)
        out = getattr(cell, "output_size", None)
        self.units = int(out) if isinstance(out, (int, np.integer)) else self.state_sizes[0]
        self._n_states = len(self.state_sizes)
        # set by the RNN before each run (as on its built-in cells' layers)
        self.return_sequences, self.zero_output_for_mask, self.go_backwards = True, False, False
        self.input_dim = None

    @property
    def name(self):
        return self.cell.name

    @property
    def dtype(self):
        return self.cell.dtype

    @property
    def built(self):
        return self.cell.built

    def build(self, input_shape):
        """Build the cell for steps of ``input_shape[-1]`` features, as Keras 3 does."""
        D = input_shape[-1]
        if not self.cell.built:
            step = (None, D)
            kw = _user._target_kwargs(self.cell, self.cell.build, {"inputs_shape": step})
            self.cell.build(**kw)
            self.cell.built = True
            if getattr(self.cell, "_build_input_shape", None) is None:
                self.cell._build_input_shape = step
        self.input_dim = D

    # the cell's weights, filled in place (the cell's own attributes hold the arrays)
    @property
    def _weights(self):
        return self.cell._weights

    @_weights.setter
    def _weights(self, weights):
        for old, new in zip(self.cell._weights, weights):
            old[...] = new

    @property
    def _weight_names(self):
        return self.cell._weight_names

    def _on_weights_set(self):
        self.cell._on_weights_set()

    def _n_weights(self):
        return len(self.cell._weights)

    def _forward(self, be, name, x, m, states, training, xp):
        """``(out, *states)``: the cell step by step over x (B, T, D) (NumPy)."""
        x = _xp.to_host(x)
        m = None if m is None else np.asarray(_xp.to_host(m), bool)
        states = [np.asarray(_xp.to_host(s)) for s in states]
        B, T = x.shape[:2]
        kw = {"training": bool(training)} if _user._accepts(self.cell.call, "training") else {}
        prev = np.zeros((B, self.units), self.dtype)
        outs = []
        for s in range(T):
            t = T - 1 - s if self.go_backwards else s
            out, new = self.cell.call(x[:, t], list(states), **kw)
            new = list(new) if isinstance(new, (list, tuple)) else [new]
            out, new = self._checked(out, new, B)
            if m is not None:
                keep = m[:, t][:, None]
                out = np.where(keep, out, 0.0 if self.zero_output_for_mask else prev)
                new = [np.where(keep, n, o) for n, o in zip(new, states)]
            prev, states = out, new
            if self.return_sequences:
                outs.append(out)
        if not self.return_sequences:
            return (prev, *states)
        seq = np.stack(outs, axis=1) if outs else np.zeros((B, 0, self.units), self.dtype)
        return (seq, *states)

    def _checked(self, out, new, B):
        """The step's output and states as arrays of the cell's sizes and dtype."""
        out = np.asarray(out)
        want = [(B, n) for n in self.state_sizes]
        got = [np.shape(n) for n in new]
        if out.shape != (B, self.units) or got != want:
            raise ValueError(
                f"RNN cell '{self.name}' ({type(self.cell).__name__}) returned an output of "
                f"shape {out.shape} and states of shapes {got}. Expected: output "
                f"{(B, self.units)} and states {want} (from its `state_size` "
                f"{self.cell.state_size!r}{'' if self.units == self.state_sizes[0] else ' and output_size'}).")
        return out.astype(self.dtype, copy=False), [np.asarray(n, self.dtype) for n in new]
