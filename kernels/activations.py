"""Scalar activations shared by every backend.

Each function is a plain ``@numba.jit`` scalar function: the CPU kernels inline it,
and ``@cuda.jit`` kernels call the very same function on the device (numba compiles
a ``numba.jit`` function for whichever target calls it).  ``activate(code, x)`` is
the one switch both backends use, so a new activation is added here only, plus its
code in ``gpulstm.activations.CODES``.

Every branch keeps NaN as NaN (comparisons are written so NaN falls through), as
Keras/TensorFlow do.
"""
import math

import numba

from gpulstm.activations import CODES

_LINEAR = CODES["linear"]
_TANH = CODES["tanh"]
_SIGMOID = CODES["sigmoid"]
_HARD_SIGMOID_K3 = CODES["hard_sigmoid_k3"]
_HARD_SIGMOID_K2 = CODES["hard_sigmoid_k2"]
_RELU = CODES["relu"]
_SOFTSIGN = CODES["softsign"]
_SOFTPLUS = CODES["softplus"]
_ELU = CODES["elu"]
_SELU = CODES["selu"]
_SWISH = CODES["swish"]
_GELU = CODES["gelu"]
_EXPONENTIAL = CODES["exponential"]
_RELU6 = CODES["relu6"]
_HARD_SILU = CODES["hard_silu"]
_LEAKY_RELU = CODES["leaky_relu"]
_LOG_SIGMOID = CODES["log_sigmoid"]
_MISH = CODES["mish"]
_HARD_TANH = CODES["hard_tanh"]
_CELU = CODES["celu"]

_SELU_ALPHA = 1.6732632423543772
_SELU_SCALE = 1.0507009873554805
_INV_SQRT2 = 0.7071067811865476


@numba.jit(nopython=True, cache=True)
def sigmoid(x):
    # Two branches so exp never overflows into a wrong 0 * inf.
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


@numba.jit(nopython=True, cache=True)
def clip01(y):
    if y < 0.0:
        return 0.0
    if y > 1.0:
        return 1.0
    return y


@numba.jit(nopython=True, cache=True)
def softplus(x):
    # log(1 + exp(x)) without overflow for large x.
    if x > 0:
        return x + math.log1p(math.exp(-x))
    return math.log1p(math.exp(x))


@numba.jit(nopython=True, cache=True)
def activate(code, x):
    """Apply the activation with integer ``code`` (see ``CODES``) to scalar ``x``."""
    if code == _TANH:
        return math.tanh(x)
    if code == _SIGMOID:
        return sigmoid(x)
    if code == _LINEAR:
        return x
    if code == _HARD_SIGMOID_K3:
        return clip01(x / 6.0 + 0.5)
    if code == _HARD_SIGMOID_K2:
        return clip01(0.2 * x + 0.5)
    if code == _RELU:
        return 0.0 if x < 0.0 else x
    if code == _SOFTSIGN:
        return x / (1.0 + abs(x))
    if code == _SOFTPLUS:
        return softplus(x)
    if code == _ELU:
        return math.expm1(x) if x < 0.0 else x
    if code == _SELU:
        return _SELU_SCALE * (_SELU_ALPHA * math.expm1(x) if x < 0.0 else x)
    if code == _SWISH:
        return x * sigmoid(x)
    if code == _GELU:
        return 0.5 * x * (1.0 + math.erf(x * _INV_SQRT2))
    if code == _EXPONENTIAL:
        return math.exp(x)
    if code == _RELU6:
        if x < 0.0:
            return 0.0
        if x > 6.0:
            return 6.0
        return x
    if code == _HARD_SILU:
        return x * clip01(x / 6.0 + 0.5)
    if code == _LEAKY_RELU:
        return 0.2 * x if x < 0.0 else x
    if code == _LOG_SIGMOID:
        return -softplus(-x)
    if code == _MISH:
        return x * math.tanh(softplus(x))
    if code == _HARD_TANH:
        if x < -1.0:
            return -1.0
        if x > 1.0:
            return 1.0
        return x
    if code == _CELU:
        return math.expm1(x) if x < 0.0 else x
    return math.nan
