"""Launch plans of the CUDA backend and the packing of the recurrent weights.

Two kernels: ``WarpPlan`` drives ``cuda_warp`` (the default: a warp per hidden
unit, float32 activations, warp shuffles on a real GPU) and ``Plan`` drives
``cuda_kernels`` (the first version: ``ksplit`` threads per (row, unit) and a
shared-memory tree reduction; the LSTM's default for recurrent dropout masks until
``cuda_warp``'s masked variant has run on a GPU, and the benchmark's baseline).
"""
from dataclasses import dataclass, replace

import numpy as np

from gpulstm.kernels import cuda_kernels as _ck
from gpulstm.kernels import cuda_warp as _cw


@dataclass(frozen=True)
class Plan:
    """First-version launch configuration (see ``cuda_kernels`` for the mapping)."""
    n_blocks: int
    upb: int          # hidden units per block
    nthreads: int
    ksplit: int       # threads per (row, unit) item, a power of two
    bchunk: int       # batch rows staged in shared memory at a time
    w_in_smem: bool
    driver: str = "persistent"   # "persistent" (one launch), "step" (tests only) or "graph"
    barrier: str = "cg"          # "cg" (cooperative grid sync) or "flag"

    def smem_bytes(self, U):
        return 4 * _ck.smem_words(self.nthreads, self.bchunk, U, self.upb, self.w_in_smem)


@dataclass(frozen=True)
class WarpPlan:
    """Warp-per-unit launch configuration (see ``cuda_warp`` for the mapping)."""
    n_blocks: int
    upb: int          # hidden units per block (one warp each, warps loop if fewer)
    nthreads: int     # a multiple of 32
    rb: int           # batch rows per pass, one of cuda_warp.ROWS
    w_units: int      # units per block whose weights stay in shared memory
    # "flag" (co-residency checked), "cg", or "tag" (no grid barrier: every h entry
    # tagged with its step, readers wait on the entries they need; co-residency checked)
    barrier: str = "flag"
    # "persistent" (one launch per sequence), "step" (one launch per timestep: tests)
    # or "graph" (the per-timestep launches replayed from a CUDA graph, cuda_graph)
    driver: str = "persistent"
    shuffle: bool = True         # False: exchanges emulated in shared memory (simulator)
    gates: int = 4               # the cell's gates per unit (cuda_cells: LSTM 4, GRU 3, RNN 1)

    def smem_bytes(self, U):
        return 4 * _cw.smem_words(self.nthreads, self.rb, U, self.w_units, self.shuffle,
                                  self.gates)


def _pow2_floor(n):
    return 1 << (max(1, int(n)).bit_length() - 1)


def make_plan(B, U, n_sm=132, smem_optin=227 * 1024, nthreads=256, n_blocks=None,
              **overrides):
    """First-version plan: blocks, units per block, thread split, weights on chip."""
    if n_blocks is None:
        n_blocks = min(n_sm, U)
    upb = -(-U // n_blocks)
    n_blocks = -(-U // upb)
    budget = smem_optin - 4 * 4 * nthreads - 1024
    w_bytes = 16 * upb * U
    # h_tm1 rows staged per pass: as many as fit beside the weights (at least one)
    w_in_smem = w_bytes + 4 * U <= budget
    room = budget - (w_bytes if w_in_smem else 0)
    bchunk = max(1, min(B, room // (4 * U), 64))
    items = bchunk * upb
    ksplit = min(_pow2_floor(max(1, nthreads // items)), _pow2_floor(U), nthreads)
    plan = Plan(n_blocks, upb, nthreads, ksplit, bchunk, w_in_smem)
    return replace(plan, **overrides) if overrides else plan


def make_warp_plan(B, U, n_sm=132, smem_optin=227 * 1024, n_blocks=None, min_upb=8,
                   max_warps=16, rb=None, nthreads=None, w_units=None, shuffle=True,
                   gates=4, **overrides):
    """Warp-per-unit plan.

    At least ``min_upb`` units per block: fewer, fatter blocks make the grid
    barrier cheaper (on an H200, 8 units per block beat 4 and 2 at U = 256 and 512,
    B = 1-32).  At most ``max_warps`` warps: 1024-thread blocks of this kernel
    cannot launch at all (registers), 512 ran.  ``rb`` defaults to the
    smallest pass of at least B rows (at most 8; 4 above U = 1024 to leave the
    shared memory to the weights).  ``w_units`` defaults to as many units as fit
    in shared memory beside h_s.  ``gates``: the cell's gates per unit (LSTM 4).
    """
    if n_blocks is None:
        upb = min(U, max(min_upb, -(-U // n_sm)))
    else:
        upb = -(-U // max(1, min(n_blocks, U)))
    n_blocks = -(-U // upb)
    if nthreads is None:
        nthreads = 32 * min(upb, max_warps)
    if rb is None:
        cap = 8 if U <= 1024 else 4
        rb = next((r for r in _cw.ROWS if r >= B), 8)
        rb = min(rb, cap)
    if w_units is None:
        room = smem_optin - 4 * _cw.smem_words(nthreads, rb, U, 0, shuffle) - 1024
        w_units = max(0, min(upb, room // (4 * gates * U)))
    plan = WarpPlan(n_blocks, upb, nthreads, rb, w_units, shuffle=shuffle, gates=gates)
    return replace(plan, **overrides) if overrides else plan


def pack_recurrent(xp, recurrent_kernel, n_blocks, upb):
    """``Rp`` 1-D: ``Rp[blk, j, g, k] = recurrent_kernel[k, g*U + blk*upb + j]`` (G/U gates)."""
    U = recurrent_kernel.shape[0]
    ng = recurrent_kernel.shape[1] // U
    r = recurrent_kernel.reshape(U, ng, U)          # [k, g, u]
    pad = n_blocks * upb - U
    if pad:
        r = xp.concatenate([r, xp.zeros((U, ng, pad), r.dtype)], axis=2)
    r = r.transpose(2, 1, 0)                        # [u, g, k]
    return xp.ascontiguousarray(r, dtype=np.float32).reshape(-1)
