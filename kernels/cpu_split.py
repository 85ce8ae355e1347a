"""Threads sharing each timestep of a small batch: unit chunks claimed step by step.

Rows split over threads (``cpu.run_parallel``) leave a single sequence, or a
few, on one core.  Here the hidden units are cut into ``nch`` chunks instead; at
every step each thread claims chunks (its own first, so a chunk's weights stay in
that core's L2; another's only once that thread looks descheduled), computes
``z = x_proj[:, t, chunk] + bias + h_tm1 @ [recurrent_kernel columns of the chunk]``
on the panel kernels, and runs the chunk's gate update.  A step starts once every
chunk of the previous one is done (one shared counter; ``cpu_sync``).  No thread
waits on a *particular* other thread: a thread the OS does not run leaves its
chunks to the ones it does, and a prange that runs its iterations one after the
other (any threading layer) still finishes, the first iteration doing all the work.

Layout (``cpu_chunks.chunk_columns``): the columns of [kernel; recurrent_kernel] are
permuted so chunk k's gate columns are contiguous, so the gate update runs on a chunk
exactly as on a whole row.  The input projection for every row and step is done up
front, on the same panels, in row blocks claimed the same way.

The GRU without ``reset_after`` has a second product inside the step, ``(r * h_tm1) @
R_h``, that needs r of *every* unit.  Its steps run in two phases, each claimed and
counted as a step is (the counters count phases: phase q = 2 s + p): in phase 0 each
chunk computes its z and r (x part + h_tm1 @ R_zr on the chunk's first panels) into
shared per-chunk buffers and writes r * h_tm1 for its units into a shared (B, U) row
buffer; once every chunk is done, phase 1 runs ``(r * h_tm1) @ R_h`` on the h columns'
own panels (``h_panels``) and the gate update.  Whoever claims a chunk's phase 1 finds
its phase 0 in the shared buffers, so a thread may still take any chunk.
"""
import numba
import numpy as np
from numba import prange

from gpulstm.kernels import _cache  # noqa: F401  (first: before any cached kernel)
from gpulstm.kernels import cpu_micro, cpu_sync
from gpulstm.kernels.cpu_chunks import chunk_columns, permute_columns
from gpulstm.kernels.cpu_fast import LEAF, gates_rows
from gpulstm.kernels.cpu_gru_gates import gates_after, gates_before, reset_rows
from gpulstm.kernels.cpu_rows import copy_row, fill_rows

_JIT = dict(cache=True, error_model="numpy", nogil=True)
NR = cpu_micro.NR


# Counter slots in ``sync`` (int64): projection tickets and blocks done, chunks of all
# phases done, then one claim counter per chunk (the next phase it may be claimed for;
# one phase a step, two for the GRU without reset_after).
_P_TICKET, _P_DONE, _DONE, _CLAIMS = 0, 1, 2, 3


@numba.njit(**_JIT)
def _project(x, P, xp, D, sync, rb, wide):
    """Claim row blocks of ``xp = x @ kernel`` (P's first D rows) until none is left."""
    BT = x.shape[0]
    bias0 = np.empty(0, xp.dtype)  # empty: fill_rows writes zeros
    nblk = -(-BT // rb)
    while True:
        i = cpu_sync.fetch_add(sync, _P_TICKET, 1)
        if i >= nblk:
            break
        r0 = i * rb
        r1 = min(r0 + rb, BT)
        fill_rows(xp[r0:r1], bias0)  # zeros, while the block is this core's
        cpu_micro.gemm_panels(P[:, :D], x[r0:r1], xp[r0:r1], r1 - r0, wide)
        cpu_sync.fetch_add(sync, _P_DONE, 1)
    cpu_sync.wait_until(sync, _P_DONE, nblk)


@numba.njit(**LEAF)
def _chunk(k, s, t, ph, xp, bias, P, D, hbuf, c, mask, first, act, ract, fast, wide, uc, CW,
           return_sequences, zero_output_for_mask, out, z, tmp, T, rec_bias, zx, PH, RH, XS,
           ZS):
    """Step s (time t) of unit chunk k for every row: z, product, gates, outputs.

    LSTM: z = x_proj + bias, += h_tm1 @ rk, the gates.  GRU (``zx`` has rows): zx = x_proj
    + input bias, z = rec_bias (or 0) += h_tm1 @ rk, then the reset_after gates.  GRU
    without reset_after (``PH`` has panels): phase ``ph`` 0 puts zx and z in the shared
    XS[k] and ZS[k], runs h_tm1 @ R_zr and ``reset_rows`` (RH = r * h_tm1 on the chunk's
    units); phase 1 z (thread's own) = RH @ R_h and ``gates_before``."""
    nb, U = c.shape
    npc = CW // NR
    u0 = k * uc
    ul = min(uc, U - u0)
    h_prev = hbuf[s % 2]
    h_next = hbuf[(s + 1) % 2]
    has_mask = mask.shape[0] > 0
    has_bias = bias.shape[0] > 0
    c0 = k * CW
    rev = cpu_micro.step_reversed(s)
    gru = zx.shape[0] > 0
    before = PH.shape[0] > 0
    if before:
        zx = XS[k]  # shared: whichever thread claims phase 1 reads phase 0's results
        if ph == 1:
            _second_phase(k, s, t, uc, ul, u0, PH, RH, hbuf, XS, ZS, z, mask, first, has_mask,
                          act, fast, wide, return_sequences, zero_output_for_mask, out)
            return
    # z is (nb, CW) = x_proj[:, t, chunk] + bias (the GRU: into zx, z = its rec_bias),
    # then += h_tm1 @ rk[:, chunk]
    for r in range(nb):
        src = xp[r * T + t, c0:c0 + CW]
        zr = zx[r, 0] if gru else z[r]
        if has_bias:
            bk = bias[c0:c0 + CW]
            for j in range(CW):
                zr[j] = src[j] + bk[j]
        else:
            copy_row(src, zr)
    if before:  # phase 0: z and r into ZS[k] (its first panels suffice), RH = r * h_tm1
        zg = ZS[k]
        npz = -(-2 * ul // NR)
        zs = zg[:, :npz * NR]
        zs[:, :] = 0.0  # no recurrent bias
        cpu_micro.gemm_panels(P[k * npc:k * npc + npz, D:], h_prev, zs, nb, wide, rev)
        reset_rows(zx, 0, zg, h_prev, RH, u0, ul, ract, fast)
        return
    if gru:
        fill_rows(z, rec_bias[c0:c0 + CW])  # the chunk's recurrent bias (or zeros)
    cpu_micro.gemm_panels(P[k * npc:(k + 1) * npc, D:], h_prev, z, nb, wide, rev)
    if gru:
        for r in range(nb):  # the GRU's gates update h in place: h_tm1 first
            copy_row(h_prev[r, u0:u0 + ul], h_next[r, u0:u0 + ul])
        gates_after(zx, 0, z, h_next, u0, ul, mask, 0, t, has_mask, act, ract, fast)
    else:
        gates_rows(z, h_next, c, tmp, act, ract, fast, mask, 0, t, has_mask, u0, ul)
    _emit(s, t, u0, ul, h_prev, h_next, mask, first, has_mask, return_sequences,
          zero_output_for_mask, out)


@numba.njit(**LEAF)
def _second_phase(k, s, t, uc, ul, u0, PH, RH, hbuf, XS, ZS, z, mask, first, has_mask, act,
                  fast, wide, return_sequences, zero_output_for_mask, out):
    """Phase 1 of the GRU without reset_after, chunk k: z (the thread's scratch) = (r *
    h_tm1) @ R_h on the chunk's panels of PH, ``gates_before``, the outputs."""
    nb = RH.shape[0]
    h_prev = hbuf[s % 2]
    h_next = hbuf[(s + 1) % 2]
    npc1 = -(-uc // NR)  # panels a chunk in ``h_panels``
    zc = z[:, :npc1 * NR]
    zc[:, :] = 0.0
    cpu_micro.gemm_panels(PH[k * npc1:(k + 1) * npc1], RH, zc, nb, wide,
                          cpu_micro.step_reversed(s))
    for r in range(nb):  # the gates update h in place: h_tm1 first
        copy_row(h_prev[r, u0:u0 + ul], h_next[r, u0:u0 + ul])
    gates_before(XS[k], 0, ZS[k], zc, h_next, u0, ul, mask, 0, t, has_mask, act, fast)
    _emit(s, t, u0, ul, h_prev, h_next, mask, first, has_mask, return_sequences,
          zero_output_for_mask, out)


@numba.njit(**LEAF)
def _emit(s, t, u0, ul, h_prev, h_next, mask, first, has_mask, return_sequences,
          zero_output_for_mask, out):
    """Step s's outputs of units [u0, u0 + ul): masked rows carry h over (Keras's rule)."""
    for r in range(h_next.shape[0]):
        hn = h_next[r, u0:u0 + ul]
        if has_mask and mask[r, t] == 0:
            copy_row(h_prev[r, u0:u0 + ul], hn)  # h and c carry over
            if return_sequences:
                if zero_output_for_mask or first[r] >= s:
                    out[r, s, u0:u0 + ul] = 0.0
                else:
                    copy_row(hn, out[r, s, u0:u0 + ul])
        elif return_sequences:
            copy_row(hn, out[r, s, u0:u0 + ul])


@numba.njit(**_JIT)
def _worker(tid, n, x, P, xp, bias, hbuf, c, mask, first, act, ract, fast, wide, go_backwards,
            return_sequences, zero_output_for_mask, out, T, D, uc, CW, nch, rb, sync,
            steal_spins, rec_bias, gru, PH, RH, XS, ZS):
    nb = c.shape[0]
    if x.shape[0] > 0:
        _project(x, P, xp, D, sync, rb, wide)
    z = np.empty((nb, CW), xp.dtype)
    zx = np.empty((nb if gru else 0, 1, CW), xp.dtype)  # the GRU's input parts
    tmp = np.empty(uc, xp.dtype)
    nph = 2 if PH.shape[0] > 0 else 1  # phases a step
    # home chunks [k0, k1): claimed first, so their panels stay in this core's cache
    k0 = tid * nch // n
    k1 = (tid + 1) * nch // n
    q = 0  # phase q: step q // nph
    while q < nph * T:
        cpu_sync.wait_until(sync, _DONE, q * nch)  # phase q - 1 complete
        ahead = cpu_sync.load(sync, _DONE) // nch
        if ahead > q:  # this thread was not running: the others went on
            q = ahead
            continue
        s = q // nph
        ph = q - s * nph
        t = T - 1 - s if go_backwards else s
        for k in range(k0, k1):
            if cpu_sync.cas(sync, _CLAIMS + k, q, q + 1):
                _chunk(k, s, t, ph, xp, bias, P, D, hbuf, c, mask, first, act, ract, fast,
                       wide, uc, CW, return_sequences, zero_output_for_mask, out, z, tmp, T,
                       rec_bias, zx, PH, RH, XS, ZS)
                cpu_sync.fetch_add(sync, _DONE, 1)
        # the other chunks: their owner normally takes them; steal only after it has
        # left them unclaimed for steal_spins polls (descheduled, or not started)
        spins = 0
        while cpu_sync.load(sync, _DONE) < (q + 1) * nch:
            spins += 1
            if spins < steal_spins:
                continue
            for k in range(nch):
                if cpu_sync.load(sync, _CLAIMS + k) == q and \
                        cpu_sync.cas(sync, _CLAIMS + k, q, q + 1):
                    _chunk(k, s, t, ph, xp, bias, P, D, hbuf, c, mask, first, act, ract,
                           fast, wide, uc, CW, return_sequences, zero_output_for_mask, out, z,
                           tmp, T, rec_bias, zx, PH, RH, XS, ZS)
                    cpu_sync.fetch_add(sync, _DONE, 1)
            if spins > cpu_sync.YIELD_AFTER:
                cpu_sync.relax()
        q += 1


@numba.njit(parallel=True, **_JIT)
def run_split(x, P, xp, bias, hbuf, c, mask, first, act, ract, fast, wide, go_backwards,
              return_sequences, zero_output_for_mask, out, T, D, uc, CW, nch, rb, sync,
              steal_spins, n, rec_bias, gru, PH, RH, XS, ZS):
    """Run every row through the whole sequence, n threads sharing each step.

    x (B * T, D) row b * T + t, or (0, 0) when xp already holds the projection; P
    the panels of [kernel; recurrent_kernel] in chunk column order (``chunk_columns``),
    K = D + U; xp (B * T, nch * CW) zeros (then x @ kernel) or the permuted x_proj;
    bias (nch * CW,) permuted, or (0,); hbuf (2, B, U) with h0 in hbuf[0] (the final h
    is hbuf[T % 2]); c (B, U) c0, overwritten with the final c; mask (B, T) uint8 or
    (0, 0); first (B,) each row's first unmasked step in processing order (T if
    none); out (B, T, U) in processing order when return_sequences (else untouched);
    sync int64 zeros (3 + nch,).  ``gru``: a GRU in (z, r, h) chunk order, ``bias`` its
    input bias and ``rec_bias`` its recurrent one ((0,) for an LSTM or without
    reset_after), c a stand-in.  Without reset_after PH holds ``h_panels`` and the step's
    shared buffers are RH (B, U), XS (nch, B, 1, CW) and ZS (nch, B, CW); otherwise PH
    has no panels (and the buffers no rows).
    """
    for tid in prange(n):
        _worker(tid, n, x, P, xp, bias, hbuf, c, mask, first, act, ract, fast, wide,
                go_backwards, return_sequences, zero_output_for_mask, out, T, D, uc, CW, nch,
                rb, sync, steal_spins, rec_bias, gru, PH, RH, XS, ZS)


def panels(kernel, recurrent_kernel, cols):
    """The panels of [kernel; recurrent_kernel] (or recurrent_kernel alone) in chunk
    column order."""
    w = recurrent_kernel if kernel is None else np.concatenate((kernel, recurrent_kernel))
    return cpu_micro.packed_panels(permute_columns(w, cols))


def forward(x, kernel, recurrent_kernel, bias, h0, c0, mask, act, ract, go_backwards,
            return_sequences, zero_output_for_mask, x_proj, n, uc, wide, get_panels=None):
    """The LSTM forward pass (float32; ``cpu.lstm_forward``'s contract) with n threads
    sharing each step over chunks of ``uc`` units.  ``get_panels(with_kernel, uc)``
    (optional) returns cached ``panels``."""
    dtype = recurrent_kernel.dtype
    U, G = recurrent_kernel.shape
    nch, CW, cols = chunk_columns(U, uc)
    with_kernel = x_proj is None
    if get_panels is not None:
        P = get_panels(with_kernel, uc)
    else:
        P = panels(kernel if with_kernel else None, recurrent_kernel, cols)
    if with_kernel:
        x2, xp, D = _inputs(x, nch * CW, dtype)
    else:
        B, T = x_proj.shape[:2]
        D = 0
        x2 = np.zeros((0, 0), dtype)
        xp = permute_columns(np.asarray(x_proj, dtype).reshape(B * T, G), cols)
    bias_p = (np.zeros(0, dtype) if bias is None else
              permute_columns(np.asarray(bias, dtype), cols))
    c = np.array(c0, dtype=dtype, order="C", copy=True)
    T = (x if with_kernel else x_proj).shape[1]
    out, h = _run(x2, P, xp, bias_p, np.zeros(0, dtype), h0, c, mask, act, ract, wide,
                  go_backwards, return_sequences, zero_output_for_mask, T, D, uc, CW, nch, n,
                  False, None)
    return out, h, c


def h_panels(recurrent_kernel, uc):
    """The panels of the recurrent kernel's h columns (U, U) in chunks of ``uc`` units
    (``chunk_columns(U, uc, 1)``): the GRU's second product without reset_after."""
    U = recurrent_kernel.shape[0]
    cols = chunk_columns(U, uc, 1)[2]
    return cpu_micro.packed_panels(permute_columns(recurrent_kernel[:, 2 * U:], cols))


def forward_gru(x, kernel, recurrent_kernel, bias, h0, mask, act, ract, reset_after,
                go_backwards, return_sequences, zero_output_for_mask, n, uc, wide,
                get_panels=None):
    """The GRU forward pass (float32; ``cpu_gru.gru_forward``'s contract, bias (2, 3U)
    with ``reset_after``, else (3U,), or None) with n threads sharing each step over
    chunks of ``uc`` units: ``(output, h)``.  ``get_panels(uc, reset_after)`` (optional)
    returns cached ``(panels, h_panels)``: [kernel; recurrent_kernel] in (z, r, h) chunk
    order and, without reset_after, the h columns' own panels (else None)."""
    dtype = recurrent_kernel.dtype
    U = recurrent_kernel.shape[0]
    nch, CW, cols = chunk_columns(U, uc, 3)
    if get_panels is not None:
        P, PH = get_panels(uc, reset_after)
    else:
        P = panels(kernel, recurrent_kernel, cols)
        PH = None if reset_after else h_panels(recurrent_kernel, uc)
    x2, xp, D = _inputs(x, nch * CW, dtype)
    empty = np.zeros(0, dtype)
    if bias is None:
        b_in, b_rec = empty, empty
    elif reset_after:
        b_in = permute_columns(np.asarray(bias[0], dtype), cols)
        b_rec = permute_columns(np.asarray(bias[1], dtype), cols)
    else:
        b_in, b_rec = permute_columns(np.asarray(bias, dtype), cols), empty
    c = np.zeros((x.shape[0], U), dtype)  # the LSTM's cell state: a stand-in here
    return _run(x2, P, xp, b_in, b_rec, h0, c, mask, act, ract, wide, go_backwards,
                return_sequences, zero_output_for_mask, x.shape[1], D, uc, CW, nch, n, True,
                PH)


def _inputs(x, width, dtype):
    """``(x2, xp, D)``: x as (B * T, D) rows and the (B * T, width) projection that
    ``run_split`` fills with x @ kernel up front (each block zeroed by the thread that
    projects it: no pass over the whole buffer here)."""
    B, T, D = x.shape
    x2 = np.ascontiguousarray(x, dtype=dtype).reshape(B * T, D)
    return x2, np.empty((B * T, width), dtype), D


def _run(x2, P, xp, bias_p, rec_p, h0, c, mask, act, ract, wide, go_backwards,
         return_sequences, zero_output_for_mask, T, D, uc, CW, nch, n, gru, PH):
    """``run_split`` over rows of h0 (B, U): ``(output, h)``, the output (B, T, U) in
    processing order or the last one (B, U); c (B, U) updated in place (LSTM).  PH:
    ``h_panels`` (the GRU without reset_after: two phases a step) or None."""
    dtype = P.dtype
    B, U = np.shape(h0)
    hbuf = np.empty((2, B, U), dtype)
    hbuf[0] = h0
    if mask is not None:
        m = np.asarray(mask, dtype=bool)
        if go_backwards:
            m = m[:, ::-1]
        started = m.any(axis=1)
        first = np.where(started, m.argmax(axis=1), T).astype(np.int64)
        mask_u8 = np.ascontiguousarray(mask, dtype=np.uint8)
    else:
        first = np.zeros(B, np.int64)
        mask_u8 = np.zeros((0, 0), np.uint8)
    out = np.empty((B, T if return_sequences else 0, U), dtype)
    # projection row blocks: at least two per thread, a multiple of 8 rows, x in L2
    per = -(-B * T // (2 * n))
    rb = max(8, min(-(-per // 8) * 8, (65536 // max(D, 1)) // 8 * 8))
    sync = np.zeros(_CLAIMS + nch, np.int64)
    rows = 0 if PH is None else B  # the shared buffers of the two-phase steps
    if PH is None:
        PH = np.zeros((0, 1, NR), dtype)
    RH = np.zeros((rows, U), dtype)
    XS = np.zeros((nch if rows else 0, rows, 1, CW), dtype)
    ZS = np.zeros((nch if rows else 0, rows, CW), dtype)
    run_split(x2, P, xp, bias_p, hbuf, c, mask_u8, first, act, ract, dtype.char == "f", wide,
              bool(go_backwards), bool(return_sequences), bool(zero_output_for_mask), out, T, D,
              uc, CW, nch, rb, sync, STEAL_SPINS, n, rec_p, gru, PH, RH, XS, ZS)
    h = hbuf[T % 2].copy()
    if return_sequences:
        return out, h
    last = h
    if mask is not None:
        keep = started & ~(bool(zero_output_for_mask) & (m[:, -1] == 0)) if T else started
        last = np.where(keep[:, None], h, 0).astype(dtype)
    elif T == 0:
        last = np.zeros_like(h)
    return last, h


# Polls of the step counter before a thread takes chunks another thread owns.
STEAL_SPINS = 200
