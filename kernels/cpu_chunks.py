"""The column layout of step sharing (``cpu_split``): unit chunks side by side.

The columns of [kernel; recurrent_kernel] (and of x_proj and the bias) are permuted so
chunk k's gate columns are contiguous, ``[i | f | c | o]`` (the GRU's ``[z | r | h]``)
of its ``ul`` units each, zero-padded to ``CW`` columns (a multiple of the 16-column
panel), so a cell's gate update runs on a chunk exactly as on a whole row.
"""
import functools

import numpy as np

from gpulstm.kernels.cpu_micro import NR


@functools.lru_cache(maxsize=256)
def chunk_columns(U, uc, ngates=4):
    """(nch, CW, cols): chunk count, padded chunk width and, for every permuted column,
    its column in Keras's gate layout ((i, f, c, o), or the GRU's (z, r, h) with
    ``ngates=3``), or -1 for padding.  Cached per layout (cols is read-only)."""
    nch = -(-U // uc)
    CW = -(-ngates * uc // NR) * NR
    cols = np.full(nch * CW, -1, np.int64)
    for k in range(nch):
        u0 = k * uc
        ul = min(uc, U - u0)
        for g in range(ngates):
            cols[k * CW + g * ul:k * CW + (g + 1) * ul] = g * U + u0 + np.arange(ul)
    cols.flags.writeable = False
    return nch, CW, cols


_KEEP = {}  # id of a cached (read-only) cols -> (cols, its kept positions, their sources)


def permute_columns(a, cols):
    """``a[..., cols]`` with zeros where ``cols`` is -1 (padding)."""
    got = _KEEP.get(id(cols))
    if got is None or got[0] is not cols:
        keep = np.flatnonzero(cols >= 0)
        got = (cols, keep, cols[keep])
        if not cols.flags.writeable:  # chunk_columns' own: kept as long as its cache
            _KEEP[id(cols)] = got
    out = np.zeros(a.shape[:-1] + (cols.shape[0],), a.dtype)
    out[..., got[1]] = a[..., got[2]]
    return out
