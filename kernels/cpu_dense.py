"""A Dense layer's ``x @ kernel + bias`` (and softmax) on the panel kernels, float32.

A Dense on every step of a sequence (``Dense(93, activation="softmax")`` after a
decoder LSTM) is one (B * T, D) @ (D, units) product.  NumPy's OpenBLAS GEMM followed
by NumPy's softmax makes five passes over the result; here row blocks small enough
to stay in L2 each get the bias, the product on ``cpu_micro``'s register blocks
(panels packed once per set of weights) and, for softmax, the row-wise softmax while
the block is still in cache.  Threads claim row blocks from a shared counter
(``cpu_sync``), so a thread the OS does not run leaves its blocks to the others.

Float32 only (other dtypes, and activations other than softmax, stay with NumPy: the
caller applies them to the result).  The exponential is Cephes' ``expf`` (range
reduction by ln 2, a degree-6 polynomial, the power of two built from its bits): a
few ulp, and a loop LLVM vectorises (numba without SVML calls libm's scalar expf).
"""
import numba
import numpy as np
from llvmlite import ir
from numba import prange, types
from numba.extending import intrinsic

from gpulstm.kernels import _cache  # noqa: F401  (first: before any cached kernel)
from gpulstm.kernels import cpu_host, cpu_micro, cpu_sync
from gpulstm.kernels.cells import FASTMATH
from gpulstm.kernels.cpu_micro import LEAF
from gpulstm.kernels.cpu_rows import fill_rows

_JIT = dict(cache=True, error_model="numpy", nogil=True)
# Rows per block: with D up to a few hundred the block's inputs and outputs stay in
# one core's L2 while every panel passes over them.
BLOCK_ROWS = 128
# Below this many multiply-adds per call NumPy's GEMM (no packing, no threads) is kept.
MIN_WORK = 1 << 20

_F = np.float32
_LOG2E = _F(1.4426950408889634)
_LN2_HI = _F(0.693359375)
_LN2_LO = _F(-2.12194440e-4)
_EXP_LO = _F(-87.33654)  # below: exp underflows float32's normal range, 0 is returned
_P0, _P1, _P2 = _F(1.9875691500e-4), _F(1.3981999507e-3), _F(8.3334519073e-3)
_P3, _P4, _P5 = _F(4.1665795894e-2), _F(1.6666665459e-1), _F(5.0000001201e-1)
_ONE, _HALF, _ZERO = _F(1.0), _F(0.5), _F(0.0)


@intrinsic
def _float_from_bits(typingctx, bits):
    """The float32 whose bit pattern is the int32 ``bits``."""
    if bits != types.int32:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())

    return types.float32(types.int32), codegen


@numba.njit(fastmath=FASTMATH, inline="always", **LEAF)
def exp_nonpositive(x):
    """exp(x) in float32 for x <= 0 (softmax after the row maximum is subtracted);
    0 below -87.34, NaN stays NaN."""
    xc = _EXP_LO if x < _EXP_LO else x  # selects, not branches: the loop vectorises
    n = np.floor(xc * _LOG2E + _HALF)
    r = xc - n * _LN2_HI - n * _LN2_LO
    p = _P0 * r + _P1
    p = p * r + _P2
    p = p * r + _P3
    p = p * r + _P4
    p = p * r + _P5
    p = p * r * r + r + _ONE
    # 2^n from its exponent bits; n in [-126, 0] here (NaN gives garbage bits, but
    # p is NaN then, and so is the product)
    ni = np.int32(n) if n == n else np.int32(0)
    e = p * _float_from_bits(np.int32((ni + np.int32(127)) << np.int32(23)))
    return _ZERO if x < _EXP_LO else e


@numba.njit(fastmath=FASTMATH, **LEAF)
def softmax_rows(y):
    """y[r] = softmax(y[r]) in place for every row r: exp(y - max) / sum.  A NaN or +inf
    in a row makes the sum NaN, and so the whole row, as in Keras."""
    n = y.shape[1]
    for r in range(y.shape[0]):
        row = y[r]
        m = row[0]
        for j in range(n):
            m = row[j] if row[j] > m else m
        s = 0.0  # float64: long rows (large vocabularies) sum without drift
        for j in range(n):
            e = exp_nonpositive(row[j] - m)
            row[j] = e
            s += e
        inv = _F(1.0 / s)
        for j in range(n):
            row[j] *= inv


@numba.njit(**LEAF)
def dense_block(x, P, bias, y, r0, r1, softmax, wide):
    """y[r0:r1] = x[r0:r1] @ kernel + bias (P: the kernel's panels), then softmax."""
    yb = y[r0:r1]
    fill_rows(yb, bias)
    cpu_micro.gemm_panels(P, x[r0:r1], yb, r1 - r0, wide)
    if softmax:
        softmax_rows(yb)


@numba.njit(parallel=True, **_JIT)
def _dense_parallel(x, P, bias, y, softmax, wide, n):
    """``dense_block`` over every row block, blocks claimed by n threads."""
    rows = x.shape[0]
    nblk = -(-rows // BLOCK_ROWS)
    tickets = np.zeros(1, np.int64)
    for _ in prange(n):
        while True:
            i = cpu_sync.fetch_add(tickets, 0, 1)
            if i >= nblk:
                break
            r0 = i * BLOCK_ROWS
            dense_block(x, P, bias, y, r0, min(r0 + BLOCK_ROWS, rows), softmax, wide)


@numba.njit(**_JIT)
def _dense_serial(x, P, bias, y, softmax, wide):
    rows = x.shape[0]
    for r0 in range(0, rows, BLOCK_ROWS):
        dense_block(x, P, bias, y, r0, min(r0 + BLOCK_ROWS, rows), softmax, wide)


def prepare(kernel):
    """The kernel's panels (``cpu_micro.packed_panels``), made once per set of weights."""
    return cpu_micro.packed_panels(np.ascontiguousarray(kernel, np.float32))


def applies(x2, kernel):
    """Whether ``dense`` serves this call: float32, a panel kernel kind on this host,
    enough work to pay for it."""
    return (x2.dtype == np.float32 and kernel.dtype == np.float32
            and cpu_host.product_kernel() in cpu_host._PANELS
            and x2.shape[0] * x2.shape[1] * kernel.shape[1] >= MIN_WORK)


def dense(x2, P, bias, units, softmax):
    """``x2 @ kernel + bias`` (P: ``prepare(kernel)``, kernel (D, units); bias (units,)
    or None), softmax over the last axis when ``softmax``: a new (rows, units) float32
    array.  x2 (rows, D) float32."""
    from gpulstm.kernels import cpu

    x2 = np.ascontiguousarray(x2)
    b = np.zeros(0, np.float32) if bias is None else np.ascontiguousarray(bias, np.float32)
    y = np.empty((x2.shape[0], units), np.float32)
    wide = cpu_host.product_kernel() in cpu_host._WIDE
    n = min(cpu._threads(), -(-x2.shape[0] // BLOCK_ROWS))
    if n > 1:
        with cpu._parallel_region():
            _dense_parallel(x2, P, b, y, bool(softmax), wide, n)
    else:
        _dense_serial(x2, P, b, y, bool(softmax), wide)
    return y
