"""``gpulstm.LSTM``: tf.keras.layers.LSTM for inference, on any gpulstm backend."""
import contextlib
import threading

import numpy as np

from gpulstm import _xp
from gpulstm import activations as _acts
from gpulstm import initializers
from gpulstm.dispatch import get_backend, require_backend
from gpulstm.layers._arrays import readonly
from gpulstm.layers._common import dtype_policy, recurrent_weight_config
from gpulstm.layers.base import Layer
from gpulstm.layers import _dropout, _packed
from gpulstm.layers import _lstm_checks as checks

_NO_LOCK = contextlib.nullcontext()
# Keys real Keras configs carry that change nothing at inference.
_ACCEPTED_NOOP = ("implementation", "use_cudnn", "input_shape", "batch_input_shape",
                  "batch_size", "input_dim", "input_length")


class LSTM(Layer):
    """Long Short-Term Memory layer with Keras's arguments, defaults and numbers.

    Parameters
    ----------
    units : int
        Dimensionality of the output space (U).
    activation, recurrent_activation : str, None or callable
        Keras activation names (``"tanh"``, ``"sigmoid"``, ``"hard_sigmoid"``,
        ``"relu"``, ...; None is ``"linear"``) or a numba-compilable scalar function.
        ``hard_sigmoid`` follows the Keras generation given by ``keras_version``.
    use_bias, unit_forget_bias : bool
    kernel_initializer, recurrent_initializer, bias_initializer : str or dict
        Keras initializer names or serialized configs.
    kernel_regularizer, recurrent_regularizer, bias_regularizer, activity_regularizer,
    kernel_constraint, recurrent_constraint, bias_constraint :
        Training-only; kept in the config, ignored at inference.
    dropout, recurrent_dropout : float
        Applied only when called with ``training=True`` (Keras 3 semantics).
    return_sequences, return_state, go_backwards, stateful, time_major, unroll : bool
        As in Keras; ``unroll`` changes nothing numerically.
    zero_output_for_mask : bool
        Masked steps output zeros instead of the previous output.
    seed : int, optional
        Seed of the dropout masks and unseeded random initializers.
    backend : str, optional
        gpulstm's backend for this layer ("auto", "cpu", "cuda"); not part of the config.
    keras_version : str, optional
        Keras version whose semantics apply (hard_sigmoid); None means Keras 3.
    name, dtype, trainable :
        As in Keras; dtype "float64" computes in float64.

    Examples
    --------
    >>> import numpy as np, gpulstm
    >>> layer = gpulstm.LSTM(50)
    >>> layer(np.zeros((2, 400, 3), "float32")).shape
    (2, 50)
    >>> layer.count_params()
    10800
    """

    _n_states = 2  # [h, c]

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid",
                 use_bias=True, kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal", bias_initializer="zeros",
                 unit_forget_bias=True, kernel_regularizer=None,
                 recurrent_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None,
                 recurrent_constraint=None, bias_constraint=None, dropout=0.0,
                 recurrent_dropout=0.0, return_sequences=False, return_state=False,
                 go_backwards=False, stateful=False, time_major=False, unroll=False,
                 zero_output_for_mask=False, seed=None, backend=None,
                 keras_version=None, **kwargs):
        self._noop = {k: kwargs.pop(k) for k in _ACCEPTED_NOOP if k in kwargs}
        super().__init__(name=kwargs.pop("name", None), dtype=kwargs.pop("dtype", None),
                         trainable=kwargs.pop("trainable", True), **kwargs)
        self.units = checks.positive_int(units, "units")
        self.keras_version = None if keras_version is None else str(keras_version)
        _acts.keras_major(self.keras_version)
        self._act = _acts.resolve(activation, self.keras_version, "activation")
        self._ract = _acts.resolve(recurrent_activation, self.keras_version,
                                   "recurrent_activation")
        self.activation = activation if callable(activation) else self._act[1]
        self.recurrent_activation = (recurrent_activation if callable(recurrent_activation)
                                     else self._ract[1])
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer, "kernel_initializer")
        self.recurrent_initializer = initializers.get(recurrent_initializer,
                                                      "recurrent_initializer")
        self.bias_initializer = initializers.get(bias_initializer, "bias_initializer")
        self.unit_forget_bias = bool(unit_forget_bias)
        self.kernel_regularizer = kernel_regularizer
        self.recurrent_regularizer = recurrent_regularizer
        self.bias_regularizer = bias_regularizer
        self.activity_regularizer = activity_regularizer
        self.kernel_constraint = kernel_constraint
        self.recurrent_constraint = recurrent_constraint
        self.bias_constraint = bias_constraint
        self.dropout = checks.rate(dropout, "dropout")
        self.recurrent_dropout = checks.rate(recurrent_dropout, "recurrent_dropout")
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.stateful = bool(stateful)
        self.time_major = bool(time_major)
        self.unroll = bool(unroll)
        self.zero_output_for_mask = bool(zero_output_for_mask)
        self.seed = seed
        if backend is not None:
            require_backend(backend)  # an unknown or unavailable backend fails now, not at call time
        self.backend = backend
        self._rng = np.random.default_rng(seed)
        self._states = None
        self._prepared = {}  # backend name -> that backend's packed/device weights
        self._packed_from = None  # the weights list _prepared was packed from
        self._lock = threading.RLock()
        self.last_backend = None

    # -- weights ------------------------------------------------------------------
    # Read-only views (see gpulstm.layers._arrays): edit get_weights(), then set_weights.
    @property
    def kernel(self):
        return readonly(self._weights[0]) if self.built else None

    @property
    def recurrent_kernel(self):
        return readonly(self._weights[1]) if self.built else None

    @property
    def bias(self):
        return readonly(self._weights[2]) if self.built and self.use_bias else None

    def build(self, input_shape):
        """Create the weights for an input of ``input_shape`` (B, T, D), or (T, B, D)."""
        shape = checks.input_shape(input_shape, self)
        D, U = shape[-1], self.units
        rng = self._rng
        kernel = self.kernel_initializer((D, 4 * U), self.dtype, rng)
        recurrent = self.recurrent_initializer((U, 4 * U), self.dtype, rng)
        weights = [kernel, recurrent]
        if self.use_bias:
            if self.unit_forget_bias:
                # Keras: concat(init(U), ones(U), init(2U)), the forget block *set* to 1.
                bias = np.concatenate([self.bias_initializer((U,), self.dtype, rng),
                                       np.ones(U, self.dtype),
                                       self.bias_initializer((2 * U,), self.dtype, rng)])
            else:
                bias = self.bias_initializer((4 * U,), self.dtype, rng)
            weights.append(bias)
        self._set_built(weights, shape)

    def _set_built(self, weights, shape):
        """Keep freshly initialised ``weights`` for an input of ``shape``: built."""
        self._weights = [np.ascontiguousarray(w, dtype=self.dtype) for w in weights]
        self._weight_names = ["kernel", "recurrent_kernel", "bias"][:len(weights)]
        self._build_input_shape = shape
        self._prepared = {}
        if self.stateful:
            batch = shape[1] if self.time_major else shape[0]
            self._states = None if batch is None else self._zero_states(batch)
        self.built = True

    def set_weights(self, weights):
        """Set ``[kernel (D, 4U), recurrent_kernel (U, 4U), bias (4U,)]``.

        An unbuilt layer is built from the kernel's shape.
        """
        if self.built:
            return super().set_weights(weights)
        weights = list(weights)
        n = 3 if self.use_bias else 2
        names = ["kernel", "recurrent_kernel", "bias"][:n]
        if len(weights) != n or np.ndim(weights[0]) != 2:
            want = ", ".join(f"{k} {s}" for k, s in zip(names, self._weight_shapes("D")))
            raise ValueError(
                f"Layer '{self.name}' expected {n} weights [{want}]. Received: "
                f"{len(weights)} weights with shapes {[np.shape(w) for w in weights]}"
            )
        D = np.shape(weights[0])[0]
        shapes = self._weight_shapes(D)[:n]
        new = self._check_weights(weights, shapes, names)  # raises before any state changes
        self._weights, self._weight_names = new, names
        self._build_input_shape = (None, None, D)
        self._prepared = {}
        self.built = True

    def _weight_shapes(self, D):
        """``[kernel, recurrent_kernel, bias]`` shapes for D input features."""
        G = 4 * self.units
        return [(D, G), (self.units, G), (G,)]

    def _on_weights_set(self):
        self._prepared = {}

    # -- states -------------------------------------------------------------------
    def _zero_states(self, batch):
        return [np.zeros((batch, self.units), self.dtype) for _ in range(self._n_states)]

    @property
    def states(self):
        """``[h, c]`` of a stateful layer (None entries before the first call)."""
        if self._states is None:
            return [None] * self._n_states
        return [_xp.to_host(s).copy() for s in self._states]

    def reset_states(self, states=None):
        """Zero the states of a stateful layer, or set them to ``states=[h, c]``."""
        if not self.stateful:
            raise AttributeError("Layer must be stateful to reset its states.")
        if states is None:
            if self._states is not None:
                self._states = self._zero_states(self._states[0].shape[0])
            return
        batch = self._states[0].shape[0] if self._states is not None else None
        self._states = checks.states(states, batch, self, "states")

    def reset_state(self, states=None):
        """Alias of ``reset_states`` (Keras 3 name)."""
        self.reset_states(states)

    # -- call ---------------------------------------------------------------------
    def compute_output_shape(self, input_shape):
        """Keras's output shape(s) for ``input_shape``."""
        shape = checks.input_shape(input_shape, self, check_features=False)
        if self.time_major:
            T, B = shape[0], shape[1]
            out = (T, B, self.units) if self.return_sequences else (B, self.units)
        else:
            B, T = shape[0], shape[1]
            out = (B, T, self.units) if self.return_sequences else (B, self.units)
        if self.return_state:
            return [out] + [(B, self.units)] * self._n_states
        return out

    def __call__(self, inputs, mask=None, initial_state=None, training=None, backend=None):
        # A bare NumPy call has nothing symbolic: skip the hook (~4 us per stateful step)
        plain = type(inputs) is np.ndarray and mask is None and initial_state is None
        hook = None if plain else getattr(Layer, "_symbolic_call", None)
        if hook is not None:
            res = hook(self, inputs, mask=mask, initial_state=initial_state, training=training)
            if res is not NotImplemented:
                return res
        return self.call(inputs, mask=mask, initial_state=initial_state,
                         training=training, backend=backend)

    def call(self, inputs, mask=None, initial_state=None, training=None, backend=None):
        """Run the layer on ``inputs`` (NumPy, or a device array on the CUDA backend)."""
        be, name = self._backend(backend, inputs)
        xp = getattr(be, "array_module", lambda a: np)(inputs)
        x, m, initial_state = self._checked(inputs, mask, initial_state, xp)
        return self._run(be, name, x, m, initial_state, training, xp)

    def _run(self, be, name, x, m, initial_state, training, xp, x_proj=None):
        """The checked call on ``x`` (B, T, D), or on ``x_proj`` (B, T, 4U) = x @ kernel
        + bias already computed (then ``x`` is None; LSTM only)."""
        extra = {} if x_proj is None else {"x_proj": x_proj}
        B = (x if x_proj is None else x_proj).shape[0]
        # Stateful states and the dropout generator are shared: one call at a time.
        # Otherwise only the packed-weight cache is (its own lock): calls run side by
        # side (the CPU kernels release the GIL).
        shared = self.stateful or training and (self.dropout > 0 or self.recurrent_dropout > 0)
        with self._lock if shared else _NO_LOCK:
            states = self._initial_states(initial_state, B, xp)
            out, *states = self._forward(be, name, x, m, states, training, xp, **extra)
            self.last_backend = name
            if self.stateful:
                self._states = list(states)
        if self.return_sequences and self.time_major:
            out = xp.swapaxes(out, 0, 1)
        if self.return_state:
            if self.stateful:  # the states are the kept ones: hand out copies
                states = [s.copy() for s in states]
            return [out] + list(states)
        return out

    def _backend(self, backend, inputs):
        be, name, _ = get_backend(backend if backend is not None else self.backend, inputs)
        return be, name

    def _checked(self, inputs, mask, initial_state, xp):
        """``(x (B, T, D), mask (B, T) or None, initial_state)`` checked; builds the layer."""
        x = checks.inputs(inputs, self, xp)
        if self.time_major:
            x = xp.swapaxes(x, 0, 1)  # the kernels take (B, T, D)
        B, T, D = x.shape
        # Every argument is checked before the first call builds the layer, so a
        # rejected call leaves an unbuilt layer unbuilt.
        m = checks.mask(mask, B, T, self, xp)
        if m is not None and self.time_major:
            m = xp.swapaxes(m, 0, 1)
        if initial_state is not None:
            initial_state = checks.states(initial_state, B, self, "initial_state", xp)
        if not self.built:
            with self._lock:  # two first calls build once
                if not self.built:
                    self.build((T, B, D) if self.time_major else (B, T, D))
        if D != self._weights[0].shape[0]:
            raise ValueError(
                f"Input 0 of layer '{self.name}' is incompatible with the layer: "
                f"expected axis -1 of input shape to have value {self._weights[0].shape[0]}. "
                f"Received: input shape {tuple(inputs.shape)}"
            )
        return x, m, initial_state

    def _prepared_for(self, be, name, pack="prepare", ws=None):
        """``{"prepared": ...}``: the backend's packed weights (see ``_packed``)."""
        return _packed.prepared_for(self, be, name, pack, ws)

    def _codes(self):
        """The activations as the kernels take them: int codes, or the callables."""
        act = self._act[2] if self._act[0] == _acts.CUSTOM else self._act[0]
        ract = self._ract[2] if self._ract[0] == _acts.CUSTOM else self._ract[0]
        return act, ract

    def _forward(self, be, name, x, m, states, training, xp, x_proj=None):
        """``(out, h, c)`` from the backend's ``lstm_forward``."""
        h0, c0 = states
        ws = self._weights  # one list: set_weights from another thread installs a new one
        kernel, rk = ws[0], ws[1]
        bias = ws[2] if self.use_bias else None
        rec_masks = None
        if x_proj is None and training and (self.dropout > 0 or self.recurrent_dropout > 0):
            B, T, D = x.shape
            x_proj, rec_masks = self._dropout_inputs(x, B, D, xp)
        act, ract = self._codes()
        return be.lstm_forward(
            x, kernel, rk, bias, h0, c0, m, activation=act, recurrent_activation=ract,
            go_backwards=self.go_backwards, return_sequences=self.return_sequences,
            zero_output_for_mask=self.zero_output_for_mask, x_proj=x_proj,
            rec_masks=rec_masks, **self._prepared_for(be, name, ws=ws))

    def _initial_states(self, initial_state, B, xp):
        if initial_state is not None:
            return initial_state  # checked in call()
        if self.stateful:
            if self._states is None:
                return self._zero_states(B)  # kept only once the call succeeds
            if self._states[0].shape[0] != B:
                raise ValueError(
                    f"Layer '{self.name}' is stateful and was built for batch size "
                    f"{self._states[0].shape[0]}. Received: input with batch size {B}. "
                    "Call `reset_states()` after rebuilding, or feed batches of the same size."
                )
            # a model may switch backends between calls: move the kept states along
            return [_xp.to_module(s, xp) for s in self._states]
        zeros = xp.zeros((B, self.units), dtype=self.dtype)
        return [zeros] * self._n_states

    def _dropout_inputs(self, x, B, D, xp):
        return _dropout.inputs(self, x, B, D, xp)

    def _input_bias(self):
        return self._weights[2] if self.use_bias else 0

    # -- config -------------------------------------------------------------------
    def get_config(self):
        """The layer config in the Keras 3 dialect (plus ``time_major`` when true)."""
        cfg = {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": dtype_policy(self.dtype),
            "return_sequences": self.return_sequences,
            "return_state": self.return_state,
            "go_backwards": self.go_backwards,
            "stateful": self.stateful,
            "unroll": self.unroll,
            "zero_output_for_mask": self.zero_output_for_mask,
            "units": self.units,
            "activation": self._act[1],  # a callable is written by its name, as Keras does
            "recurrent_activation": self._ract[1],
            "use_bias": self.use_bias,
            **recurrent_weight_config(self),
        }
        if self.time_major:
            cfg["time_major"] = True
        if self.keras_version is not None:
            cfg["keras_version"] = self.keras_version
        return cfg

    @classmethod
    def from_config(cls, config, keras_version=None):
        """Build a layer from a tf_keras 2 or Keras 3 LSTM config.

        ``keras_version`` None means the config's own ``keras_version`` if present,
        else Keras 3; a major version <= 2 selects Keras 2's hard_sigmoid.
        """
        if not isinstance(config, dict):
            raise ValueError(f"Expected a config dict. Received: config={config!r}")
        cfg = dict(config)
        own = cfg.pop("keras_version", None)
        cfg["keras_version"] = keras_version if keras_version is not None else own
        if "units" not in cfg:
            raise ValueError(f"An LSTM config needs `units`. Received: config={config!r}")
        return cls(**cfg)
