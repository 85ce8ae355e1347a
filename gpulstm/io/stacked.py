"""A stack of (optionally bidirectional) recurrent layers with PyTorch/ONNX conventions.

Used by the ONNX importer (it needs ``sequence_lens`` masks and
``direction="reverse"``; :func:`gpulstm.from_torch` builds a functional
``Model`` instead, see :mod:`gpulstm.io.torch_model`): each direction is a
``gpulstm.LSTM`` or ``gpulstm.GRU`` (the backward one with ``go_backwards=True``,
its output flipped back to time order), outputs of the two directions are
concatenated on the feature axis, and each final state (h, and c for an LSTM)
is stacked as ``(num_layers * dirs, B, H)`` with index ``layer * dirs + direction``.
"""
import numpy as np


class StackedRNN:
    """PyTorch-style multi-layer recurrent stack built from gpulstm ``LSTM`` or ``GRU`` layers.

    Parameters
    ----------
    layer_weights : list of list of [kernel, recurrent_kernel, bias or None]
        Keras-layout weights, ``layer_weights[k][d]`` for layer k, direction d.
    batch_first : bool
        Input/output ``(B, T, F)`` when True, else ``(T, B, F)``.
    return_state : bool
        ``predict`` returns ``[output, h_n, c_n]`` instead of ``output``.
    activation, recurrent_activation : str, optional
        Keras activation names (as in ``gpulstm.LSTM``; a SimpleRNN takes no
        ``recurrent_activation``); the layer's defaults when omitted.
    keras_version : str, optional
        Picks the hard_sigmoid formula (``"2"``: 0.2x + 0.5, ``"3"``: x/6 + 0.5).
    backend : str, optional
    name : str
    reverse_only : bool
        One direction that runs backwards (ONNX ``direction="reverse"``).
    layer_class : class, optional
        The layer of every direction: ``gpulstm.LSTM`` (default), ``gpulstm.GRU`` or
        ``gpulstm.SimpleRNN``.
    **layer_kwargs
        More arguments of every layer (``reset_after`` for a GRU).
    """

    def __init__(self, layer_weights, *, batch_first=False, return_state=False, activation=None,
                 recurrent_activation=None, keras_version=None, backend=None, name="stacked_lstm",
                 reverse_only=False, layer_class=None, **layer_kwargs):
        if layer_class is None:
            from gpulstm.layers import LSTM as layer_class

        acts = dict(activation=activation, recurrent_activation=recurrent_activation)
        layer_kwargs.update({k: v for k, v in acts.items() if v is not None})
        self.name = name
        self.n_states = layer_class._n_states
        self.batch_first = bool(batch_first)
        self.return_state = bool(return_state)
        self.num_layers = len(layer_weights)
        self.num_directions = len(layer_weights[0])
        self.hidden_size = int(layer_weights[0][0][1].shape[0])
        self.input_size = int(layer_weights[0][0][0].shape[0])
        self.layers = []
        # ONNX direction="reverse": one direction, processed last step first.
        self._backward = (lambda d: True) if reverse_only else (lambda d: d == 1)
        for k, per_dir in enumerate(layer_weights):
            for d, (kernel, rk, bias) in enumerate(per_dir):
                layer = layer_class(self.hidden_size, use_bias=bias is not None, return_sequences=True,
                                    return_state=True, go_backwards=self._backward(d),
                                    zero_output_for_mask=True, backend=backend, keras_version=keras_version,
                                    name=f"{name}_l{k}" + ("_reverse" if d else ""), **layer_kwargs)
                layer.set_weights(  # builds from the kernel's shape, no random draws
                    [kernel, rk] + ([bias] if bias is not None else []))
                self.layers.append(layer)

    def _states(self, initial_state, B):
        L = self.num_layers * self.num_directions
        if initial_state is None:
            return [None] * L
        given = [np.asarray(s, dtype=np.float32) for s in initial_state]
        want = (L, B, self.hidden_size)
        names = ("h_0", "c_0")[:self.n_states]
        if len(given) != self.n_states or any(s.shape != want for s in given):
            raise ValueError(f"Expected initial_state=({', '.join(names)}) of shape {want} each. "
                             f"Received: shapes {[s.shape for s in given]}")
        return [[s[i] for s in given] for i in range(L)]

    def predict(self, x, initial_state=None, mask=None, backend=None):
        """Run the stack.

        Parameters
        ----------
        x : array, (B, T, F) if ``batch_first`` else (T, B, F)
        initial_state : (h_0, c_0) for LSTM layers, (h_0,) for GRU layers, optional
            Each (num_layers * dirs, B, H).
        mask : bool array (B, T), optional
            Right-padding mask (ONNX ``sequence_lens``): steps past a row's
            length output zeros and leave the state unchanged.

        Returns
        -------
        output, or [output, h_n, c_n] (LSTM) / [output, h_n] (GRU) with ``return_state``
        """
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 3:
            raise ValueError(f"Expected a 3-d input. Received: input shape {x.shape}")
        if not self.batch_first:
            x = np.swapaxes(x, 0, 1)  # x is (B, T, F)
        states = self._states(initial_state, x.shape[0])
        finals = [[] for _ in range(self.n_states)]  # per state: one (B, H) per layer and direction
        for k in range(self.num_layers):
            outs = []
            for d in range(self.num_directions):
                i = k * self.num_directions + d
                out, *st = self.layers[i](x, mask=mask, initial_state=states[i], backend=backend)
                out = np.asarray(out)
                outs.append(out[:, ::-1] if self._backward(d) else out)  # back to time order
                for f, s in zip(finals, st):
                    f.append(np.asarray(s))
            x = np.ascontiguousarray(np.concatenate(outs, axis=-1))  # x is (B, T, dirs*H)
        y = x if self.batch_first else np.swapaxes(x, 0, 1)
        if self.return_state:
            return [y] + [np.stack(f) for f in finals]
        return y

    __call__ = predict

    def get_weights(self):
        """All weights: per layer and direction, [kernel, recurrent_kernel, (bias)]."""
        return [w for layer in self.layers for w in layer.get_weights()]

    def count_params(self):
        return int(sum(np.size(w) for w in self.get_weights()))

    def summary(self, print_fn=print):
        dirs = "bidirectional" if self.num_directions == 2 else "forward"
        print_fn(f'{type(self).__name__} of {type(self.layers[0]).__name__} "{self.name}": '
                 f"{self.num_layers} layer(s), {dirs}, hidden_size={self.hidden_size}, "
                 f"batch_first={self.batch_first}, params={self.count_params():,}")
