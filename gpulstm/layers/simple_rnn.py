"""``gpulstm.SimpleRNN``: keras.layers.SimpleRNN for inference, on the CPU and CUDA backends.

It shares the LSTM layer's machinery (argument checks, states, masks, stateful calls,
configs): ``h_t = activation(x_t @ kernel + bias + h_tm1 @ recurrent_kernel)``, one
state, no gates.
"""
import numpy as np

from gpulstm.layers._cpu_recurrent import CpuRecurrent
from gpulstm.layers.lstm import LSTM


class SimpleRNN(CpuRecurrent, LSTM):
    """Fully-connected RNN layer with Keras's arguments, defaults and numbers.

    Arguments as ``keras.layers.SimpleRNN`` (and :class:`gpulstm.LSTM` for ``backend``,
    ``keras_version``, ``time_major``, ``zero_output_for_mask``): ``kernel`` (D, U),
    ``recurrent_kernel`` (U, U), ``bias`` (U,).  With ``return_state=True`` the layer
    returns ``[output, h]``.  Runs on the ``cpu`` and ``cuda`` backends, chosen as for
    the LSTM (training-mode ``recurrent_dropout`` on both; on CUDA checked in numba's
    simulator, not yet on a GPU).

    Examples
    --------
    >>> import numpy as np, gpulstm
    >>> layer = gpulstm.SimpleRNN(50)
    >>> layer(np.zeros((2, 400, 3), "float32")).shape
    (2, 50)
    >>> layer.count_params()
    2700
    """

    _n_states = 1  # [h]
    _backends = ("cpu", "cuda")

    def __init__(self, units, activation="tanh", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", kernel_regularizer=None, recurrent_regularizer=None,
                 bias_regularizer=None, activity_regularizer=None, kernel_constraint=None,
                 recurrent_constraint=None, bias_constraint=None, dropout=0.0,
                 recurrent_dropout=0.0, return_sequences=False, return_state=False,
                 go_backwards=False, stateful=False, unroll=False, seed=None, time_major=False,
                 zero_output_for_mask=False, backend=None, keras_version=None, **kwargs):
        super().__init__(
            units, activation=activation, recurrent_activation="sigmoid", use_bias=use_bias,
            kernel_initializer=kernel_initializer, recurrent_initializer=recurrent_initializer,
            bias_initializer=bias_initializer, unit_forget_bias=False,
            kernel_regularizer=kernel_regularizer, recurrent_regularizer=recurrent_regularizer,
            bias_regularizer=bias_regularizer, activity_regularizer=activity_regularizer,
            kernel_constraint=kernel_constraint, recurrent_constraint=recurrent_constraint,
            bias_constraint=bias_constraint, dropout=dropout,
            recurrent_dropout=recurrent_dropout, return_sequences=return_sequences,
            return_state=return_state, go_backwards=go_backwards, stateful=stateful,
            time_major=time_major, unroll=unroll, zero_output_for_mask=zero_output_for_mask,
            seed=seed, backend=backend, keras_version=keras_version, **kwargs)

    # -- weights ------------------------------------------------------------------
    def _weight_shapes(self, D):
        U = self.units
        return [(D, U), (U, U), (U,)]

    # -- call ---------------------------------------------------------------------
    def _forward(self, be, name, x, m, states, training, xp):
        """``(out, h)`` from the backend's ``rnn_forward``."""
        B, T, D = x.shape
        x_proj, rec_masks = None, None
        if training and (self.dropout > 0 or self.recurrent_dropout > 0):
            x_proj, rec_masks = self._dropout_inputs(x, B, D, xp)
        act = self._codes()[0]
        ws = self._weights
        h0 = states[0]
        if name == "cpu":  # host arrays
            x, h0, m = np.asarray(x), np.asarray(h0), None if m is None else np.asarray(m)
        return be.rnn_forward(
            x, ws[0], ws[1], ws[2] if self.use_bias else None, h0, m, activation=act,
            go_backwards=self.go_backwards, return_sequences=self.return_sequences,
            zero_output_for_mask=self.zero_output_for_mask, x_proj=x_proj,
            rec_masks=rec_masks, **self._prepared_for(be, name, "rnn_prepare", ws=ws))

    # -- config -------------------------------------------------------------------
    def get_config(self):
        """The layer config in the Keras 3 dialect (plus ``time_major`` when true)."""
        cfg = super().get_config()
        # Keras 3's SimpleRNN config has no `seed` (the layer still takes one)
        del cfg["unit_forget_bias"], cfg["recurrent_activation"], cfg["seed"]
        return cfg

    @classmethod
    def from_config(cls, config, keras_version=None):
        """Build a layer from a tf_keras 2 or Keras 3 SimpleRNN config."""
        if isinstance(config, dict) and "units" not in config:
            raise ValueError(f"A SimpleRNN config needs `units`. Received: config={config!r}")
        return super().from_config(config, keras_version)
