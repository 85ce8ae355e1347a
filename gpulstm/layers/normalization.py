"""Keras normalization layers for inference: BatchNormalization (moving statistics) and
LayerNormalization."""
import numbers

import numpy as np

from gpulstm import _xp, initializers
from gpulstm.layers._checked import CheckedLayer
from gpulstm.layers._common import shape_str


def _axes_list(axis):
    if isinstance(axis, numbers.Integral) and not isinstance(axis, bool):
        return [int(axis)]
    if isinstance(axis, (list, tuple)) and axis and all(
            isinstance(a, numbers.Integral) and not isinstance(a, bool) for a in axis):
        return [int(a) for a in axis]
    raise TypeError("Expected an int or a list/tuple of ints for the argument 'axis'. "
                    f"Received: axis={axis!r}")


def _scale_shift(x, mean, variance, gamma, beta, epsilon, xp):
    """``x * inv + (beta - mean * inv)`` with ``inv = gamma / sqrt(variance + eps)``:
    the order of operations of Keras's ``ops.batch_normalization``."""
    inv = 1.0 / xp.sqrt(variance + epsilon)
    if gamma is not None:
        inv = inv * gamma
    res = -mean * inv
    if beta is not None:
        res = res + beta
    return x * inv + res


class _Normalization(CheckedLayer):
    """Shared by both layers: ``gamma`` (scale) and ``beta`` (center) over ``axis``."""

    def _norm_init(self, axis, epsilon, center, scale, beta_initializer, gamma_initializer,
                   beta_regularizer, gamma_regularizer, beta_constraint, gamma_constraint):
        self.epsilon = float(epsilon)
        self.center, self.scale = bool(center), bool(scale)
        self.beta_initializer = initializers.get(beta_initializer, "beta_initializer")
        self.gamma_initializer = initializers.get(gamma_initializer, "gamma_initializer")
        self.beta_regularizer, self.gamma_regularizer = beta_regularizer, gamma_regularizer
        self.beta_constraint, self.gamma_constraint = beta_constraint, gamma_constraint

    def _norm_axes(self, ndim):
        return sorted({a % ndim for a in self._axes})

    def input_shape_error(self, input_shape):
        ndim = len(input_shape)
        for a in self._axes:
            if a >= ndim or a < -ndim or a % ndim == 0:
                return f"axis {a} is out of bounds (or the batch axis) for an input of rank {ndim}"
        if any(input_shape[a] is None for a in self._norm_axes(ndim)):
            return f"the normalized axes {self._axes} must be known"
        if self.built and tuple(input_shape[a] for a in self._norm_axes(ndim)) != \
                self._weights[-1].shape:
            return (f"expected axes {self._axes} of the input to have shape "
                    f"{self._weights[-1].shape}, received input with shape "
                    f"{shape_str(input_shape)}")
        return None

    def _build(self, input_shape):
        shape = tuple(int(input_shape[a]) for a in self._norm_axes(len(input_shape)))
        rng = np.random.default_rng()
        made = []
        if self.scale:
            made.append(("gamma", self.gamma_initializer))
        if self.center:
            made.append(("beta", self.beta_initializer))
        made += self._stat_weights()
        self._weights = [init(shape, self.dtype, rng) for _, init in made]
        self._weight_names = [n for n, _ in made]

    def _stat_weights(self):
        return []

    def _parts(self, xp, ndim):
        """gamma, beta and the stats, each shaped to broadcast against the input."""
        ws = self._weights if xp is np else _xp.weights_on(self, xp)
        axes = self._norm_axes(ndim)
        shape = [1] * ndim
        for a, n in zip(axes, ws[0].shape if ws else ()):
            shape[a] = n
        named = dict(zip(self._weight_names, (w.reshape(shape) for w in ws)))
        return named.get("gamma"), named.get("beta"), named, axes

    def _norm_config(self):
        return {"epsilon": self.epsilon, "center": self.center, "scale": self.scale,
                "beta_initializer": initializers.serialize(self.beta_initializer),
                "gamma_initializer": initializers.serialize(self.gamma_initializer),
                "beta_regularizer": self.beta_regularizer,
                "gamma_regularizer": self.gamma_regularizer,
                "beta_constraint": self.beta_constraint,
                "gamma_constraint": self.gamma_constraint}


class BatchNormalization(_Normalization):
    """Inference batch normalization: ``(x - moving_mean) / sqrt(moving_variance + epsilon)
    * gamma + beta`` along ``axis``.  Weights (Keras's order): gamma (if ``scale``), beta
    (if ``center``), moving_mean, moving_variance; the last two are non-trainable.

    ``momentum`` and the renorm arguments only matter in training: kept in the config.
    ``training=True`` is refused (gpulstm does not update statistics).
    """

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones",
                 moving_mean_initializer="zeros", moving_variance_initializer="ones",
                 beta_regularizer=None, gamma_regularizer=None, beta_constraint=None,
                 gamma_constraint=None, renorm=False, renorm_clipping=None,
                 renorm_momentum=0.99, synchronized=False, fused=None,
                 virtual_batch_size=None, adjustment=None, **kwargs):
        super().__init__(**kwargs)
        if virtual_batch_size is not None or adjustment is not None:
            raise ValueError("gpulstm's BatchNormalization does not support "
                             "`virtual_batch_size` or `adjustment`. Received: "
                             f"virtual_batch_size={virtual_batch_size!r}, adjustment=...")
        if renorm:
            raise ValueError("gpulstm's BatchNormalization does not support renorm=True "
                             "(its extra statistics). Received: renorm=True")
        axes = _axes_list(axis)
        if len(axes) != 1:  # tf_keras may save a list; Keras 3 takes one int
            raise ValueError(f"Expected one `axis` for BatchNormalization. Received: axis={axis!r}")
        self._axes = axes
        self.axis = axes[0]
        self.momentum = float(momentum)
        self._norm_init(axis, epsilon, center, scale, beta_initializer, gamma_initializer,
                        beta_regularizer, gamma_regularizer, beta_constraint, gamma_constraint)
        self.moving_mean_initializer = initializers.get(moving_mean_initializer,
                                                        "moving_mean_initializer")
        self.moving_variance_initializer = initializers.get(moving_variance_initializer,
                                                            "moving_variance_initializer")
        self.renorm, self.renorm_clipping = False, renorm_clipping
        self.renorm_momentum, self.synchronized = float(renorm_momentum), bool(synchronized)

    def _stat_weights(self):
        return [("moving_mean", self.moving_mean_initializer),
                ("moving_variance", self.moving_variance_initializer)]

    @property
    def weight_trainable(self):
        """Which weights Keras trains: the moving statistics never."""
        return [n not in ("moving_mean", "moving_variance") for n in self._weight_names]

    def call(self, inputs, mask=None, training=None):
        if training and self.trainable:
            raise ValueError(f"Layer '{self.name}' (BatchNormalization) runs in inference mode "
                             "only: gpulstm does not compute batch statistics. Received: "
                             "training=True; call it with training=False (or None).")
        xp = _xp.array_module(inputs)
        x = xp.asarray(inputs, dtype=self.dtype)
        gamma, beta, w, _ = self._parts(xp, x.ndim)
        y = _scale_shift(x, w["moving_mean"], w["moving_variance"], gamma, beta,
                         self.epsilon, xp)
        return xp.asarray(y, dtype=self.dtype)

    def get_config(self):
        return {**self._base_config(), "axis": self.axis, "momentum": self.momentum,
                **self._norm_config(),
                "moving_mean_initializer": initializers.serialize(self.moving_mean_initializer),
                "moving_variance_initializer":
                    initializers.serialize(self.moving_variance_initializer),
                "synchronized": self.synchronized, "renorm": self.renorm,
                "renorm_clipping": self.renorm_clipping,
                "renorm_momentum": self.renorm_momentum}


class LayerNormalization(_Normalization):
    """``(x - mean) / sqrt(var + epsilon) * gamma + beta`` with the mean and variance of
    each sample over ``axis`` (default the last); gamma and beta have those axes' shape."""

    def __init__(self, axis=-1, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones", beta_regularizer=None,
                 gamma_regularizer=None, beta_constraint=None, gamma_constraint=None,
                 rms_scaling=False, **kwargs):
        super().__init__(**kwargs)
        if rms_scaling:
            raise ValueError("gpulstm's LayerNormalization does not support the deprecated "
                             "rms_scaling=True. Received: rms_scaling=True")
        self._axes = _axes_list(axis)
        self.axis = self._axes if isinstance(axis, (list, tuple)) else self._axes[0]
        self._norm_init(axis, epsilon, center, scale, beta_initializer, gamma_initializer,
                        beta_regularizer, gamma_regularizer, beta_constraint, gamma_constraint)

    def call(self, inputs, mask=None, training=None):
        xp = _xp.array_module(inputs)
        x = xp.asarray(inputs, dtype=self.dtype)
        gamma, beta, _, axes = self._parts(xp, x.ndim)
        axes = tuple(axes)
        mean = x.mean(axis=axes, keepdims=True)
        d = x - mean
        variance = (d * d).mean(axis=axes, keepdims=True)
        y = _scale_shift(x, mean, variance, gamma, beta, self.epsilon, xp)
        return xp.asarray(y, dtype=self.dtype)

    def get_config(self):
        axis = self.axis if isinstance(self.axis, int) else list(self.axis)
        return {**self._base_config(), "axis": axis, **self._norm_config(),
                "rms_scaling": False}
