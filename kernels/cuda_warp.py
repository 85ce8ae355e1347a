"""Warp-per-unit persistent recurrence driver: the default CUDA path for every cell.

The driver (time loop, direction, masks, states, the staging of h and the exchange
between blocks) is cell-agnostic; the cell (``cuda_cells``: LSTM, GRU both ways,
SimpleRNN) gives the split of the per-step product and the gate update after it.
Described below for the LSTM (4 gates); a cell with fewer gates leaves the lanes
of the missing gates idle, and a cell with two products per step (GRU without
``reset_after``) runs two phases, each closed by the exchange (``aux`` carries what
the first phase publishes).  ``cuda_kernels`` is the LSTM's first version.

Recurrent dropout (training mode) is a variant of the same source (``masked``):
each gate's product reads ``h_tm1 * rm[b, g]`` with the per-gate masks ``rm``
(B, gates, U) read from global memory beside the weights, as Keras's implementation 1
multiplies h_tm1 per gate; in GRU's second phase the staged ``r * h_tm1`` meets the
candidate's mask, Keras's ``(r * (h_tm1 * m_h)) @ U_h``.

Thread mapping (one layer, one sequence per launch, 1-D grid):

* Block ``blk`` owns hidden units ``[blk * upb, blk * upb + upb)``; warp ``w`` of the
  block owns units ``w, w + n_warps, ...`` of those, for all four gates and ``RB``
  batch rows at a time (rows are passed in chunks of ``RB``).  One grid barrier per
  timestep publishes h_t.
* Lane ``l`` sums the recurrent dot products over ``k = l, l + 32, ...``: the unit's
  weights are stored ``[g, k]`` (``Rp[blk, j, g, k]``), so a warp reads 32
  consecutive words (conflict-free in shared memory, coalesced in global memory),
  and each weight read serves all ``RB`` rows.
* The 4·RB partial sums are reduced across the warp by a reduce-scatter butterfly
  (6 exchanges per row instead of 20): afterwards lane ``l`` holds the full sum of
  gate ``l >> 3`` (i, f, c, o) for row ``l & 7`` of the chunk, adds its own
  ``x_proj`` value (loaded before the dot product) and applies that gate's
  activation, so the 4·RB activations run in parallel.  Lane ``r < RB`` then
  gathers f, c~, o of row ``r`` (3 exchanges) and does the c/h update.
* The first ``w_units`` units of each block keep their weights in shared memory for
  the whole launch; the rest (only when they don't fit) are read from global memory.
* The activations are float32 (``activate_f32``).

The exchanges are ``cuda.shfl_*_sync`` on a real GPU.  numba's simulator has no
warp shuffles, so its variant (``shuffle=False``) runs the very same code with
each exchange emulated through shared memory and ``syncthreads``: every thread of
a block makes the same exchanges in the same order (block-uniform loops).

Dynamic shared memory (float32 words): ``scratch`` (3 * nthreads, simulator
variant only), ``h_s`` (RB * U: the chunk's h_tm1 rows, zero padded), weights
(w_units * 4 * U).
"""
import threading

import numba
from numba import cuda

from gpulstm.kernels import cuda_cells as _cells
from gpulstm.kernels.activations import activate_f32

float32 = numba.float32
ROWS = (1, 2, 4, 8)   # RB values: lane l finishes row l & 7, so RB <= 8

_lock = threading.Lock()
_built = {}


def smem_words(nthreads, rb, U, w_units, shuffle, gates=4):
    """float32 words of dynamic shared memory one block needs (``gates`` per unit)."""
    return (0 if shuffle else 3 * nthreads) + rb * U + gates * w_units * U


def _make_apply(user):
    if user is None:
        def apply(code, x):
            return activate_f32(code, x)
    else:
        ufn = user if isinstance(user, numba.core.dispatcher.Dispatcher) else numba.njit(user)

        def apply(code, x):
            return float32(ufn(x))
    return cuda.jit(device=True)(apply)


def kernels(act_user, ract_user, rb, shuffle, cell=_cells.LSTM, masked=False):
    """``(persistent cg, flag and tag kernels, step_kernel)`` of ``cell``, cached per key.

    ``masked``: the variant that multiplies h_tm1 by the per-gate recurrent dropout
    masks ``rm`` in each product (the same source; unmasked kernels ignore ``rm``)."""
    if rb not in ROWS:
        raise ValueError(f"Expected rb in {ROWS}. Received: rb={rb}")
    key = (cell, act_user, ract_user, rb, bool(shuffle), bool(masked))
    with _lock:
        got = _built.get(key)
        if got is None:
            got = _build(_make_apply(act_user), _make_apply(ract_user), rb, bool(shuffle), cell,
                         bool(masked))
            _built[key] = got
        return got


def _exchanges(shuffle):
    """``(xshfl, ishfl)``: value from lane ``lane ^ m`` / from lane ``src`` of the warp."""
    if shuffle:
        @cuda.jit(device=True)
        def xshfl(dyn, v, m, slot):
            return cuda.shfl_xor_sync(0xFFFFFFFF, v, m)

        @cuda.jit(device=True)
        def ishfl(dyn, v, src, slot):
            return cuda.shfl_sync(0xFFFFFFFF, v, src)
    else:
        # One barrier per exchange: consecutive exchanges use different scratch
        # slots (the callers alternate them statically), so a slot is rewritten only
        # after a later barrier that every reader of it has passed.
        @cuda.jit(device=True)
        def xshfl(dyn, v, m, slot):
            tid = cuda.threadIdx.x
            base = slot * cuda.blockDim.x
            dyn[base + tid] = v
            cuda.syncthreads()
            return dyn[base + (tid ^ m)]

        @cuda.jit(device=True)
        def ishfl(dyn, v, src, slot):
            tid = cuda.threadIdx.x
            base = slot * cuda.blockDim.x
            dyn[base + tid] = v
            cuda.syncthreads()
            return dyn[base + tid - (tid & 31) + src]
    return xshfl, ishfl


def _dot_reduce_source(rb, ng=4, masked=False):
    """Source of ``dot_reduce``: the lane's (row ``l & 7``, gate ``l >> 3``) full sum.

    ``ng`` gates (rows ``row + g * U`` of the weights); the missing gates of the four
    sum to zero, so their lanes hold 0.  ``masked`` (recurrent dropout): each gate's
    product reads ``h_tm1 * rm[b0 + r, g0 + g]`` (rm (B, gates, U), the per-gate masks;
    rows past B read row B - 1 times a zero h); unmasked, ``rm``, ``b0`` and ``g0`` are
    not read and the source is the plain product's.

    Generated because numba does not unroll loops: the 4*rb accumulators must be
    scalar variables to stay in registers.  The k loop is unrolled by two so twice
    as many loads are in flight (memory-level parallelism for weights in L2).
    """
    names = "ifco"[:ng]
    acc = [f"a{g}{r}" for r in range(rb) for g in names]
    L = ["def dot_reduce(Ws, rows, ns, Wg, rowg, ng, U, dyn, h_base, lane, rm, b0, g0):"]
    L += [f"    {a} = float32(0.0)" for a in acc]
    if masked:
        L += [f"    mb{r} = min(b0 + {r}, rm.shape[0] - 1)" for r in range(rb)]
    # two loops, one per weight source (shared / global memory), one of them empty:
    # no branch around the exchanges, which must stay block-uniform in the simulator
    for W, row, n in (("Ws", "rows", "ns"), ("Wg", "rowg", "ng")):
        L.append(f"    for kk in range(lane, {n}, 64):")
        # the k + 32 half past the end re-reads k with its h zeroed: no branch, so all
        # loads of both halves can be issued before the first FMA
        L.append("        k2 = kk + 32")
        L.append(f"        v2 = float32(1.0) if k2 < {n} else float32(0.0)")
        L.append(f"        if k2 >= {n}:")
        L.append("            k2 = kk")
        for half, k in ((0, "kk"), (1, "k2")):
            L += [f"        w{g}{half} = {W}[{row} + {i} * U + {k}]" for i, g in enumerate(names)]
            L += [f"        h{r}{half} = dyn[h_base + {r} * U + {k}]" for r in range(rb)]
            if masked:
                L += [f"        m{g}{r}{half} = rm[mb{r}, g0 + {i}, {k}]"
                      for r in range(rb) for i, g in enumerate(names)]
        for half in (0, 1):
            for r in range(rb):
                h = f"h{r}{half}" if half == 0 else f"(h{r}1 * v2)"
                for g in names:
                    hm = f"({h} * m{g}{r}{half})" if masked else h
                    L.append(f"        a{g}{r} += {hm} * w{g}{half}")
    L.append("    hi = (lane & 16) != 0")
    L.append("    mid = (lane & 8) != 0")
    L.append("    mine = float32(0.0)")
    for r in range(rb):
        ai, af, ac, ao = (f"a{g}{r}" if g in names else "float32(0.0)" for g in "ifco")
        # lanes 0-15 keep (i, f), 16-31 keep (c, o); then bit 3 picks one of the pair
        L.append(f"    k0 = {ac} if hi else {ai}")
        L.append(f"    k1 = {ao} if hi else {af}")
        # simulator scratch slots alternate 0, 1 (6 exchanges per row: ends on 1)
        L.append(f"    k0 += xshfl(dyn, {ai} if hi else {ac}, 16, 0)")
        L.append(f"    k1 += xshfl(dyn, {af} if hi else {ao}, 16, 1)")
        L.append("    v = (k1 if mid else k0) + xshfl(dyn, k0 if mid else k1, 8, 0)")
        L.append("    v += xshfl(dyn, v, 4, 1)")
        L.append("    v += xshfl(dyn, v, 2, 0)")
        L.append("    v += xshfl(dyn, v, 1, 1)")
        L.append(f"    if (lane & 7) == {r}:")
        L.append("        mine = v")
    L.append("    return mine")
    return "\n".join(L) + "\n"


def _build(act_f, ract_f, RB, shuffle, cell, masked):
    xshfl, ishfl = _exchanges(shuffle)
    dots = []
    for first, ng in cell.phases:
        ns = {"float32": float32, "xshfl": xshfl}
        exec(compile(_dot_reduce_source(RB, ng, masked),
                     f"<cuda_warp dot_reduce rb={RB} ng={ng} masked={masked}>", "exec"), ns)
        dots.append(cuda.jit(device=True)(ns["dot_reduce"]))
    dot_a, dot_b = dots[0], dots[-1]
    (G0A, NGA), (G0B, NGB) = cell.phases[0], cell.phases[-1]
    NPH = len(cell.phases)
    LAST = NPH - 1
    GATES = cell.gates
    HAS_C, REC_BIAS, NEEDS_H = cell.has_c, cell.rec_bias, cell.needs_h
    finish = _cells.make_finish(cell, act_f, ract_f, ishfl)
    SCRATCH = not shuffle

    @cuda.jit(device=True)
    def step_block(k, phase, blk, xp, Rp, brec, hbuf, c, aux, last, seq, mask, rm, sync,
                   tagged, dyn, h_base, w_base, act, ract, go_backwards, zero_output,
                   return_sequences, upb, w_units):
        """Phase ``phase`` of timestep ``k`` of block ``blk``: its units for every batch row.

        xp (B, T, G) input projection (input bias included); Rp 1-D packed weights, dyn
        from w_base holds this block's first w_units units; brec (G,) the recurrent
        bias (cells with rec_bias) or (0,); hbuf (2, B, U) h by step parity; c (B, U)
        the LSTM's c (else unused), last (B, U) updated in place; aux (2, B, U) what a
        phase publishes for the next (two-phase cells, else unused); seq (B, T, U)
        when return_sequences; mask (B, T) uint8 or (0, 0); rm (B, gates, U) the
        per-gate recurrent dropout masks (masked kernels) or (0, 0, 0).  ``tagged``:
        sync (2, B, U) int32 holds the step whose input each hbuf entry is (the tag
        exchange: wait for the entries themselves instead of a grid barrier; one-phase
        cells only).
        """
        tid = cuda.threadIdx.x
        nthr = cuda.blockDim.x
        lane = tid & 31
        warp = tid >> 5
        nwarps = nthr >> 5
        B = last.shape[0]
        U = last.shape[1]
        T = xp.shape[1]
        t = T - 1 - k if go_backwards else k
        p = k % 2
        has_mask = mask.shape[0] > 0
        j0 = blk * upb
        nj = min(upb, U - j0)
        gate = lane >> 3
        r = lane & 7
        g0 = G0B if phase > 0 else G0A
        ng = NGB if phase > 0 else NGA
        for b0 in range(0, B, RB):
            nb = min(RB, B - b0)
            if b0 > 0:
                cuda.syncthreads()  # the previous chunk's h_s is no longer read
            for idx in range(tid, RB * U, nthr):
                rr = idx // U
                hv = float32(0.0)
                if rr < nb:
                    if phase > 0:
                        hv = aux[1, b0 + rr, idx - rr * U]  # the previous phase's output
                    elif tagged:
                        # spin until the unit's owner has published step k's input;
                        # atomics read L2 (a plain load may hit a stale L1 line); adding
                        # 0.0 turns -0.0 into +0.0 and flushes subnormals, harmless for h
                        while cuda.atomic.add(sync, (p, b0 + rr, idx - rr * U), 0) < k:
                            pass
                        cuda.threadfence()  # the tag's read before the h read
                        hv = cuda.atomic.add(hbuf, (p, b0 + rr, idx - rr * U), float32(0.0))
                    else:
                        hv = hbuf[p, b0 + rr, idx - rr * U]
                dyn[h_base + idx] = hv
            cuda.syncthreads()
            for jw in range(0, upb, nwarps):  # same trip count for every warp
                j = jw + warp
                live = j < nj
                u = j0 + j
                # global loads first: they land while the dot product runs
                xv = float32(0.0)
                bv = float32(0.0)
                carry = float32(0.0)
                h_tm1 = float32(0.0)
                keep = True
                if live and r < nb and gate < ng:
                    xv = xp[b0 + r, t, (g0 + gate) * U + u]
                    if REC_BIAS:
                        bv = brec[(g0 + gate) * U + u]
                if live and lane < nb:
                    if HAS_C:
                        carry = c[b0 + lane, u]
                    elif phase > 0:
                        carry = aux[0, b0 + lane, u]
                    if NEEDS_H:
                        if phase > 0:
                            h_tm1 = hbuf[p, b0 + lane, u]
                        else:
                            h_tm1 = dyn[h_base + lane * U + u]
                    if has_mask:
                        keep = mask[b0 + lane, t] != 0
                n = U if live else 0
                on_chip = j < w_units
                row = j * GATES * U + g0 * U
                rowg = (j0 + j) * GATES * U + g0 * U
                if phase > 0:
                    s = dot_b(dyn, w_base + row, n if on_chip else 0, Rp, rowg,
                              0 if on_chip else n, U, dyn, h_base, lane, rm, b0, g0)
                else:
                    s = dot_a(dyn, w_base + row, n if on_chip else 0, Rp, rowg,
                              0 if on_chip else n, U, dyn, h_base, lane, rm, b0, g0)
                v1, v2 = finish(dyn, phase, gate, r, xv, s, bv, carry, h_tm1, act, ract)
                if live and lane < nb:
                    b = b0 + lane
                    if phase < LAST:
                        aux[0, b, u] = v1
                        aux[1, b, u] = v2
                    else:
                        if keep:
                            if HAS_C:
                                c[b, u] = v2
                            hbuf[1 - p, b, u] = v1
                            out = v1
                        else:
                            # masked: carry the states, repeat the last output (or zeros)
                            if tagged:
                                hbuf[1 - p, b, u] = cuda.atomic.add(hbuf, (p, b, u),
                                                                    float32(0.0))
                            else:
                                hbuf[1 - p, b, u] = hbuf[p, b, u]
                            out = float32(0.0) if zero_output else last[b, u]
                        if tagged:
                            cuda.threadfence()  # h_t reaches L2 before its tag does
                            cuda.atomic.exch(sync, (1 - p, b, u), numba.int32(k + 1))
                        last[b, u] = out
                        if return_sequences:
                            seq[b, k, u] = out

    @cuda.jit(device=True)
    def load_weights(blk, Rp, dyn, w_base, upb, w_units, U):
        tid = cuda.threadIdx.x
        n = GATES * w_units * U
        src = blk * GATES * upb * U
        for idx in range(tid, n, cuda.blockDim.x):
            dyn[w_base + idx] = Rp[src + idx]
        cuda.syncthreads()

    def persistent(barrier, tagged):
        @cuda.jit
        def warp_kernel(xp, Rp, brec, hbuf, c, aux, last, seq, mask, rm, sync, act, ract,
                        go_backwards, zero_output, return_sequences, upb, w_units, T):
            """Whole sequence in one launch.  sync: (1, 1, 1) int32 zeros (the flag
            barrier's arrival counter, one arrival per phase) or, tag exchange,
            (2, B, U) int32 step tags (parity 0 zeros: h0 is step 0's input; parity 1 -1)."""
            dyn = cuda.shared.array(0, dtype=numba.float32)
            blk = cuda.blockIdx.x
            nblk = cuda.gridDim.x
            U = last.shape[1]
            h_base = 3 * cuda.blockDim.x if SCRATCH else 0
            w_base = h_base + RB * U
            load_weights(blk, Rp, dyn, w_base, upb, w_units, U)
            for k in range(T):
                for ph in range(NPH):
                    step_block(k, ph, blk, xp, Rp, brec, hbuf, c, aux, last, seq, mask, rm,
                               sync, tagged, dyn, h_base, w_base, act, ract, go_backwards,
                               zero_output, return_sequences, upb, w_units)
                    barrier(sync, nblk * (k * NPH + ph + 1))
        return warp_kernel

    @cuda.jit(device=True)
    def cg_barrier(sync, target):
        cuda.cg.this_grid().sync()

    @cuda.jit(device=True)
    def flag_barrier(sync, target):
        # Monotonic arrival counter (no reset, no second barrier); needs every block
        # co-resident, which the host checks with the occupancy query.
        cuda.syncthreads()
        if cuda.threadIdx.x == 0:
            cuda.threadfence()
            cuda.atomic.add(sync, (0, 0, 0), 1)
            while cuda.atomic.add(sync, (0, 0, 0), 0) < target:
                pass
            cuda.threadfence()
        cuda.syncthreads()

    @cuda.jit(device=True)
    def block_barrier(sync, target):
        # tag exchange: blocks wait on the h entries they read, not on each other;
        # this only keeps the block's h_s staging from overtaking its own warps
        cuda.syncthreads()

    @cuda.jit
    def warp_step_kernel(k, phase, xp, Rp, brec, hbuf, c, aux, last, seq, mask, rm, sync,
                         tagged, act, ract, go_backwards, zero_output, return_sequences, upb,
                         w_units):
        """Phase ``phase`` of timestep ``k`` only: drives ``step_block`` over several
        blocks (tests, graphs)."""
        dyn = cuda.shared.array(0, dtype=numba.float32)
        blk = cuda.blockIdx.x
        U = last.shape[1]
        h_base = 3 * cuda.blockDim.x if SCRATCH else 0
        w_base = h_base + RB * U
        load_weights(blk, Rp, dyn, w_base, upb, w_units, U)
        step_block(k, phase, blk, xp, Rp, brec, hbuf, c, aux, last, seq, mask, rm, sync,
                   tagged, dyn, h_base, w_base, act, ract, go_backwards, zero_output,
                   return_sequences, upb, w_units)

    return (persistent(cg_barrier, False), persistent(flag_barrier, False),
            persistent(block_barrier, True), warp_step_kernel)
