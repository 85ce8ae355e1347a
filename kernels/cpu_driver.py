"""The recurrence driver of the one-state cells (GRU, SimpleRNN): what does not care
which cell runs.

A cell kernel module supplies one compiled ``run_rows(*args, b0, b1)`` that runs rows
[b0, b1) through the whole sequence (its own gate update per step); this module gives it

* ``parallel(run_rows, name)``: the ``parallel=True`` loop in which n threads claim row
  blocks [bounds[i], bounds[i + 1]) (a ticket counter: a descheduled thread holds up at
  most its current block), compiled and cached once per cell;
* ``run(run_rows, run_parallel, args, B, macs, wide)``: one thread, or the row blocks on
  numba's threads when the call is large enough (the LSTM's thresholds and row blocks of
  ``cpu``);
* ``project``: ``x[rows] @ kernel + bias`` for every step up front, and ``product``, the
  per-step ``z += A @ W`` on the ``cpu_micro`` panels or ``cpu_tiles``' row axpy, and
  the per-row copies and outputs of a step are
  ``cpu_rows``' ``emit_step`` / ``emit_last`` (Keras's masked-step rule);
* ``act``: one value through an activation code, float32 tanh / sigmoid on ``cpu_fast``'s
  rational tanh.
"""
import types

import numba
import numpy as np
from numba import prange

from gpulstm.kernels.codes import CODES
from gpulstm.kernels import _cache  # noqa: F401  (first: before any cached kernel)
from gpulstm.kernels import cpu_host, cpu_micro, cpu_sync
from gpulstm.kernels.activations import activate
from gpulstm.kernels.cpu_fast import _FAST, _tanh_f32
from gpulstm.kernels.cpu_rows import fill_rows
from gpulstm.kernels.cpu_tiles import recur_axpy

_JIT = dict(cache=True, error_model="numpy", nogil=True)
LEAF = cpu_micro.LEAF  # step-level functions: no reference counting (see cpu_micro)
_TANH = CODES["tanh"]
_SIGMOID = CODES["sigmoid"]
_HALF = np.float32(0.5)
_L2_FLOATS = 65536  # rows of x projected per block: the x block stays in L2


@numba.njit(fastmath=_FAST, **_JIT)
def act(code, v, fast):
    """code(v) for one value: rational tanh / sigmoid (``0.5 tanh(v / 2) + 0.5``) when
    ``fast`` (float32), else the exact shared scalar switch ``activate``."""
    if fast and code == _TANH:
        return _tanh_f32(v)
    if fast and code == _SIGMOID:
        return _HALF * _tanh_f32(_HALF * v) + _HALF
    return activate(code, v)


@numba.njit(**LEAF)
def product(P, W, A, z, nb, panel, wide, rev=False):
    """z[:nb] += A[:nb] @ W: on W's panels P when ``panel`` (``rev``: last panels
    first, alternated step by step: see ``gemm_panels``), else row by row."""
    if panel:
        cpu_micro.gemm_panels(P, A, z, nb, wide, rev)
    else:
        for r in range(nb):
            recur_axpy(W, A[r], z[r])


@numba.njit(**_JIT)
def project(x, PK, K, b_in, b0, b1, T, panel, wide):
    """(b1 - b0, T, G) = x[rows b0..b1] @ K + b_in, every step up front.

    x (B * T, D) (row b * T + t); K (D, G), PK its panels (when ``panel``); b_in (G,)
    or (0,)."""
    nb = b1 - b0
    G = K.shape[1]
    xs = np.empty((nb * T, G), K.dtype)
    # the bias first (or zeros): the product accumulates onto it (one pass, not two)
    fill_rows(xs, b_in)
    xr = x[b0 * T:b1 * T]
    step = max(4, (_L2_FLOATS // max(1, x.shape[1])) // 4 * 4)
    for r0 in range(0, nb * T, step):
        r1 = min(r0 + step, nb * T)
        product(PK, K, xr[r0:r1], xs[r0:r1], r1 - r0, panel, wide)
    return xs.reshape((nb, T, G))


def _blocks(args, bounds, n, ticket):
    """``run_rows(*args, b0, b1)`` over the row blocks, n threads claiming them in turn
    (template: ``parallel`` binds ``run_rows`` per cell)."""
    nblk = bounds.shape[0] - 1
    for _ in prange(n):
        while True:
            i = cpu_sync.fetch_add(ticket, 0, 1)
            if i >= nblk:
                break
            run_rows(*args, bounds[i], bounds[i + 1])  # noqa: F821  (bound per cell)


def parallel(run_rows, name):
    """The row-block loop of ``_blocks`` over this cell's ``run_rows``, as its own cached
    ``parallel=True`` kernel called ``name`` (a distinct cache entry per cell: numba's
    cache keys a function on its module and name, and cannot key one that takes a
    function as an argument)."""
    glb = dict(_blocks.__globals__, run_rows=run_rows)
    fn = types.FunctionType(_blocks.__code__, glb, name)
    fn.__qualname__ = name
    fn.__doc__ = _blocks.__doc__
    return numba.njit(parallel=True, **_JIT)(fn)


# -- Python side ----------------------------------------------------------------------
NO_MASK = np.zeros((0, 0), np.uint8)
NO_PANELS = {t: np.zeros((0, 0, 0), t) for t in "fd"}
EMPTY = {t: np.zeros(0, t) for t in "fd"}


def kind(dtype_char):
    """``(panel, wide)``: whether this call's products run on the panels (float32 under
    a ``panels*`` kernel kind, GPULSTM_CPU_KERNEL or the host's) and whether that kind
    is 16 lanes wide."""
    name = cpu_host.product_kernel()
    return name in cpu_host._PANELS and dtype_char == "f", name in cpu_host._WIDE


def panels(w, panel):
    """``w``'s panels for ``cpu_micro.gemm_panels`` when ``panel``, else an empty stand-in."""
    return cpu_micro.packed_panels(w) if panel else NO_PANELS[w.dtype.char]


def buffers(x, h0, mask, U, dtype, return_sequences):
    """``(x2, h, m, out)`` for ``run_rows``: x as (B * T, D) rows, h a copy of h0 (the
    final state lands there), the mask as uint8 (or ``NO_MASK``), the output buffer."""
    B, T, D = x.shape
    h = np.array(h0, dtype=dtype, order="C", copy=True)
    out = np.empty((B, T if return_sequences else 1, U), dtype=dtype)
    m = NO_MASK if mask is None else np.ascontiguousarray(mask, dtype=np.uint8)
    return np.ascontiguousarray(x, dtype).reshape(B * T, D), h, m, out


def run(run_rows, run_parallel, args, B, macs, wide_panels):
    """``run_rows(*args, 0, B)`` on one thread, or ``run_parallel(args, ...)`` over row
    blocks when the call is large enough: ``cpu.PARALLEL_MIN_B`` rows and
    ``cpu.ROW_SPLIT_MIN_WORK`` multiply-adds (``macs``)."""
    from gpulstm.kernels import cpu

    n = 1
    if B >= cpu.PARALLEL_MIN_B and macs >= cpu.ROW_SPLIT_MIN_WORK:
        n = cpu._threads()
    if n > 1:
        bounds = cpu.row_blocks(B, n, wide_panels)
        with cpu._parallel_region():
            run_parallel(args, bounds, n, np.zeros(1, np.int64))
    else:
        run_rows(*args, 0, B)
