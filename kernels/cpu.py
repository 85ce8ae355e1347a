"""The numba ``@njit`` CPU backend.

``lstm_forward`` runs the whole time loop inside one compiled call (``cpu_fast``:
register-blocked panel GEMM per step (``cpu_micro``, float32: 16 lanes on AVX-512, 8
on AVX2 + FMA), register-tiled recurrent product elsewhere (and for float64), with a
SciPy BLAS GEMM per step for large row blocks on the 4 x 2 tiles where SciPy is
installed (``cpu_blas.dot``; SciPy is optional); vectorised gates), the input
projection either inside it (small problems) or up front.  Threads: large batches
split rows into blocks that threads claim (each row runs its whole sequence on its
own, no barrier per step); small batches share each step over unit chunks
(``cpu_split``, one exchange per step).

The activation is picked by an integer code at run time inside one compiled kernel
(one compile serves every activation pair).  User callables and training-mode
recurrent dropout run the plain reference loop (``cpu_plain``).
"""
import contextlib
import threading

import numba
import numpy as np

from gpulstm.kernels import _cache  # noqa: F401  (first: before any cached kernel)
from gpulstm.kernels import cpu_blas, cpu_chunks, cpu_driver, cpu_fast, cpu_micro, cpu_split, cpu_tiles
from gpulstm.kernels.cpu_host import (_PANELS, _WIDE, HOST_KERNEL, KERNEL_ENV,  # noqa: F401
                                      KERNELS, product_kernel)
from gpulstm.kernels.cpu_plain import forward_plain as _forward_plain

# cpu_fast.run_rows over row blocks that the threads claim (the loop every cell shares)
run_parallel = cpu_driver.parallel(cpu_fast.run_rows, "lstm_run_parallel")


class Prepared:
    """What ``prepare`` returns: packed copies of the weights, each made on first use.

    The panel kernels read [kernel; recurrent_kernel] cut into 16-column panels
    (``panels``); the tiled paths read ``recurrent_kernel.T`` (G, U) and, to project
    the input without BLAS, ``kernel.T`` (G, D), both C-contiguous.  Packing costs
    about as much as a few timesteps, so the layer keeps this object per set of
    weights.
    """

    __slots__ = ("kernel", "recurrent_kernel", "shape", "dtype", "_packed", "_packed_kernel",
                 "_panels", "_split")

    def __init__(self, kernel, recurrent_kernel):
        self.kernel = None if kernel is None else np.ascontiguousarray(kernel)
        self.recurrent_kernel = np.ascontiguousarray(recurrent_kernel)
        U, G = self.recurrent_kernel.shape
        self.shape = (G, U)
        self.dtype = self.recurrent_kernel.dtype
        self._packed = None
        self._packed_kernel = None
        self._panels = {}
        self._split = {}

    def split_panels(self, with_kernel, uc):
        """The panels in ``cpu_split``'s chunk column order (chunks of uc units)."""
        key = (with_kernel, uc)
        out = self._split.get(key)
        if out is None:
            cols = cpu_chunks.chunk_columns(self.shape[1], uc)[2]
            out = cpu_split.panels(self.kernel if with_kernel else None,
                                   self.recurrent_kernel, cols)
            self._split[key] = out  # a racing thread packs the same
        return out

    def panels(self, kernel=None):
        """[kernel; recurrent_kernel] (or recurrent_kernel alone) packed for the panel
        kernels (``cpu_micro``), computed once per form."""
        if kernel is not None and (self.kernel is None or self.kernel.shape != kernel.shape):
            return _panels(kernel, self.recurrent_kernel)
        key = kernel is not None
        out = self._panels.get(key)
        if out is None:
            out = _panels(self.kernel if key else None, self.recurrent_kernel)
            self._panels[key] = out  # a racing thread packs the same
        return out

    def packed(self):
        """``recurrent_kernel.T`` as a C-contiguous (G, U) array (computed once)."""
        if self._packed is None:
            self._packed = _pack(self.recurrent_kernel)  # a racing thread packs the same
        return self._packed

    def packed_kernel(self, kernel):
        """``kernel.T`` (G, D), computed once; ``kernel`` if this object holds none."""
        if self.kernel is None or self.kernel.shape != kernel.shape:
            return _pack(kernel)
        if self._packed_kernel is None:
            self._packed_kernel = _pack(self.kernel)
        return self._packed_kernel


def _pack(a):
    a = np.ascontiguousarray(a)
    packed = np.empty((a.shape[1], a.shape[0]), a.dtype)
    cpu_tiles.pack_transposed(a, packed)
    return packed


def _panels(kernel, rk):
    w = rk if kernel is None else np.concatenate((np.asarray(kernel, rk.dtype), rk))
    return cpu_micro.packed_panels(w)


def prepare(kernel, recurrent_kernel, bias=None):
    """A ``Prepared`` for these weights, to pass back as ``lstm_forward(..., prepared=)``."""
    return Prepared(kernel, recurrent_kernel)


def _row_bounds(B, n, tile=4):
    """n row blocks, interior bounds on multiples of the ``tile``-row micro-kernel."""
    # n <= B // tile: every block gets at least one tile; the last one also takes the
    # B % tile rows left over
    quads = B // tile
    sizes = [tile * (quads // n + (1 if i < quads % n else 0)) for i in range(n)]
    sizes[-1] += B % tile
    return np.cumsum([0] + sizes, dtype=np.int64)


def row_blocks(B, n, wide_panels):
    """The row blocks n threads claim: ROW_BLOCKS_PER_THREAD each, as far as B allows.

    On the 16-lane panels (``wide_panels``) a block holds 8 rows or more, the full
    micro-kernel height: B=16 on 2 threads took 3.40 ms in two blocks of 8 against
    4.14 in four of 4 ((16,100,64,256), Zen 5)."""
    tile = 8 if wide_panels else 4
    return _row_bounds(B, max(1, min(B // tile, n * ROW_BLOCKS_PER_THREAD)), tile)


def _use_blas(B, n, U):
    """Whether the recurrent product runs as one BLAS GEMM per step and row block."""
    return (BLAS_MIN_WORK is not None and (B // n) * U >= BLAS_MIN_WORK
            and cpu_blas.available())


def _threads():
    """numba's thread count for this thread (numba.get_num_threads without its ~3 us
    lock once the pool runs)."""
    par = numba.np.ufunc.parallel
    if getattr(par, "_is_initialized", False) and hasattr(par, "_get_num_threads"):
        return par._get_num_threads()
    return numba.get_num_threads()


_NO_LIMIT = contextlib.nullcontext()
_region_lock = threading.Lock()
_concurrent_ok = False  # set once the threading layer is known to allow it


@contextlib.contextmanager
def _parallel_region():
    """Around every ``parallel=True`` kernel call: numba's ``workqueue`` threading layer
    (the fallback where neither OpenMP nor TBB loads) aborts the process when two
    Python threads enter parallel regions at once, so there they take turns; under
    ``omp`` and ``tbb`` (thread-safe) calls run side by side."""
    global _concurrent_ok
    if _concurrent_ok:
        yield
        return
    with _region_lock:
        yield
        _concurrent_ok = numba.threading_layer() != "workqueue"


def lstm_forward(x, kernel, recurrent_kernel, bias, h0, c0, mask, *, activation,
                 recurrent_activation, go_backwards=False, return_sequences=False,
                 zero_output_for_mask=False, x_proj=None, rec_masks=None, prepared=None):
    """CPU LSTM forward pass; see ``gpulstm.dispatch`` for the contract.

    ``prepared`` (optional) is ``prepare(kernel, recurrent_kernel, bias)`` kept by the
    caller for these exact weights.  The per-step product kernel is
    ``product_kernel()`` (the host's, or GPULSTM_CPU_KERNEL).  Paths, by size: float32
    on the panel kinds (panels16 on AVX-512, panels8 on AVX2 + FMA) runs [x_t | h_tm1]
    @ [kernel; recurrent_kernel] per step on the register-blocked panel kernels of
    ``cpu_micro`` (no BLAS; for a single row over several steps and for inputs wider
    than PROJECT_FIRST_RATIO * U, x @ kernel up front on the same panels, then h_tm1 @
    recurrent_kernel per step).  Otherwise (float64,
    or the tile kinds): B == 1 streams ``recurrent_kernel`` itself per step (axpy GEMV,
    no packing); B >= 2 runs register tiles (4 x 4 or 4 x 2) on the packed copy; on
    tiles4x2, (rows per thread) x U >= BLAS_MIN_WORK runs each row block's product
    through SciPy's BLAS (where SciPy is installed).  Threads: from PARALLEL_MIN_B rows
    and ROW_SPLIT_MIN_WORK multiply-adds, row blocks claimed by the threads
    (``run_parallel``: ``cpu_driver``'s row-block loop over ``cpu_fast.run_rows``); below PARALLEL_MIN_B rows with a step of at least
    SPLIT_MIN_WORK, the threads share each step over unit chunks (``cpu_split``,
    panel kinds).  The input projection runs inside the loop for single steps and
    small problems (see FUSE_MAX_MACS), else as one NumPy GEMM (or, with
    PROJECT_ON_TILES, up front on the kernel's own tiles).  Custom callables and
    recurrent dropout masks run the plain reference loop.  ``last_path()`` names the
    path taken.
    """
    dtype = recurrent_kernel.dtype
    act, ract = activation, recurrent_activation
    if rec_masks is not None or callable(act) or callable(ract):
        _last.path = "reference loop (custom activation or recurrent dropout)"
        return _forward_plain(x, kernel, recurrent_kernel, bias, h0, c0, mask, act, ract,
                              go_backwards, return_sequences, zero_output_for_mask,
                              x_proj, rec_masks)
    char = dtype.char
    rk = recurrent_kernel if recurrent_kernel.flags.c_contiguous else \
        np.ascontiguousarray(recurrent_kernel)
    G = rk.shape[1]
    U = G // 4
    if prepared is not None and (not isinstance(prepared, Prepared) or
                                 prepared.shape != (G, U) or prepared.dtype != dtype):
        raise ValueError(
            f"Expected `prepared` to be prepare(kernel, recurrent_kernel, bias) of shape "
            f"{(G, U)} and dtype {dtype}. Received: prepared={prepared!r} with shape "
            f"{getattr(prepared, 'shape', None)} and dtype {getattr(prepared, 'dtype', None)}. "
            "Call prepare() again after changing weights.")
    WT = _NO_PACK[char]
    B = x.shape[0] if x_proj is None else x_proj.shape[0]
    n = _threads() if B >= PARALLEL_MIN_B and _work(x, x_proj, U) >= ROW_SPLIT_MIN_WORK else 1
    kind = product_kernel()
    wide = kind in _WIDE
    panel = kind in _PANELS and char == "f" and (B >= 2 or PANELS_B1)
    nsplit = _split_threads(B, x, x_proj, U) if panel else 1
    if nsplit > 1:
        uc = _split_units(U, nsplit)
        get = None
        if prepared is not None and (x_proj is not None or prepared.kernel is not None and
                                     prepared.kernel.shape == np.shape(kernel)):
            get = prepared.split_panels
        with _parallel_region():
            _last.path = f"{kind}: {nsplit} threads share each step ({-(-U // uc)} chunks)"
            return cpu_split.forward(
                x, None if kernel is None else np.asarray(kernel, dtype), rk, bias, h0, c0, mask,
                act, ract, go_backwards, return_sequences, zero_output_for_mask, x_proj,
                nsplit, uc, wide, get)
    P = _NO_PANELS[char]
    pfirst = False
    if x_proj is None:
        B, T, D = x.shape
        bias = _EMPTY[char] if bias is None else np.ascontiguousarray(bias, dtype=dtype)
        # x is (B * T, D), row b * T + t; W the kernel (D, G)
        x = np.ascontiguousarray(x, dtype=dtype).reshape(B * T, D)
        W = np.ascontiguousarray(kernel, dtype=dtype)
        x_proj = _NO_X[char]
        fuse = (B * T <= FUSE_MAX_ROWS or (B * T * D * G <= FUSE_MAX_MACS and D * G <= 65536)
                or (n > 1 and D * G <= 131072))
        if panel:
            # P packs [kernel; recurrent_kernel] (D + U, G): [x_t | h_tm1] @ P per step,
            # or, for inputs much wider than U and for a single row over several
            # steps, x @ kernel up front on P's first D rows (PROJECT_FIRST_RATIO; at
            # B = 1, U = 512, D = 256 the panels project 1.4x faster than NumPy's
            # OpenBLAS, one thread, Zen 5)
            P = prepared.panels(W) if prepared is not None else _panels(W, rk)
            W = _NO_PACK[char]
            pfirst = D > PROJECT_FIRST_RATIO * U if B > 1 else T > 1
        elif kind == "tiles4x2" and _use_blas(B, n, U):
            # W is (D + U, G) = [kernel; recurrent_kernel]: x_t and h_tm1 projected
            # by one GEMM per step (see cpu_fast.run_rows)
            W = np.concatenate((W, rk))
        elif fuse:
            pass  # projected step by step inside the loop
        elif PROJECT_ON_TILES or n > 1:
            # projected up front by the kernel's own tiles (see cpu_fast.run_rows)
            WT = (prepared.packed_kernel(W) if prepared is not None else _pack(W))
        else:
            # x_proj is (B, T, G): one BLAS GEMM for every timestep; the bias is added
            # inside the loop (saves a pass over x_proj)
            x_proj = (x @ W).reshape(B, T, G)
            x, W = _NO_PACK[char], _NO_PACK[char]
    else:
        B, T = x_proj.shape[:2]
        bias = _EMPTY[char]
        x, W = _NO_PACK[char], _NO_PACK[char]
        if panel:
            P = prepared.panels() if prepared is not None else _panels(None, rk)
    if x_proj.dtype != dtype or not x_proj.flags.c_contiguous:
        x_proj = np.ascontiguousarray(x_proj, dtype=dtype)
    h = np.array(h0, dtype=dtype, order="C", copy=True)
    c = np.array(c0, dtype=dtype, order="C", copy=True)
    # out is (B, T, U), or (B, 1, U) for the last output: one rank keeps one kernel
    out = np.empty((B, T if return_sequences else 1, U), dtype=dtype)
    mask_u8 = (np.ascontiguousarray(mask, dtype=np.uint8) if mask is not None
               else _NO_MASK)
    blas = not panel and kind == "tiles4x2" and _use_blas(B, n, U)
    if B == 1 or blas or panel:
        ut = _NO_PACK[char]  # GEMV / BLAS over recurrent_kernel, or the panels: no UT
    else:
        ut = prepared.packed() if prepared is not None else _pack(rk)
    args = (x, W, WT, x_proj, bias, ut, P, rk, h, c, mask_u8, act, ract, char == "f", wide,
            blas, pfirst, bool(go_backwards), bool(return_sequences), bool(zero_output_for_mask),
            out, T)
    with cpu_blas.limit(1) if blas else _NO_LIMIT:
        # each row block calls a 1-thread BLAS (BLAS threads would fight the numba ones)
        product = kind if panel or not blas else "tiles4x2 + BLAS"
        proj = ("stacked [x|h] per step" if P.shape[1] > U and not pfirst else
                "x projected up front" if pfirst or x_proj.shape[0] or WT.shape[0] else
                "x projected per step")
        if n > 1:
            bounds = row_blocks(B, n, panel and wide)
            _last.path = f"{product}, {proj}: {len(bounds) - 1} row blocks on {n} threads"
            with _parallel_region():
                run_parallel(args, bounds, n, np.zeros(1, np.int64))
        else:
            _last.path = f"{product}, {proj}: one thread"
            cpu_fast.run_rows(*args, 0, B)
    return (out if return_sequences else out[:, 0]), h, c


_last = threading.local()


def last_path():
    """The kernel path this thread's last ``lstm_forward`` call took, in words (or None)."""
    return getattr(_last, "path", None)


# Project inside the loop for single steps and for small problems whose kernel (D, G)
# stays in L2: same work, no BLAS call.  A 2-thread OpenBLAS call stalls on a busy
# 2-core machine (11.8 vs 0.9 ms median at (1, 100, 32, 128)); ~5% slower than the
# GEMM on an idle core.
# On the tile path with several threads (row blocks in parallel) no BLAS is called:
# OpenBLAS's worker threads keep spinning after a GEMM and take the core the second
# row block needs (B=8: 2 threads no faster than 1).  (The BLAS path runs SciPy's
# BLAS on one thread per block instead.)  The projection then runs per step when
# the kernel fits L2 (D * G <= 128 Ki floats), else up front on the tiles.
# PROJECT_ON_TILES does the latter with one thread too; off because there it is
# 1.3-2x slower than OpenBLAS at D <= 64 (few products per horizontal sum).
PROJECT_ON_TILES = False
FUSE_MAX_ROWS = 16
FUSE_MAX_MACS = 1 << 23
PARALLEL_MIN_B = 16
# ... and the call does at least ROW_SPLIT_MIN_WORK multiply-adds (B * T * 4U * (D + U)):
# below that a second thread gains less than waking it costs, and on a busy machine
# it may wait a whole time slice for a descheduled thread.
ROW_SPLIT_MIN_WORK = 1 << 23


def _work(x, x_proj, U):
    """Multiply-adds of one call: B * T * 4U * (D + U)."""
    B, T = (x.shape[:2] if x_proj is None else x_proj.shape[:2])
    D = x.shape[2] if x_proj is None else 0
    return B * T * 4 * U * (D + U)


# Row blocks per thread on that path (claimed dynamically: a busy core delays at most
# one block).  Fewer, larger blocks read the weights fewer times per step.
ROW_BLOCKS_PER_THREAD = 2
# Below PARALLEL_MIN_B rows, with more than one thread, the threads share each step
# (cpu_split: unit chunks claimed per step) once a step's product is large enough to
# pay for one exchange per step: B * U * (D + U) >= SPLIT_MIN_WORK per step.
SPLIT_MIN_WORK = 1 << 16
# One chunk a thread (a descheduled thread's chunk is stolen whole).  2 threads, ms,
# min / median of 60 interleaved, 1 / 2 chunks a thread, Zen 5: LSTM (8,100,64,256)
# 1.79 / 1.92 vs 1.83 / 1.99, (1,100,256,512) 3.56 / 3.82 vs 3.74 / 4.00; GRU
# (8,100,64,256) 1.33 / 1.48 vs 1.39 / 1.54; an exchange alone (U = 32) costs ~0.5 us
# a step with one chunk a thread, ~1.1 us with two.
SPLIT_CHUNKS_PER_THREAD = 1


def _split_threads(B, x, x_proj, U):
    """Threads that share each step of this call (1: the serial path)."""
    if B >= PARALLEL_MIN_B:
        return 1
    T = x.shape[1] if x_proj is None else x_proj.shape[1]
    D = x.shape[2] if x_proj is None else 0
    if T < 2 or B * U * (D + U) < SPLIT_MIN_WORK:
        return 1
    return _threads()


def _split_units(U, n):
    """Units per chunk: SPLIT_CHUNKS_PER_THREAD chunks a thread, a multiple of 4."""
    per = -(-U // (n * SPLIT_CHUNKS_PER_THREAD))
    return max(4, -(-per // 4) * 4)


# From (rows per thread) x U >= BLAS_MIN_WORK the 4 x 2 tile path runs the recurrent
# product and the input projection through SciPy's BLAS (np.dot inside the compiled
# loop: one GEMM [x_t | h_tm1] @ [kernel; recurrent_kernel] per step and row block,
# each block's BLAS on 1 thread) instead of register tiles.  Measured on AVX2 (2-core
# Zen 3; ms per call, tiles / BLAS, T=100 at U <= 256, 50 at U=512; rows per thread
# x U in brackets), 1 thread: U=256 B=24 42.9 / 50.2 [6144], B=32 45.8 / 55.8 [8192],
# B=48 62.5 / 61.9 [12288], B=64 120 / 88 [16384]; U=512 B=16 54.7 / 78.5 [8192], B=24
# 86.1 / 88.6 [12288], B=32 122 / 97.3, B=256 907 / 585; U=128 B=96 31.8 / 26.1
# [12288].  2 threads: U=256 B=32 29.2 / 42.9 [4096], B=48 50.1 / 51.0 [6144], B=64
# 65.5 / 62.1 [8192]; U=512 B=32 72.6 / 93.3 [8192], B=256 585 / 344.
BLAS_MIN_WORK = 12288
# B == 1 runs the panels too (PANELS_B1, one row x 64 columns): 5-20% under the axpy
# GEMV on AVX2, (1, 1000, 16, 64) to (1, 100, 256, 512).
PANELS_B1 = True
# With D > PROJECT_FIRST_RATIO * U (B >= 2) the panels project x @ kernel up front
# (row blocks that stay in L2) instead of streaming the kernel every step.  One
# thread, ms, stacked per step / up front: (2, 100, 1024, 64) 2.9-3.2 / 1.6;
# (8, 100, 300, 64) 2.3-2.7 / 2.2-2.5; (16, 100, 200, 64) 4.35 / 4.13; below the
# ratio stacked is as fast or faster: (32, 50, 300, 128) 10.2-11.7 / 11.9-13.2.
# A single row (B == 1, T > 1) always projects up front: the step then streams only
# RK's panels.  One thread, ms (min of 21 interleaved), stacked / up front: (1, 100,
# 32, 128) 0.559 / 0.511; (1, 1000, 16, 64) 1.62 / 1.52; (1, 100, 128, 128) 0.86 /
# 0.61; (1, 50, 32, 256) 1.03 / 1.03.  T == 1 (streaming) stays stacked (one call).
PROJECT_FIRST_RATIO = 3
_NO_MASK = np.zeros((0, 0), np.uint8)
_EMPTY = {t: np.zeros(0, t) for t in "fd"}
_NO_PACK = {t: np.zeros((0, 0), t) for t in "fd"}
_NO_X = {t: np.zeros((0, 0, 0), t) for t in "fd"}
_NO_PANELS = _NO_X
