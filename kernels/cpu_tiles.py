"""Dot-product register tiles for the recurrent product, the paths without panels
(float64, and hosts without AVX2 + FMA: ``cpu.product_kernel`` "tiles4x4" / "tiles4x2").

``recur_tiles`` runs ``z += H @ RK`` as dot products against ``UT = RK.T`` packed
C-contiguous (G, U), in 4 batch rows x 4 gate columns register tiles (16
accumulators; 4 x 2 on AVX2, which has half the vector registers) over column blocks
sized so a UT slice stays in L1.  A single row (and the 1-3 rows left over by the
tiles) streams ``RK`` itself in a 4-row-unrolled axpy GEMV (``recur_axpy``): no
packing, and faster than dot tiles for one row.
"""
import numba
import numpy as np

from gpulstm.kernels import _cache  # noqa: F401  (first: before any cached kernel)
from gpulstm.kernels.cells import FASTMATH as _FAST
from gpulstm.kernels.cpu_micro import LEAF

_JIT = dict(cache=True, error_model="numpy", nogil=True)
_L1_FLOATS = 8192  # 32 KiB of float32
# Accumulators start from a float32 zero: float32 kernels stay float32 and float64
# kernels unify to float64.
_ZERO = np.float32(0.0)


@numba.njit(fastmath=_FAST, **LEAF)
def _tile4x4(UT, H, z, r, j, U):
    h0, h1, h2, h3 = H[r], H[r + 1], H[r + 2], H[r + 3]
    w0, w1, w2, w3 = UT[j], UT[j + 1], UT[j + 2], UT[j + 3]
    a00 = a01 = a02 = a03 = _ZERO
    a10 = a11 = a12 = a13 = _ZERO
    a20 = a21 = a22 = a23 = _ZERO
    a30 = a31 = a32 = a33 = _ZERO
    for k in range(U):
        x0, x1, x2, x3 = h0[k], h1[k], h2[k], h3[k]
        v0, v1, v2, v3 = w0[k], w1[k], w2[k], w3[k]
        a00 += x0 * v0
        a01 += x0 * v1
        a02 += x0 * v2
        a03 += x0 * v3
        a10 += x1 * v0
        a11 += x1 * v1
        a12 += x1 * v2
        a13 += x1 * v3
        a20 += x2 * v0
        a21 += x2 * v1
        a22 += x2 * v2
        a23 += x2 * v3
        a30 += x3 * v0
        a31 += x3 * v1
        a32 += x3 * v2
        a33 += x3 * v3
    z[r, j] += a00
    z[r, j + 1] += a01
    z[r, j + 2] += a02
    z[r, j + 3] += a03
    z[r + 1, j] += a10
    z[r + 1, j + 1] += a11
    z[r + 1, j + 2] += a12
    z[r + 1, j + 3] += a13
    z[r + 2, j] += a20
    z[r + 2, j + 1] += a21
    z[r + 2, j + 2] += a22
    z[r + 2, j + 3] += a23
    z[r + 3, j] += a30
    z[r + 3, j + 1] += a31
    z[r + 3, j + 2] += a32
    z[r + 3, j + 3] += a33


@numba.njit(fastmath=_FAST, **LEAF)
def _tile4x2(UT, H, z, r, j, U):
    # 8 accumulators + 6 operands fit AVX2's 16 vector registers (4 x 4 spills there)
    h0, h1, h2, h3 = H[r], H[r + 1], H[r + 2], H[r + 3]
    w0, w1 = UT[j], UT[j + 1]
    a00 = a01 = a10 = a11 = a20 = a21 = a30 = a31 = _ZERO
    for k in range(U):
        v0, v1 = w0[k], w1[k]
        x0, x1, x2, x3 = h0[k], h1[k], h2[k], h3[k]
        a00 += x0 * v0
        a01 += x0 * v1
        a10 += x1 * v0
        a11 += x1 * v1
        a20 += x2 * v0
        a21 += x2 * v1
        a30 += x3 * v0
        a31 += x3 * v1
    z[r, j] += a00
    z[r, j + 1] += a01
    z[r + 1, j] += a10
    z[r + 1, j + 1] += a11
    z[r + 2, j] += a20
    z[r + 2, j + 1] += a21
    z[r + 3, j] += a30
    z[r + 3, j + 1] += a31


@numba.njit(**LEAF)
def recur_tiles(UT, RK, H, z, nb, wide):
    """z[:nb] += H[:nb] @ RK, with UT = RK.T packed (G, U) C-contiguous.

    Rows in groups of 4 run register tiles on UT (``wide``: 4 x 4, 32 vector
    registers, AVX-512; else 4 x 2 for AVX2's 16) over column blocks; the 1-3
    rows left over stream RK with ``recur_axpy``.
    """
    G, U = UT.shape
    nb4 = nb - nb % 4
    # columns per block: the UT slice (cb, U) about fills a 32 KiB L1 (16..64, x 4)
    cb = max(16, min(64, (_L1_FLOATS // U) // 4 * 4))
    for j0 in range(0, G, cb):
        j1 = min(j0 + cb, G)  # G and the blocks are multiples of 4
        for r in range(0, nb4, 4):
            if wide:
                for j in range(j0, j1, 4):
                    _tile4x4(UT, H, z, r, j, U)
            else:
                for j in range(j0, j1, 2):
                    _tile4x2(UT, H, z, r, j, U)
    for r in range(nb4, nb):
        recur_axpy(RK, H[r], z[r])


@numba.njit(fastmath=_FAST, **LEAF)
def recur_axpy(RK, hr, zr):
    """zr += hr @ RK for one row, streaming RK (K, G) once (no packed copy needed).

    Four rows of RK per pass over zr: 4 FMAs per load/store of zr (a plain axpy is
    bound by those stores).
    """
    K, G = RK.shape
    K4 = K - K % 4
    for k in range(0, K4, 4):
        a0, a1, a2, a3 = hr[k], hr[k + 1], hr[k + 2], hr[k + 3]
        w0, w1, w2, w3 = RK[k], RK[k + 1], RK[k + 2], RK[k + 3]
        for j in range(G):
            zr[j] += a0 * w0[j] + a1 * w1[j] + a2 * w2[j] + a3 * w3[j]
    for k in range(K4, K):
        a0 = hr[k]
        w0 = RK[k]
        for j in range(G):
            zr[j] += a0 * w0[j]


@numba.njit(**_JIT)
def pack_transposed(a, out):
    """out (G, U) = a (U, G).T, in 32 x 32 blocks (numpy's strided copy is ~20x slower)."""
    U, G = a.shape
    for k0 in range(0, U, 32):
        k1 = min(k0 + 32, U)
        for j0 in range(0, G, 32):
            j1 = min(j0 + 32, G)
            for j in range(j0, j1):
                for k in range(k0, k1):
                    out[j, k] = a[k, j]
