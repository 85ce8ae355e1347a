"""``gpulstm.GRU``: keras.layers.GRU for inference, on the CPU and CUDA backends.

It shares the LSTM layer's machinery (argument checks, states, masks, stateful
calls, configs): a GRU is an LSTM-shaped recurrent layer with one state, three gates
(z, r, h) and ``reset_after``.
"""
import numpy as np

from gpulstm.layers._cpu_recurrent import CpuRecurrent
from gpulstm.layers.lstm import LSTM


class GRU(CpuRecurrent, LSTM):
    """Gated Recurrent Unit layer with Keras's arguments, defaults and numbers.

    Arguments as ``keras.layers.GRU`` (and :class:`gpulstm.LSTM` for ``backend``,
    ``keras_version``, ``time_major``, ``zero_output_for_mask``), gate order z, r, h:
    ``kernel`` (D, 3U), ``recurrent_kernel`` (U, 3U), ``bias`` (2, 3U) = [input bias;
    recurrent bias] when ``reset_after`` (Keras's default) else (3U,).  With
    ``return_state=True`` the layer returns ``[output, h]``.  Runs on the ``cpu`` and
    ``cuda`` backends, chosen as for the LSTM (training-mode ``recurrent_dropout`` on
    both; on CUDA checked in numba's simulator, not yet on a GPU).

    Examples
    --------
    >>> import numpy as np, gpulstm
    >>> layer = gpulstm.GRU(50)
    >>> layer(np.zeros((2, 400, 3), "float32")).shape
    (2, 50)
    >>> layer.count_params()
    8100
    """

    _n_states = 1  # [h]
    _backends = ("cpu", "cuda")

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid",
                 use_bias=True, kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal", bias_initializer="zeros",
                 kernel_regularizer=None, recurrent_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None, recurrent_constraint=None,
                 bias_constraint=None, dropout=0.0, recurrent_dropout=0.0, seed=None,
                 return_sequences=False, return_state=False, go_backwards=False,
                 stateful=False, unroll=False, reset_after=True, use_cudnn="auto",
                 time_major=False, zero_output_for_mask=False, backend=None,
                 keras_version=None, **kwargs):
        super().__init__(
            units, activation=activation, recurrent_activation=recurrent_activation,
            use_bias=use_bias, kernel_initializer=kernel_initializer,
            recurrent_initializer=recurrent_initializer, bias_initializer=bias_initializer,
            unit_forget_bias=False, kernel_regularizer=kernel_regularizer,
            recurrent_regularizer=recurrent_regularizer, bias_regularizer=bias_regularizer,
            activity_regularizer=activity_regularizer, kernel_constraint=kernel_constraint,
            recurrent_constraint=recurrent_constraint, bias_constraint=bias_constraint,
            dropout=dropout, recurrent_dropout=recurrent_dropout,
            return_sequences=return_sequences, return_state=return_state,
            go_backwards=go_backwards, stateful=stateful, time_major=time_major,
            unroll=unroll, zero_output_for_mask=zero_output_for_mask, seed=seed,
            backend=backend, keras_version=keras_version, **kwargs)
        self.reset_after = bool(reset_after)
        self.use_cudnn = use_cudnn

    # -- weights ------------------------------------------------------------------
    def _weight_shapes(self, D):
        G = 3 * self.units
        return [(D, G), (self.units, G), (2, G) if self.reset_after else (G,)]

    def _input_bias(self):
        if not self.use_bias:
            return 0
        return self._weights[2][0] if self.reset_after else self._weights[2]

    # -- call ---------------------------------------------------------------------
    def _forward(self, be, name, x, m, states, training, xp):
        """``(out, h)`` from the backend's ``gru_forward``."""
        B, T, D = x.shape
        x_proj, rec_masks = None, None
        if training and (self.dropout > 0 or self.recurrent_dropout > 0):
            x_proj, rec_masks = self._dropout_inputs(x, B, D, xp)
        act, ract = self._codes()
        h0 = states[0]
        if name == "cpu":  # host arrays
            x, h0, m = np.asarray(x), np.asarray(h0), None if m is None else np.asarray(m)
        return be.gru_forward(
            x, self._weights[0], self._weights[1], self._weights[2] if self.use_bias else None,
            h0, m, activation=act,
            recurrent_activation=ract, reset_after=self.reset_after,
            go_backwards=self.go_backwards, return_sequences=self.return_sequences,
            zero_output_for_mask=self.zero_output_for_mask, x_proj=x_proj,
            rec_masks=rec_masks, **self._prepared_for(be, name, "gru_prepare"))

    # -- config -------------------------------------------------------------------
    def get_config(self):
        """The layer config in the Keras 3 dialect (plus ``time_major`` when true)."""
        cfg = super().get_config()
        del cfg["unit_forget_bias"]
        cfg["reset_after"] = self.reset_after
        return cfg

    @classmethod
    def from_config(cls, config, keras_version=None):
        """Build a layer from a tf_keras 2 or Keras 3 GRU config."""
        if isinstance(config, dict) and "units" not in config:
            raise ValueError(f"A GRU config needs `units`. Received: config={config!r}")
        return super().from_config(config, keras_version)
