"""Whole-array activations for NumPy or CuPy arrays, keyed by Keras name.

The NumPy tier of the CPU backend (``cpu_numpy``) and the non-recurrent layers
(``gpulstm.layers._common`` re-exports ``XP_ACTIVATIONS``) compute with these.
Imports NumPy only; CuPy's special functions are imported when a CuPy array asks.
"""
import math

import numpy as np

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946
_np_erf = np.vectorize(math.erf, otypes=[np.float64])

# Each activation takes ``(x, xp)``: ``xp`` is the array module holding ``x`` (NumPy,
# or CuPy on the CUDA backend), so device activations never leave the device.


def _erf(x, xp):
    if xp is np:
        return _np_erf(x)
    import cupyx.scipy.special  # only ever reached with CuPy arrays

    return cupyx.scipy.special.erf(x)


def _sigmoid(x, xp):
    # exp of a non-positive number only, so nothing overflows.
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _softplus(x, xp):
    return xp.logaddexp(0.0, x)


def _elu(x, xp, alpha=1.0):
    return xp.where(x > 0, x, alpha * xp.expm1(xp.minimum(x, 0.0)))


def _softmax(x, xp):
    e = x - xp.max(x, axis=-1, keepdims=True)
    xp.exp(e, out=e)  # one temporary instead of three
    e /= xp.sum(e, axis=-1, keepdims=True)
    return e


def _log_softmax(x, xp):
    s = x - xp.max(x, axis=-1, keepdims=True)
    return s - xp.log(xp.sum(xp.exp(s), axis=-1, keepdims=True))


XP_ACTIVATIONS = {
    "linear": lambda x, xp: x,
    "tanh": lambda x, xp: xp.tanh(x),
    "sigmoid": _sigmoid,
    "hard_sigmoid_k3": lambda x, xp: xp.clip(x / 6.0 + 0.5, 0.0, 1.0),
    "hard_sigmoid_k2": lambda x, xp: xp.clip(0.2 * x + 0.5, 0.0, 1.0),
    "relu": lambda x, xp: xp.maximum(x, 0.0),
    "softsign": lambda x, xp: x / (1.0 + xp.abs(x)),
    "softplus": _softplus,
    "elu": _elu,
    "selu": lambda x, xp: _SELU_SCALE * _elu(x, xp, _SELU_ALPHA),
    "silu": lambda x, xp: x * _sigmoid(x, xp),
    "gelu": lambda x, xp: 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0), xp)),
    "exponential": lambda x, xp: xp.exp(x),
    "relu6": lambda x, xp: xp.clip(x, 0.0, 6.0),
    "hard_silu": lambda x, xp: x * xp.clip(x / 6.0 + 0.5, 0.0, 1.0),
    "leaky_relu": lambda x, xp: xp.where(x >= 0, x, 0.2 * x),
    "log_sigmoid": lambda x, xp: -_softplus(-x, xp),
    "mish": lambda x, xp: x * xp.tanh(_softplus(x, xp)),
    "hard_tanh": lambda x, xp: xp.clip(x, -1.0, 1.0),
    "celu": lambda x, xp: (xp.maximum(x, 0.0)
                           + xp.minimum(xp.expm1(xp.minimum(x, 0.0)), 0.0)),
    "softmax": _softmax,
    "log_softmax": _log_softmax,
}
