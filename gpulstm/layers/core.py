"""Keras core layers for inference: Input/InputLayer, Dense, Dropout, Masking, Embedding."""
import numbers

import numpy as np

from gpulstm import _xp, initializers
from gpulstm.layers.base import unique_name
from gpulstm.layers._common import KerasLayer, as_shape, resolve_activation, shape_str

_SOFTMAX = resolve_activation("softmax")[1]


def _input_name():
    # tf.keras names inputs from 1 ("input_1", "input_2", ...), as the seed notebook shows.
    n = unique_name("input")
    return "input_1" if n == "input" else f"input_{int(n.rsplit('_', 1)[1]) + 1}"


class InputLayer(KerasLayer):
    """The entry point of a model: holds the input's shape and dtype, has no weights.

    Parameters
    ----------
    shape : tuple, optional
        Shape without the batch axis, e.g. ``(400, 3)``.
    batch_size : int, optional
        A static batch size (stateful models need one).
    dtype : str, optional
        "float32" (default), or an integer dtype for token ids.
    batch_shape : tuple, optional
        Full shape including the batch axis; replaces ``shape``/``batch_size``.
    name : str, optional
    """

    def __init__(self, shape=None, batch_size=None, dtype=None, sparse=None,
                 batch_shape=None, input_tensor=None, ragged=None, name=None,
                 optional=False, **kwargs):
        if "batch_input_shape" in kwargs:  # tf_keras dialect
            batch_shape = kwargs.pop("batch_input_shape")
        if "input_shape" in kwargs:
            shape = kwargs.pop("input_shape")
        kwargs.pop("keras_version", None)
        kwargs.pop("trainable", None)
        super().__init__(name=name or _input_name(), **kwargs)
        if sparse or ragged:
            raise ValueError("gpulstm supports dense inputs only. Received: "
                             f"sparse={sparse!r}, ragged={ragged!r}")
        if batch_shape is None:
            if shape is None:
                raise ValueError("You must pass a `shape` argument to `Input`, e.g. "
                                 "Input(shape=(timesteps, features)). Received: shape=None")
            if isinstance(shape, numbers.Integral):
                shape = (shape,)
            batch_shape = (batch_size,) + tuple(shape)
        elif shape is not None:
            raise ValueError("Pass `shape` or `batch_shape`, not both. Received: "
                             f"shape={shape!r}, batch_shape={batch_shape!r}")
        try:
            self.batch_shape = as_shape(batch_shape)
        except (TypeError, ValueError):
            raise ValueError("Expected a shape tuple of positive ints or None. Received: "
                             f"batch_shape={batch_shape!r}") from None
        if any(d is not None and d < 0 for d in self.batch_shape):
            raise ValueError(f"Expected non-negative dimensions. Received: "
                             f"batch_shape={self.batch_shape}")
        self.dtype = np.dtype(dtype or "float32").name
        self.optional = bool(optional)
        self.built = True
        self._build_input_shape = self.batch_shape

    def call(self, inputs, mask=None, training=None):
        return inputs

    def compute_output_shape(self, input_shape=None):
        return self.batch_shape

    def get_config(self):
        return {"batch_shape": list(self.batch_shape), "dtype": self.dtype, "sparse": False,
                "ragged": False, "name": self.name, "optional": self.optional}


def Input(shape=None, batch_size=None, dtype=None, sparse=None, batch_shape=None,
          name=None, tensor=None, optional=False, ragged=None):
    """A symbolic input tensor: ``Input(shape=(400, 3))`` starts a functional model.

    Returns
    -------
    KerasTensor
        Shape ``(batch_size, *shape)`` (batch None unless given).
    """
    if tensor is not None:
        raise ValueError("gpulstm's Input does not wrap existing tensors. Received: tensor=...")
    layer = InputLayer(shape=shape, batch_size=batch_size, dtype=dtype, sparse=sparse,
                       batch_shape=batch_shape, name=name, optional=optional, ragged=ragged)
    from gpulstm.models.symbolic import input_tensor

    return input_tensor(layer)


class Dense(KerasLayer):
    """``activation(x @ kernel + bias)`` on the last axis of ``x``.

    Parameters
    ----------
    units : int
    activation : str, None or callable
        Any Keras activation name (plus "softmax"); None is linear.
    use_bias : bool
    kernel_initializer, bias_initializer : str or dict
    kernel_regularizer, bias_regularizer, activity_regularizer, kernel_constraint,
    bias_constraint :
        Training-only; kept in the config.
    """

    def __init__(self, units, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, lora_rank=None,
                 lora_alpha=None, quantization_config=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(units, bool) or not isinstance(units, numbers.Integral) or units <= 0:
            raise ValueError("Received an invalid value for argument `units`, expected a "
                             f"positive integer. Received: units={units!r}")
        if lora_rank or quantization_config:
            raise ValueError("gpulstm's Dense supports neither LoRA nor quantization. Received: "
                             f"lora_rank={lora_rank!r}, quantization_config=...")
        self.units = int(units)
        self.activation, self._act = resolve_activation(activation, self.keras_version)
        self._act_xp = getattr(self._act, "with_xp", None)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer, "kernel_initializer")
        self.bias_initializer = initializers.get(bias_initializer, "bias_initializer")
        self.kernel_regularizer = kernel_regularizer
        self.bias_regularizer = bias_regularizer
        self.activity_regularizer = activity_regularizer
        self.kernel_constraint = kernel_constraint
        self.bias_constraint = bias_constraint

    def input_shape_error(self, input_shape):
        if len(input_shape) < 2:
            return f"expected min_ndim=2, found ndim={len(input_shape)}"
        if input_shape[-1] is None:
            return "the last axis of the input must be known"
        if self.built and input_shape[-1] != self._weights[0].shape[0]:
            return (f"expected axis -1 of input shape to have value "
                    f"{self._weights[0].shape[0]}, but received input with shape "
                    f"{shape_str(input_shape)}")
        return None

    def build(self, input_shape):
        err = self.input_shape_error(tuple(input_shape))
        if err:
            raise ValueError(f"Input 0 of layer '{self.name}' is incompatible with the layer: "
                             f"{err}. Full shape received: {shape_str(input_shape)}")
        D = int(input_shape[-1])
        rng = np.random.default_rng()
        self._weights = [self.kernel_initializer((D, self.units), self.dtype, rng)]
        self._weight_names = ["kernel"]
        if self.use_bias:
            self._weights.append(self.bias_initializer((self.units,), self.dtype, rng))
            self._weight_names.append("bias")
        super().build(tuple(input_shape))

    def set_weights(self, weights):
        """``[kernel (D, units), bias (units,)]``; an unbuilt layer is built from the kernel."""
        if not self.built and len(weights) and np.ndim(weights[0]) == 2:
            names = ["kernel", "bias"][:1 + self.use_bias]
            shapes = [np.shape(weights[0]), (self.units,)][:1 + self.use_bias]
            new = self._check_weights(weights, shapes, names)  # nothing changes before
            self._weights, self._weight_names = new, names
            super().build((None, shapes[0][0]))
            return
        super().set_weights(weights)

    def call(self, inputs, mask=None, training=None):
        xp = _xp.array_module(inputs)
        x = xp.asarray(inputs, dtype=self.dtype)
        # device copies of the weights are cached, not uploaded per call
        w = self._weights if xp is np else _xp.weights_on(self, xp)
        # (..., D) as one (rows, D) @ (D, units) GEMM: NumPy's stacked matmul on 3-D
        # input (a Dense on every step) was ~25x slower at (32, 59, 256) @ (256, 93)
        x2 = x.reshape(-1, x.shape[-1])
        y = self._on_panels(x2, w) if xp is np else None
        activated = y is not None and self._act is _SOFTMAX  # the kernel ran the softmax
        if y is None:
            y = x2 @ w[0]
            if self.use_bias:
                y += w[1]  # y is the GEMM's own array
        if not activated:
            y = self._act(y) if self._act_xp is None else self._act_xp(y, xp)
        return xp.asarray(y, dtype=self.dtype).reshape(x.shape[:-1] + (self.units,))

    def _on_panels(self, x2, w):
        """``x2 @ kernel + bias`` (softmax included) on the CPU backend's panel kernels
        (``kernels/cpu_dense``), once the numba kernels are loaded (a recurrent layer
        loaded them; a Dense alone never pays numba's start-up), else None.  The panels
        are packed once per weights list (``set_weights`` installs a new one)."""
        from gpulstm.kernels import cpu_entry

        if not cpu_entry.numba_loaded():
            return None
        from gpulstm.kernels import cpu_dense

        if not cpu_dense.applies(x2, w[0]):
            return None
        cache = self.__dict__.get("_panels")
        if cache is None or cache[0] is not w:
            cache = self._panels = (w, cpu_dense.prepare(w[0]))
        return cpu_dense.dense(x2, cache[1], w[1] if self.use_bias else None, self.units,
                               self._act is _SOFTMAX)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        return {**self._base_config(), "units": self.units, "activation": self.activation,
                "use_bias": self.use_bias,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                "kernel_regularizer": self.kernel_regularizer,
                "bias_regularizer": self.bias_regularizer,
                "kernel_constraint": self.kernel_constraint,
                "bias_constraint": self.bias_constraint, "quantization_config": None}


class Dropout(KerasLayer):
    """Identity at inference; with ``training=True`` zeroes inputs at ``rate`` and
    scales the rest by ``1 / (1 - rate)`` (a new mask per call)."""

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(rate, bool) or not isinstance(rate, numbers.Real) or not 0 <= rate <= 1:
            raise ValueError("Invalid value received for argument `rate`. Expected a float "
                             f"value between 0 and 1. Received: rate={rate!r}")
        self.rate = float(rate)
        self.noise_shape = None if noise_shape is None else tuple(noise_shape)
        self.seed = seed
        self._rng = np.random.default_rng(seed)

    def call(self, inputs, mask=None, training=None):
        x = _xp.asarray(inputs)
        if not training or self.rate == 0:
            return x
        xp = _xp.array_module(x)
        shape = x.shape
        if self.noise_shape is not None:
            shape = tuple(s if n is None else n for s, n in zip(x.shape, self.noise_shape))
        # Drawn on the host from the layer's seeded generator (same numbers on every
        # backend); on a device that is one upload of the mask per training call.
        keep = _xp.to_module(self._rng.random(shape) >= self.rate, xp)
        return xp.where(keep, x / (1.0 - self.rate), 0.0).astype(x.dtype)

    def get_config(self):
        return {**self._base_config(), "rate": self.rate, "seed": self.seed,
                "noise_shape": None if self.noise_shape is None else list(self.noise_shape)}


class Masking(KerasLayer):
    """Marks time steps whose features all equal ``mask_value`` as masked (and zeroes them)."""

    def __init__(self, mask_value=0.0, **kwargs):
        super().__init__(**kwargs)
        self.mask_value = mask_value

    def compute_mask(self, inputs, mask=None):
        return (_xp.asarray(inputs) != self.mask_value).any(axis=-1)

    def call(self, inputs, mask=None, training=None):
        xp = _xp.array_module(inputs)
        x = xp.asarray(inputs, dtype=self.dtype)
        keep = (x != self.mask_value).any(axis=-1, keepdims=True)
        return xp.where(keep, x, 0.0).astype(self.dtype)

    def get_config(self):
        return {**self._base_config(), "mask_value": self.mask_value}


class Embedding(KerasLayer):
    """Token ids -> vectors: ``embeddings[ids]``; ``mask_zero=True`` masks id 0.

    Parameters
    ----------
    input_dim : int
        Vocabulary size (ids must lie in ``[0, input_dim)``).
    output_dim : int
    embeddings_initializer : str or dict
    mask_zero : bool
    """

    def __init__(self, input_dim, output_dim, embeddings_initializer="uniform",
                 embeddings_regularizer=None, embeddings_constraint=None, mask_zero=False,
                 weights=None, lora_rank=None, lora_alpha=None, quantization_config=None,
                 **kwargs):
        super().__init__(**kwargs)
        for arg, v in (("input_dim", input_dim), ("output_dim", output_dim)):
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v <= 0:
                raise ValueError(f"Expected `{arg}` to be a positive integer. "
                                 f"Received: {arg}={v!r}")
        if lora_rank or quantization_config:
            raise ValueError("gpulstm's Embedding supports neither LoRA nor quantization.")
        self.input_dim, self.output_dim = int(input_dim), int(output_dim)
        if embeddings_initializer == "uniform":  # Keras's alias of RandomUniform(-0.05, 0.05)
            embeddings_initializer = {"class_name": "RandomUniform",
                                      "config": {"minval": -0.05, "maxval": 0.05}}
        self.embeddings_initializer = initializers.get(embeddings_initializer,
                                                       "embeddings_initializer")
        self.embeddings_regularizer = embeddings_regularizer
        self.embeddings_constraint = embeddings_constraint
        self.mask_zero = bool(mask_zero)
        self.build(None)
        if weights is not None:
            self.set_weights(weights)

    def build(self, input_shape=None):
        if self.built:
            return
        emb = self.embeddings_initializer((self.input_dim, self.output_dim), self.dtype,
                                          np.random.default_rng())
        self._weights, self._weight_names = [emb], ["embeddings"]
        super().build(input_shape)

    def compute_mask(self, inputs, mask=None):
        return (_xp.asarray(inputs) != 0) if self.mask_zero else None

    def call(self, inputs, mask=None, training=None):
        ids = _xp.asarray(inputs)
        # The checks read back scalars only (bool() of a 0-d array on a device).
        if ids.dtype.kind == "f":
            if not (ids == ids.round()).all():
                raise ValueError(f"Layer '{self.name}' expects integer token ids. "
                                 "Received: non-integer values")
            ids = ids.astype(np.int64)
        elif ids.dtype.kind not in "iu":
            raise ValueError(f"Layer '{self.name}' expects integer token ids. "
                             f"Received: inputs with dtype={ids.dtype}")
        if ids.size and (ids.min() < 0 or ids.max() >= self.input_dim):
            raise ValueError(
                f"Layer '{self.name}' expects token ids in [0, {self.input_dim}). Received: "
                f"ids from {int(ids.min())} to {int(ids.max())}; raise `input_dim` or fix "
                "the ids")
        return _xp.weights_on(self, _xp.array_module(ids))[0][ids]  # (..., output_dim)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.output_dim,)

    def get_config(self):
        return {**self._base_config(), "input_dim": self.input_dim,
                "output_dim": self.output_dim,
                "embeddings_initializer": initializers.serialize(self.embeddings_initializer),
                "embeddings_regularizer": self.embeddings_regularizer,
                "embeddings_constraint": self.embeddings_constraint,
                "mask_zero": self.mask_zero, "quantization_config": None}
