"""Register-blocked GEMM micro-kernels for the CPU recurrence, written in LLVM IR.

``z[r:r + MR, 16 p:16 p + 16] += A[r:r + MR, :K] @ panel p`` with the right-hand side
packed in panels of 16 columns, ``P`` (ceil(G / 16), K, 16) C-contiguous, so each step of
the K loop reads one contiguous 64-byte row of the panel.  The MR x 16 block of z
lives in 2 * MR eight-float vector registers for the whole K loop; each K step is
2 vector loads, MR broadcasts and 2 * MR fused multiply-adds (the "outer product"
form of BLAS micro-kernels: no horizontal sums, unlike the dot-product tiles of
``cpu_fast``).  MR = 4 keeps 8 accumulators + 2 operands + 1 broadcast inside
AVX2's 16 registers; a single row runs four panels at once (1 x 64, again 8
accumulators: two would leave the FMA units waiting on their latency).

Why IR: numba's loops cannot express vector-typed accumulators, and LLVM's
vectorisers turn the same loop written in Python into either horizontal-sum
reductions or scalar code (measured; see ``scripts/micro_sweep.py``).  Measured
on a 2-core AVX2 Zen 3 (one thread, ``h @ U`` per step, float32, best of several
runs on a shared VM): B=8 U=256 61-75 GFLOP/s against 33-45 for the 4 x 2 dot
tiles; B=64 U=256 81 against 54; B=128 U=512 71 against 51; numpy's OpenBLAS
reaches 71 on a 1024^3 SGEMM there.

Every kernel is generic over float32 / float64 (an 8-lane vector of the array's
element type); gpulstm only routes float32 here.  Rows are addressed through the
arrays' byte strides, so any array whose last axis is contiguous works; callers
guarantee that and the shapes (no bounds checks inside the K loop).
"""
import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from gpulstm.kernels import _cache  # noqa: F401  (first: before any cached kernel)

NR = 16  # panel width: two 8-lane vectors
LANES = 8
WIDE_LANES = 16  # AVX-512: one 16-column panel row per vector
MR = 4  # rows per full block


def _make_micro(mr, npan=1, lanes=LANES, masked=False):
    """The micro-kernel for mr rows x npan panels; ``masked``: it takes one more
    argument, w, and adds only the first w columns of the block into z (the last panel
    when narrower than 16 columns)."""
    def typer(P, A, z):
        """z[rz:rz + mr, cz:cz + 16 npan] += A[ra:ra + mr, :K] @ P[p:p + npan] (no bounds
        checks; masked: columns cz:cz + w only)."""
        if not all(isinstance(a, types.Array) for a in (P, A, z)):
            return None
        if not (P.dtype == A.dtype == z.dtype) or P.ndim != 3 or A.ndim != 2 or z.ndim != 2:
            return None
        sig = types.void(P, types.intp, A, types.intp, z, types.intp, types.intp, types.intp,
                         *((types.intp,) if masked else ()))

        def codegen(context, builder, signature, args):
            p_arr, p_v, a_arr, ra_v, z_arr, rz_v, cz_v, k_v = args[:8]
            pa = context.make_array(signature.args[0])(context, builder, p_arr)
            aa = context.make_array(signature.args[2])(context, builder, a_arr)
            za = context.make_array(signature.args[4])(context, builder, z_arr)
            elt = context.get_data_type(signature.args[0].dtype)
            vec = ir.VectorType(elt, lanes)
            vptr = vec.as_pointer()
            i64 = ir.IntType(64)
            i32 = ir.IntType(32)
            byte = ir.IntType(8).as_pointer()

            def const(n):
                return ir.Constant(i64, n)

            def row_ptr(arr, row):
                # &arr[row, 0] through the byte stride of axis 0
                stride = cgutils.unpack_tuple(builder, arr.strides)[0]
                base = builder.bitcast(arr.data, byte)
                return builder.bitcast(builder.gep(base, [builder.mul(row, stride)]),
                                       elt.as_pointer())

            panels = [row_ptr(pa, builder.add(p_v, const(q))) for q in range(npan)]
            a_rows = [row_ptr(aa, builder.add(ra_v, const(i))) for i in range(mr)]
            fma = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(vec, [vec, vec, vec]),
                f"llvm.fma.v{lanes}{'f32' if elt == ir.FloatType() else 'f64'}")
            zero = ir.Constant(vec, [0.0] * lanes)
            undef = ir.Constant(vec, ir.Undefined)
            splat = ir.Constant(ir.VectorType(i32, lanes), [0] * lanes)
            # allocas in the entry block: mem2reg turns them into vector registers
            per = NR // lanes  # vectors per panel row
            nv = per * npan  # vectors per row of the block
            acc = [cgutils.alloca_once(builder, vec) for _ in range(nv * mr)]
            for slot in acc:
                builder.store(zero, slot)
            with cgutils.for_range(builder, k_v) as loop:
                k = loop.index
                ws = []
                for panel in panels:
                    prow = builder.gep(panel, [builder.mul(k, const(NR))])
                    for v in range(per):
                        ws.append(builder.load(
                            builder.bitcast(builder.gep(prow, [const(lanes * v)]), vptr), align=4))
                for i in range(mr):
                    x = builder.load(builder.gep(a_rows[i], [k]))
                    xv = builder.shuffle_vector(
                        builder.insert_element(undef, x, ir.Constant(i32, 0)), undef, splat)
                    for v, w in enumerate(ws):
                        slot = acc[nv * i + v]
                        builder.store(builder.call(fma, [xv, w, builder.load(slot)]), slot)
            for i in range(mr):
                zrow = builder.gep(row_ptr(za, builder.add(rz_v, const(i))), [cz_v])
                if masked:
                    # column by column, those below w only
                    for v in range(nv):
                        total = builder.load(acc[nv * i + v])
                        for lane in range(lanes):
                            col = lanes * v + lane
                            with builder.if_then(builder.icmp_signed("<", const(col), args[8])):
                                ptr = builder.gep(zrow, [const(col)])
                                lane_v = builder.extract_element(total, ir.Constant(i32, lane))
                                builder.store(builder.fadd(builder.load(ptr), lane_v), ptr)
                    continue
                for v in range(nv):
                    ptr = builder.bitcast(builder.gep(zrow, [const(lanes * v)]), vptr)
                    total = builder.fadd(builder.load(ptr, align=4), builder.load(acc[nv * i + v]))
                    builder.store(total, ptr, align=4)
            return context.get_dummy_value()

        return sig, codegen

    if masked:
        @intrinsic
        def micro_masked(typingctx, P, p, A, ra, z, rz, cz, K, w):
            return typer(P, A, z)
        return micro_masked

    @intrinsic
    def micro(typingctx, P, p, A, ra, z, rz, cz, K):
        return typer(P, A, z)
    return micro


_micro1 = _make_micro(1)
_micro2 = _make_micro(2)
_micro3 = _make_micro(3)
_micro4 = _make_micro(4)
_micro1x4 = _make_micro(1, 4)  # one row, 64 columns: 8 accumulators
_tail4 = _make_micro(MR, 1, masked=True)  # a last panel narrower than 16 columns
_tail1 = _make_micro(1, 1, masked=True)

# 16-lane blocks for hosts with 32 vector registers of 16 floats (AVX-512): one
# panel row is one vector.  Rows 5-8 run two panels (up to 16 accumulators), rows
# 1-4 four panels, and a last panel group narrower than four panels one panel.
for _r in range(1, 9):  # module globals _w{npan}_{rows}: what numba can call
    globals()[f"_w2_{_r}"] = _make_micro(_r, 2, WIDE_LANES)
    globals()[f"_w1_{_r}"] = _make_micro(_r, 1, WIDE_LANES)
    if _r <= 4:
        globals()[f"_w4_{_r}"] = _make_micro(_r, 4, WIDE_LANES)
# one row, eight panels (128 columns): 8 accumulators, as many as two FMA units with a
# 4-cycle latency keep busy (four panels leave a single row latency-bound)
_w8_1 = _make_micro(1, 8, WIDE_LANES)
W8_MAX_K = 64

_JIT = dict(cache=True, error_model="numpy", nogil=True)  # released GIL: Python threads overlap
# Step-level functions compile without numba's reference counting: every array passed
# to a compiled function, and every view taken in one, is counted with a locked
# instruction that drains the store buffer; a B = 1 step made 36 of them (a third of
# its time at U = 64).  Such a function allocates nothing (numba refuses np.empty or an
# overlapping slice copy there: ``cpu_rows.copy_row`` copies) and returns no array, and
# whatever it calls compiles the same way.
LEAF = dict(_JIT, _nrt=False)


@numba.njit(**LEAF)
def _micro(P, p, A, ra, z, rz, cz, K, mr):
    if mr == 4:
        _micro4(P, p, A, ra, z, rz, cz, K)
    elif mr == 3:
        _micro3(P, p, A, ra, z, rz, cz, K)
    elif mr == 2:
        _micro2(P, p, A, ra, z, rz, cz, K)
    elif mr == 1:
        _micro1(P, p, A, ra, z, rz, cz, K)


# mr (1..8) picks the kernel; written out because numba caches no generated source
@numba.njit(**LEAF)
def _wide2(P, p, A, ra, z, rz, cz, K, mr):
    if mr == 1:
        _w2_1(P, p, A, ra, z, rz, cz, K)
    elif mr == 2:
        _w2_2(P, p, A, ra, z, rz, cz, K)
    elif mr == 3:
        _w2_3(P, p, A, ra, z, rz, cz, K)
    elif mr == 4:
        _w2_4(P, p, A, ra, z, rz, cz, K)
    elif mr == 5:
        _w2_5(P, p, A, ra, z, rz, cz, K)
    elif mr == 6:
        _w2_6(P, p, A, ra, z, rz, cz, K)
    elif mr == 7:
        _w2_7(P, p, A, ra, z, rz, cz, K)
    elif mr == 8:
        _w2_8(P, p, A, ra, z, rz, cz, K)


@numba.njit(**LEAF)
def _wide4(P, p, A, ra, z, rz, cz, K, mr):
    if mr == 1:
        _w4_1(P, p, A, ra, z, rz, cz, K)
    elif mr == 2:
        _w4_2(P, p, A, ra, z, rz, cz, K)
    elif mr == 3:
        _w4_3(P, p, A, ra, z, rz, cz, K)
    elif mr == 4:
        _w4_4(P, p, A, ra, z, rz, cz, K)


@numba.njit(**LEAF)
def _wide1(P, p, A, ra, z, rz, cz, K, mr):
    if mr == 1:
        _w1_1(P, p, A, ra, z, rz, cz, K)
    elif mr == 2:
        _w1_2(P, p, A, ra, z, rz, cz, K)
    elif mr == 3:
        _w1_3(P, p, A, ra, z, rz, cz, K)
    elif mr == 4:
        _w1_4(P, p, A, ra, z, rz, cz, K)
    elif mr == 5:
        _w1_5(P, p, A, ra, z, rz, cz, K)
    elif mr == 6:
        _w1_6(P, p, A, ra, z, rz, cz, K)
    elif mr == 7:
        _w1_7(P, p, A, ra, z, rz, cz, K)
    elif mr == 8:
        _w1_8(P, p, A, ra, z, rz, cz, K)


@numba.njit(inline="always", **LEAF)
def step_reversed(s):
    """Whether step s of a recurrence runs its panel groups last to first: every other
    step (see ``gemm_panels``' ``rev``)."""
    return (s & 1) == 1


@numba.njit(inline="always", **LEAF)
def _nth(i, n, rev):
    """The i-th of n panel groups in the order ``rev`` asks for."""
    return n - 1 - i if rev else i


@numba.njit(**LEAF)
def _gemm_wide(P, A, z, nb, K, full, rev):
    """The full panels of ``gemm_panels`` on 16-lane blocks: rows of 8 against a pair of
    panels (kept in L1 while every row block uses it), 4 panels for 1-4 rows left.

    One thread, Zen 5, GFLOP/s, pair-major / 4-panel-major order: B=8 K=320 G=1024
    237 / 231; B=256 K=640 G=2048 214 / 203; B=16 K=192 239 / 234; equal elsewhere.
    ``rev``: the panel groups in reverse order (see ``gemm_panels``).
    """
    nb8 = nb - nb % 8
    rr = nb - nb8
    pg = full - full % 4
    # panels the last single row runs 8 at a time (short K only: at K = 128 (8 KiB
    # panels) eight streams ran 1.3x slower than four, one thread, Zen 5)
    p1 = full - full % 8 if rr == 1 and K <= W8_MAX_K else 0
    for p in range(0, p1, 8):
        _w8_1(P, p, A, nb8, z, nb8, p * NR, K)
    n2 = pg // 2
    for i in range(n2):
        p = 2 * _nth(i, n2, rev)
        c = p * NR
        for r in range(0, nb8, 8):
            _wide2(P, p, A, r, z, r, c, K, 8)
        if rr > 4:
            _wide2(P, p, A, nb8, z, nb8, c, K, rr)
    if 0 < rr <= 4:
        n4 = (pg - p1) // 4
        for i in range(n4):
            p = p1 + 4 * _nth(i, n4, rev)
            _wide4(P, p, A, nb8, z, nb8, p * NR, K, rr)
    for p in range(pg, full):
        for r in range(0, nb8, 8):
            _wide1(P, p, A, r, z, r, p * NR, K, 8)
        if rr > 0:
            _wide1(P, p, A, nb8, z, nb8, p * NR, K, rr)


@numba.njit(**LEAF)
def gemm_panels(P, A, z, nb, wide, rev=False):
    """z[:nb] += A[:nb, :K] @ W for W (K, G) packed by ``pack_panels`` into P.

    A and z need a contiguous last axis; A has at least K columns, z exactly G.
    ``wide``: 16-lane blocks of up to 8 rows x 32 columns (AVX-512's 32 registers of
    16 floats); else 8-lane blocks of 4 rows x 16 columns (AVX2's 16 registers of 8).
    Panel-major order: a panel (group) stays in cache while every row block uses it.
    ``rev``: the panel groups run last to first.  A recurrence alternates it from step
    to step, so a step starts on the panels the previous one touched last, still in
    L2 when the panels are larger than L2 (LRU keeps nothing of a stream run in one
    order).  One row, 100 steps, one thread, Zen 5 (1 MB L2), ms (min of 30), one
    order / alternating: 512 x 1024 panels (2 MB) 1.96-2.03 / 1.59; 512 x 1536
    (3 MB) 3.14-3.41 / 2.69-3.08; 512 x 2048 (4 MB) 3.96-4.20 / 3.65-3.86.  This
    replaced a non-temporal prefetch 16 rows ahead for panels past 1 MB (its lines
    do not stay in L2, so alternating gained little over it): whole calls, one thread,
    ms (min, three alternating processes), alternating / prefetch: LSTM
    (1,100,256,512) 4.42-4.54 / 4.82-5.01, GRU 3.25-3.35 / 3.53-3.71; two threads
    sharing each step (a 2 MB chunk a thread) LSTM 2.28-2.32 / 2.71-2.78, GRU
    1.60-1.95 / 1.93-1.99.
    A last panel narrower than 16 columns (G % 16 = 4, 8, 12, i.e. U not a multiple
    of 4) runs the masked micro-kernels (only its w columns are added into z).
    """
    n_panels, K = P.shape[0], P.shape[1]
    G = z.shape[1]
    # the micro-kernels index raw pointers: shapes are checked once here instead
    if (n_panels * NR < G or (n_panels - 1) * NR >= G or A.shape[1] < K or nb < 0
            or A.shape[0] < nb or z.shape[0] < nb or P.shape[2] != NR
            or A.strides[1] != A.itemsize or z.strides[1] != z.itemsize
            or P.strides[2] != P.itemsize or P.strides[1] != NR * P.itemsize):
        raise ValueError("gemm_panels: the shapes of P, A and z do not fit together")
    full = G // NR
    if wide:
        _gemm_wide(P, A, z, nb, K, full, rev)
    else:
        nb4 = nb - nb % MR
        p0 = 0
        if nb == 1:
            # one row: four panels at a time (two accumulators would wait on FMA latency)
            p0 = full - full % 4
            n4 = p0 // 4
            for i in range(n4):
                p = 4 * _nth(i, n4, rev)
                _micro1x4(P, p, A, 0, z, 0, p * NR, K)
        n1 = full - p0
        for i in range(n1):
            p = p0 + _nth(i, n1, rev)
            for r in range(0, nb4, MR):
                _micro4(P, p, A, r, z, r, p * NR, K)
            _micro(P, p, A, nb4, z, nb4, p * NR, K, nb - nb4)
    if full < n_panels:
        _narrow_tail(P, A, z, nb, K, full)


@numba.njit(**LEAF)
def _narrow_tail(P, A, z, nb, K, full):
    """The last panel when narrower than 16 columns: the masked micro-kernels add its
    w = G - 16 full columns into z."""
    c0 = full * NR
    w = z.shape[1] - c0
    nb4 = nb - nb % MR
    for r in range(0, nb4, MR):
        _tail4(P, full, A, r, z, r, c0, K, w)
    for r in range(nb4, nb):
        _tail1(P, full, A, r, z, r, c0, K, w)


def packed_panels(W):
    """``W`` (K, G) cut into 16-column panels for ``gemm_panels``: (ceil(G / 16), K, 16),
    the last panel zero-padded.  NumPy does the copy (no compiled function to load on
    a first call)."""
    W = np.asarray(W)
    K, G = W.shape
    n = (G + NR - 1) // NR
    if n * NR != G:
        W = np.concatenate((W, np.zeros((K, n * NR - G), W.dtype)), axis=1)
    return np.ascontiguousarray(W.reshape(K, n, NR).transpose(1, 0, 2))
