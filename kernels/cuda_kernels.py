"""numba.cuda kernels of the CUDA backend (the host side is ``gpulstm.kernels.cuda``).

Thread mapping (one layer, one sequence per launch):

* The grid is 1-D.  Block ``blk`` of ``n_blocks`` owns the hidden units
  ``[blk * upb, blk * upb + upb)`` for every batch row and computes all four gates
  of those units, so the activations and the c/h update of a unit need no data from
  another block: one grid-wide barrier per timestep (to publish h_t) is enough.
* Inside a block, a work item is one (batch row, unit) pair; ``ksplit`` threads
  (a power of two) share an item, each summing every ``ksplit``-th term of the four
  recurrent dot products; a shared-memory tree reduces the partial sums and the
  thread with ``ks == 0`` applies the activations, the c/h update and the mask.
* The block's slice of the recurrent weights is packed on the host as
  ``Rp[blk, j, g, k] = recurrent_kernel[k, g*U + blk*upb + j]`` so the ``ksplit``
  threads of an item read consecutive words (no bank conflicts) and the slice is
  one contiguous run that is copied to shared memory once per launch.
* h is double-buffered by step parity (``hbuf[k % 2]`` is read at step k,
  ``hbuf[1 - k % 2]`` written), so one barrier per step is enough.

Dynamic shared memory (float32 words), in this order: ``part`` (4 * nthreads
partial sums), ``h_s`` (bchunk * U: a chunk of h_tm1 rows), then the weight slice
(4 * upb * U) when ``w_in_smem``.

No warp shuffles or votes: the same code runs in numba's simulator.
"""
import threading

import numba
from numba import cuda

from gpulstm.kernels.activations import activate

float32 = numba.float32

_lock = threading.Lock()
_built = {}


def smem_words(nthreads, bchunk, U, upb, w_in_smem):
    """float32 words of dynamic shared memory one block needs."""
    return 4 * nthreads + bchunk * U + (4 * upb * U if w_in_smem else 0)


def _user_device(fn):
    if isinstance(fn, numba.core.dispatcher.Dispatcher):
        return fn
    return numba.njit(fn)


def _make_apply(user):
    if user is None:
        def apply(code, x):
            return activate(code, x)
    else:
        ufn = _user_device(user)

        def apply(code, x):
            return ufn(x)
    return cuda.jit(device=True)(apply)


def kernels(act_user=None, ract_user=None):
    """``(persistent_cg_kernel, persistent_flag_kernel, step_kernel)`` for one pair.

    ``act_user`` / ``ract_user`` are user callables (None: the built-in switch on
    the integer code).  Built once per pair and cached: numba freezes the device
    functions a kernel calls at compile time.
    """
    key = (act_user, ract_user)
    with _lock:
        got = _built.get(key)
        if got is None:
            got = _build(_make_apply(act_user), _make_apply(ract_user))
            _built[key] = got
        return got


def _build(act_f, ract_f):
    @cuda.jit(device=True)
    def step_block(k, blk, xp, W, w_off, hbuf, c, last, seq, mask, rm, dyn, h_base,
                   act, ract, go_backwards, zero_output, return_sequences,
                   upb, ksplit, bchunk):
        """One timestep of block ``blk``: its units for every batch row.

        xp (B, T, G) input projection (bias included); W 1-D weights, the block's
        slice starting at w_off in [j, g, k] order; hbuf (2, B, U); c (B, U) and
        last (B, U) written in place for the owned units; seq (B, T, U) written when
        return_sequences; mask (B, T) uint8 or (0, 0); rm (B, 4, U) or (0, 0, 0).
        dyn is the block's shared memory: part at 0, h_s at h_base.
        """
        tid = cuda.threadIdx.x
        nthr = cuda.blockDim.x
        B = c.shape[0]
        U = c.shape[1]
        T = xp.shape[1]
        t = T - 1 - k if go_backwards else k
        p = k % 2
        has_mask = mask.shape[0] > 0
        has_rm = rm.shape[0] > 0
        j0 = blk * upb
        nj = min(upb, U - j0)
        per = nthr // ksplit
        it_local = tid // ksplit
        ks = tid % ksplit
        for b0 in range(0, B, bchunk):
            nb = min(bchunk, B - b0)
            n_items = nb * nj if nj > 0 else 0
            cuda.syncthreads()  # h_s of the previous chunk is no longer read
            for idx in range(tid, nb * U, nthr):
                dyn[h_base + idx] = hbuf[p, b0 + idx // U, idx % U]
            cuda.syncthreads()
            for it0 in range(0, n_items, per):
                item = it0 + it_local
                a_i = float32(0.0)
                a_f = float32(0.0)
                a_c = float32(0.0)
                a_o = float32(0.0)
                bl = 0
                j = 0
                x_i = float32(0.0)
                x_f = float32(0.0)
                x_c = float32(0.0)
                x_o = float32(0.0)
                c_tm1 = float32(0.0)
                if item < n_items:
                    bl = item // nj
                    j = item % nj
                    if ks == 0:
                        # issue the global loads now: they land while the dot runs
                        b = b0 + bl
                        u = j0 + j
                        x_i = xp[b, t, u]
                        x_f = xp[b, t, U + u]
                        x_c = xp[b, t, 2 * U + u]
                        x_o = xp[b, t, 3 * U + u]
                        c_tm1 = c[b, u]
                    row = w_off + j * 4 * U
                    hrow = h_base + bl * U
                    if has_rm:
                        b = b0 + bl
                        for kk in range(ks, U, ksplit):
                            hv = dyn[hrow + kk]
                            a_i += hv * rm[b, 0, kk] * W[row + kk]
                            a_f += hv * rm[b, 1, kk] * W[row + U + kk]
                            a_c += hv * rm[b, 2, kk] * W[row + 2 * U + kk]
                            a_o += hv * rm[b, 3, kk] * W[row + 3 * U + kk]
                    else:
                        for kk in range(ks, U, ksplit):
                            hv = dyn[hrow + kk]
                            a_i += hv * W[row + kk]
                            a_f += hv * W[row + U + kk]
                            a_c += hv * W[row + 2 * U + kk]
                            a_o += hv * W[row + 3 * U + kk]
                dyn[tid] = a_i
                dyn[nthr + tid] = a_f
                dyn[2 * nthr + tid] = a_c
                dyn[3 * nthr + tid] = a_o
                cuda.syncthreads()
                stride = ksplit // 2
                while stride > 0:
                    if ks < stride:
                        dyn[tid] += dyn[tid + stride]
                        dyn[nthr + tid] += dyn[nthr + tid + stride]
                        dyn[2 * nthr + tid] += dyn[2 * nthr + tid + stride]
                        dyn[3 * nthr + tid] += dyn[3 * nthr + tid + stride]
                    cuda.syncthreads()
                    stride //= 2
                if ks == 0 and item < n_items:
                    b = b0 + bl
                    u = j0 + j
                    keep = True
                    if has_mask:
                        keep = mask[b, t] != 0
                    if keep:
                        # z_* = x_t @ kernel + bias + h_tm1 @ recurrent_kernel
                        z_i = x_i + dyn[tid]
                        z_f = x_f + dyn[nthr + tid]
                        z_c = x_c + dyn[2 * nthr + tid]
                        z_o = x_o + dyn[3 * nthr + tid]
                        i_t = ract_f(ract, z_i)
                        f_t = ract_f(ract, z_f)
                        g_t = act_f(act, z_c)
                        o_t = ract_f(ract, z_o)
                        c_t = f_t * c_tm1 + i_t * g_t
                        c[b, u] = c_t
                        h_t = o_t * act_f(act, c[b, u])
                        hbuf[1 - p, b, u] = h_t
                        out = hbuf[1 - p, b, u]
                    else:
                        # masked: carry h and c, repeat the last output (or zeros)
                        hbuf[1 - p, b, u] = hbuf[p, b, u]
                        out = float32(0.0) if zero_output else last[b, u]
                    last[b, u] = out
                    if return_sequences:
                        seq[b, k, u] = out
                cuda.syncthreads()  # part is reused by the next pass

    @cuda.jit(device=True)
    def load_weights(blk, Rp, dyn, w_base, upb, U):
        tid = cuda.threadIdx.x
        n = 4 * upb * U
        src = blk * n
        for idx in range(tid, n, cuda.blockDim.x):
            dyn[w_base + idx] = Rp[src + idx]
        cuda.syncthreads()

    def persistent(barrier):
        # One launch runs the whole sequence; ``barrier`` publishes h_t grid-wide.
        @cuda.jit
        def lstm_persistent_kernel(xp, Rp, hbuf, c, last, seq, mask, rm, counter,
                                   act, ract, go_backwards, zero_output, return_sequences,
                                   upb, ksplit, bchunk, w_in_smem, T):
            """Whole sequence in one launch (grid: n_blocks x nthreads, 1-D).

            Writes hbuf, c, last, seq; counter (1,) int32 zeros (flag barrier).
            """
            dyn = cuda.shared.array(0, dtype=numba.float32)
            blk = cuda.blockIdx.x
            nblk = cuda.gridDim.x
            U = c.shape[1]
            h_base = 4 * cuda.blockDim.x
            w_base = h_base + bchunk * U
            if w_in_smem:
                load_weights(blk, Rp, dyn, w_base, upb, U)
            for k in range(T):
                if w_in_smem:
                    step_block(k, blk, xp, dyn, w_base, hbuf, c, last, seq, mask, rm, dyn,
                               h_base, act, ract, go_backwards, zero_output,
                               return_sequences, upb, ksplit, bchunk)
                else:
                    step_block(k, blk, xp, Rp, blk * 4 * upb * U, hbuf, c, last, seq, mask,
                               rm, dyn, h_base, act, ract, go_backwards, zero_output,
                               return_sequences, upb, ksplit, bchunk)
                barrier(counter, nblk * (k + 1))
        return lstm_persistent_kernel

    @cuda.jit(device=True)
    def cg_barrier(counter, target):
        cuda.cg.this_grid().sync()

    @cuda.jit(device=True)
    def flag_barrier(counter, target):
        # Monotonic arrival counter: no reset, so no second barrier per step.
        # Needs every block co-resident (the host checks occupancy).
        cuda.syncthreads()
        if cuda.threadIdx.x == 0:
            cuda.threadfence()
            cuda.atomic.add(counter, 0, 1)
            while cuda.atomic.add(counter, 0, 0) < target:
                pass
            cuda.threadfence()
        cuda.syncthreads()

    @cuda.jit
    def lstm_step_kernel(k, xp, Rp, hbuf, c, last, seq, mask, rm, act, ract,
                         go_backwards, zero_output, return_sequences, upb, ksplit, bchunk):
        """Timestep ``k`` only (grid: n_blocks x nthreads): the per-launch driver.

        Runs the same ``step_block`` as the persistent kernels, with the weights
        staged through shared memory, so the multi-block partition can be tested
        under the simulator.  Not used as the real-GPU path.
        """
        dyn = cuda.shared.array(0, dtype=numba.float32)
        blk = cuda.blockIdx.x
        U = c.shape[1]
        h_base = 4 * cuda.blockDim.x
        w_base = h_base + bchunk * U
        load_weights(blk, Rp, dyn, w_base, upb, U)
        step_block(k, blk, xp, dyn, w_base, hbuf, c, last, seq, mask, rm, dyn, h_base,
                   act, ract, go_backwards, zero_output, return_sequences, upb, ksplit,
                   bchunk)

    return persistent(cg_barrier), persistent(flag_barrier), lstm_step_kernel
