"""Scalar activations shared by every backend.

Each function is a plain ``@numba.jit`` scalar function: the CPU kernels inline it,
and ``@cuda.jit`` kernels call the very same function on the device (numba compiles
a ``numba.jit`` function for whichever target calls it).  ``activate(code, x)`` is
the one switch both backends use, so a new activation is added here only, plus its
code in ``gpulstm.kernels.codes.CODES``.

Every branch keeps NaN as NaN (comparisons are written so NaN falls through), as
Keras/TensorFlow do.

The functions are written once, in ``_build(ft)``, with every constant of type ``ft``:
``activate`` / ``sigmoid`` / ... (``ft = float``) compute in float64 as the CPU
kernels always have, and ``activate_f32`` (``ft = numpy.float32``) keeps float32 in
float32, so the float32 CUDA kernels avoid the slow fp64 exp / division sequences.
"""
import math

import numba
import numpy as np

from gpulstm.kernels.codes import CODES
from gpulstm.kernels import _cache  # noqa: F401  (first: before any cached kernel)

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



def _build(ft):
    """``(sigmoid, clip01, softplus, activate)`` with every constant of type ``ft``."""
    ZERO, HALF, ONE, SIX = ft(0.0), ft(0.5), ft(1.0), ft(6.0)
    LEAK = ft(0.2)  # hard_sigmoid (Keras 2) slope and leaky_relu slope
    SELU_ALPHA = ft(1.6732632423543772)
    SELU_SCALE = ft(1.0507009873554805)
    INV_SQRT2 = ft(0.7071067811865476)
    NAN = ft(math.nan)

    @numba.jit(nopython=True, cache=True)
    def sigmoid(x):
        # Two branches so exp never overflows into a wrong 0 * inf.
        if x >= 0:
            return ONE / (ONE + math.exp(-x))
        e = math.exp(x)
        return e / (ONE + e)

    @numba.jit(nopython=True, cache=True)
    def clip01(y):
        if y < ZERO:
            return ZERO
        if y > ONE:
            return ONE
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
            return clip01(x / SIX + HALF)
        if code == _HARD_SIGMOID_K2:
            return clip01(LEAK * x + HALF)
        if code == _RELU:
            return ZERO if x < ZERO else x
        if code == _SOFTSIGN:
            return x / (ONE + abs(x))
        if code == _SOFTPLUS:
            return softplus(x)
        if code == _ELU:
            return math.expm1(x) if x < ZERO else x
        if code == _SELU:
            return SELU_SCALE * (SELU_ALPHA * math.expm1(x) if x < ZERO else x)
        if code == _SWISH:
            return x * sigmoid(x)
        if code == _GELU:
            return HALF * x * (ONE + math.erf(x * INV_SQRT2))
        if code == _EXPONENTIAL:
            return math.exp(x)
        if code == _RELU6:
            if x < ZERO:
                return ZERO
            if x > SIX:
                return SIX
            return x
        if code == _HARD_SILU:
            return x * clip01(x / SIX + HALF)
        if code == _LEAKY_RELU:
            return LEAK * x if x < ZERO else x
        if code == _LOG_SIGMOID:
            return -softplus(-x)
        if code == _MISH:
            return x * math.tanh(softplus(x))
        if code == _HARD_TANH:
            if x < -ONE:
                return -ONE
            if x > ONE:
                return ONE
            return x
        if code == _CELU:
            return math.expm1(x) if x < ZERO else x
        return NAN

    return sigmoid, clip01, softplus, activate


# float64 (Python float constants): the CPU kernels' functions, unchanged numerics
sigmoid, clip01, softplus, activate = _build(float)
# float32 in, float32 out (float32 constants): the float32 CUDA kernels
sigmoid_f32, clip01_f32, softplus_f32, activate_f32 = _build(np.float32)
