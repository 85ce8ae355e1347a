"""Time the per-step recurrent product ``z += h @ U`` on the CPU product kernels (manual).

Compares, one thread, float32, best of N repetitions (interleaved):
``panels16`` / ``panels8`` (kernels/cpu_micro.py, the IR micro-kernels, 16 / 8 lanes), ``tiles`` (the 4 x 2 or
4 x 4 dot-product tiles of kernels/cpu_tiles.py), ``loop`` (the same outer-product
loop written in plain numba: LLVM vectorises it as reductions over k or not at
all, which is why cpu_micro is written in IR) and ``numpy`` (OpenBLAS SGEMM).
Every variant is checked against float64 first.

Usage::

    python scripts/micro_sweep.py [--sizes 8x256 64x256 128x512] [--reps 9]
"""
import argparse
import time

import numba
import numpy as np

from gpulstm.kernels import cpu, cpu_micro, cpu_tiles

_FAST = {"nsz", "arcp", "contract", "afn", "reassoc"}


@numba.njit(fastmath=_FAST)
def _loop(RK, H, z, nb):
    # rows x 16 columns of accumulators in z, k outer: what cpu_micro does, in Python
    K, G = RK.shape
    for j0 in range(0, G, 16):
        for r in range(nb):
            zr = z[r, j0:j0 + 16]
            hr = H[r]
            for k in range(K):
                w = RK[k, j0:j0 + 16]
                x = hr[k]
                for c in range(16):
                    zr[c] += x * w[c]


@numba.njit
def _rep_panels(P, H, z, n, wide):
    for _ in range(n):
        cpu_micro.gemm_panels(P, H, z, H.shape[0], wide)


@numba.njit
def _rep_tiles(UT, RK, H, z, n, wide):
    for _ in range(n):
        cpu_tiles.recur_tiles(UT, RK, H, z, H.shape[0], wide)


@numba.njit
def _rep_loop(RK, H, z, n):
    for _ in range(n):
        _loop(RK, H, z, H.shape[0])


def _rep_numpy(RK, H, z, n):
    for _ in range(n):
        z += H @ RK


def sweep(B, U, reps, inner=20):
    rng = np.random.default_rng(0)
    G = 4 * U
    RK = rng.standard_normal((U, G)).astype(np.float32)
    H = rng.standard_normal((B, U)).astype(np.float32)
    ref = H.astype(np.float64) @ RK
    P = cpu_micro.packed_panels(RK)
    UT = np.ascontiguousarray(RK.T)
    runs = {
        "panels16": lambda z, n: _rep_panels(P, H, z, n, True),
        "panels8": lambda z, n: _rep_panels(P, H, z, n, False),
        "tiles": lambda z, n: _rep_tiles(UT, RK, H, z, n, cpu.HOST_KERNEL in ("panels16", "tiles4x4")),
        "loop": lambda z, n: _rep_loop(RK, H, z, n),
        "numpy": lambda z, n: _rep_numpy(RK, H, z, n),
    }
    tol = 1e-5 * max(1.0, float(np.abs(ref).max()))
    for name, run in runs.items():
        z = np.zeros((B, G), np.float32)
        run(z, 1)
        err = float(np.abs(z - ref).max())
        if err > tol:
            raise AssertionError(f"{name}: max error {err:.2e} > {tol:.2e}")
    best = {}
    for _ in range(reps):
        for name, run in runs.items():
            z = np.zeros((B, G), np.float32)
            t0 = time.perf_counter()
            run(z, inner)
            dt = (time.perf_counter() - t0) / inner
            best[name] = min(best.get(name, np.inf), dt)
    flops = 2.0 * B * U * G
    return {name: (t * 1e6, flops / t / 1e9) for name, t in best.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", default=["8x256", "64x256", "128x512", "4x128"])
    ap.add_argument("--reps", type=int, default=9)
    args = ap.parse_args()
    numba.set_num_threads(1)
    try:
        from threadpoolctl import threadpool_limits
        limiter = threadpool_limits(1)
    except ImportError:  # numpy's BLAS then uses its default thread count
        limiter = None
    print(f"{'B x U':>10} " + " ".join(f"{n:>18}" for n in ("panels16", "panels8", "tiles", "loop", "numpy")))
    for size in args.sizes:
        B, U = (int(v) for v in size.split("x"))
        res = sweep(B, U, args.reps)
        cells = " ".join(f"{res[n][0]:8.1f} us {res[n][1]:5.1f} GF" for n in
                         ("panels16", "panels8", "tiles", "loop", "numpy"))
        print(f"{size:>10} {cells}")
    if limiter is not None:
        limiter.restore_original_limits()


if __name__ == "__main__":
    main()
