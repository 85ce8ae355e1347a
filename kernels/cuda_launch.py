"""One call of the CUDA backend on its kernels: the fp32 projection, the state buffers
and synchronisation array, the default plan, and the launch of the plan's kernel
(persistent, per-step or CUDA-graph driver); ``cuda`` holds the entry points and the
prepared weights.

Under ``NUMBA_ENABLE_CUDASIM=1`` the kernels run in numba's simulator and NumPy does
the projection (CuPy cannot run there); the simulator runs one block per grid
barrier correctly only, so it runs the persistent kernel with one block and tests
multi-block partitions through the per-step driver (``plan`` with ``driver='step'``),
and the warp kernel's shuffles are emulated in shared memory (``shuffle=False``).

``barrier='tag'`` (``WarpPlan``, opt-in, not yet run on a GPU) drops the grid barrier:
each h entry carries the step it belongs to (a (2, B, U) int32 tag array), and a block
waits only for the entries it reads, with atomics (L2) instead of a counter, fences
and a reload.

``driver='graph'`` (opt-in, not yet timed on a GPU) runs the per-step kernel over
the whole grid and replays its launches from a CUDA graph (``cuda_graph``): the
issue's path for weights that do not fit on chip, beside the persistent kernel that
reads them from L2.
"""
import numba
import numpy as np
from numba import cuda

from gpulstm.kernels.codes import CUSTOM
from gpulstm.kernels import cuda_cells as _cells
from gpulstm.kernels import cuda_graph as _cg
from gpulstm.kernels import cuda_kernels as _ck
from gpulstm.kernels import cuda_warp as _cw
from gpulstm.kernels.cuda_device import _allow_smem, _checked, _facts, _fit
from gpulstm.kernels.cuda_plan import WarpPlan, make_plan, make_warp_plan


def simulator():
    """True when numba runs CUDA kernels in its simulator."""
    try:
        from numba.cuda import config as _cfg
    except ImportError:  # built-in numba.cuda keeps config in numba.core
        from numba.core import config as _cfg
    return bool(getattr(_cfg, "ENABLE_CUDASIM", 0))


SIM = simulator()


def _codes(activation, recurrent_activation):
    act_user = activation if callable(activation) else None
    ract_user = recurrent_activation if callable(recurrent_activation) else None
    act = CUSTOM if act_user is not None else int(activation)
    ract = CUSTOM if ract_user is not None else int(recurrent_activation)
    return act, ract, act_user, ract_user


def _sync(xm, plan, B, U):
    """The kernel's synchronisation array: the flag barrier's arrival counter ((1,)
    for ``Plan``, (1, 1, 1) for ``WarpPlan``) or the tag exchange's (2, B, U) step
    tags (h0 in parity 0 is step 0's input)."""
    if not isinstance(plan, WarpPlan):
        return xm.zeros(1, np.int32)
    if plan.barrier != "tag":
        return xm.zeros((1, 1, 1), np.int32)
    tags = xm.full((2, B, U), -1, np.int32)
    tags[0] = 0
    return tags


def _first_version(cell, rec_masks):
    """Whether the default plan is the first-version kernel's: the LSTM's recurrent
    dropout stays there until a GPU run has validated the warp driver's masked LSTM."""
    return rec_masks is not None and cell is _cells.LSTM


def _buffers(xm, cell, h0, c0, mask, rec_masks, B, T, U, return_sequences):
    """Device (or host, simulator) state: hbuf, c, aux, last, seq, mask, rec_masks
    (c: (0, 0) for cells without one; aux: (2, B, U) for two-phase cells)."""
    f32 = np.float32
    rm = (xm.ascontiguousarray(xm.asarray(rec_masks, dtype=f32)) if rec_masks is not None
          else xm.zeros((0, 0, 0), f32))
    if rec_masks is not None and rm.shape != (B, cell.gates, U):
        raise ValueError(
            f"Expected recurrent dropout masks of shape (batch, gates, units) = "
            f"{(B, cell.gates, U)} for the {cell.name} cell. Received: rec_masks of shape "
            f"{rm.shape}. To fix it: pass one mask per batch row, gate and unit.")
    hbuf = xm.empty((2, B, U), f32)
    hbuf[0] = xm.asarray(h0, dtype=f32)
    c = (xm.array(xm.asarray(c0, dtype=f32), order="C", copy=True) if cell.has_c
         else xm.zeros((0, 0), f32))
    aux = xm.zeros((2, B, U) if len(cell.phases) > 1 else (1, 1, 1), f32)
    last = xm.zeros((B, U), f32)
    seq = xm.empty((B, T, U), f32) if return_sequences else xm.empty((1, 1, 1), f32)
    m = (xm.ascontiguousarray(xm.asarray(mask), dtype=np.uint8) if mask is not None
         else xm.zeros((0, 0), np.uint8))
    return hbuf, c, aux, last, seq, m, rm


def _rec_bias(xm, cell, prepared):
    """The recurrent bias the cell reads (zeros when the layer has none), else (0,)."""
    if cell.rec_bias and prepared.rec_bias.shape[0] == 0:
        return xm.zeros(prepared.recurrent_kernel.shape[1], np.float32)
    return prepared.rec_bias


def _project(xm, x, prepared, x_proj):
    f32 = np.float32
    G = prepared.recurrent_kernel.shape[1]
    if x_proj is not None:
        xp = xm.ascontiguousarray(xm.asarray(x_proj, dtype=f32))
        return xp, xp.shape[0], xp.shape[1]
    xd = xm.asarray(x, dtype=f32)
    B, T, D = xd.shape
    # xp is (B, T, G): one fp32 GEMM for all timesteps (CUPY_TF32 must stay 0)
    xp = xm.matmul(xd.reshape(B * T, D), prepared.kernel)
    if prepared.bias is not None:
        xp += prepared.bias
    return xm.ascontiguousarray(xp.reshape(B, T, G), dtype=f32), B, T


def _forward_gpu(cupy, cell, x, prepared, h0, c0, mask, activation, recurrent_activation,
                 go_backwards, return_sequences, zero_output, x_proj, rec_masks, plan):
    stream = cupy.cuda.get_current_stream()
    U = prepared.recurrent_kernel.shape[0]
    xp, B, T = _project(cupy, x, prepared, x_proj)
    hbuf, c, aux, last, seq, m, rm = _buffers(cupy, cell, h0, c0, mask, rec_masks, B, T, U,
                                              return_sequences)
    n_sm, optin = _facts()
    if plan is None:
        plan = (make_plan(B, U, n_sm=n_sm, smem_optin=optin) if _first_version(cell, rec_masks)
                else make_warp_plan(B, U, n_sm=n_sm, smem_optin=optin, gates=cell.gates))
    counter = _sync(cupy, plan, B, U)
    Rp = prepared.packed(plan.n_blocks, plan.upb)
    if T > 0:
        nstream = cuda.external_stream(stream.ptr)
        d = [cuda.as_cuda_array(a, sync=False) for a in (xp, Rp, _rec_bias(cupy, cell, prepared), hbuf, c,
                                                          aux, last, seq, m, rm, counter)]
        _launch(plan, nstream, d, activation, recurrent_activation, go_backwards,
                zero_output, return_sequences, T, U, rec_masks is not None, caller=stream,
                cell=cell)
    h = hbuf[T % 2].copy()
    return (seq if return_sequences else last), h, (c if cell.has_c else None)


def _launch(plan, stream, d, activation, recurrent_activation, go_backwards, zero_output,
            return_sequences, T, U, has_rm, caller=None, cell=_cells.LSTM):
    """Launch ``plan``'s kernel for ``cell``; on a real GPU check the shared memory and
    co-residency once.

    ``caller`` is the CuPy stream behind ``stream`` (real GPU only; the graph driver
    launches its graph there).
    """
    act, ract, act_user, ract_user = _codes(activation, recurrent_activation)
    flags = (act, ract, bool(go_backwards), bool(zero_output), bool(return_sequences))
    xp, Rp, brec, hbuf, c, aux, last, seq, m, rm, counter = d
    warp = isinstance(plan, WarpPlan)
    phases = (0,)
    if warp:
        if plan.gates != cell.gates:
            raise ValueError(f"Expected a WarpPlan with gates={cell.gates} for the {cell.name} "
                             f"cell. Received: plan={plan!r}")
        phases = tuple(range(len(cell.phases)))
        if plan.barrier == "tag" and len(phases) > 1:
            raise ValueError(f"Expected barrier 'flag' or 'cg' for the {cell.name} cell (two "
                             f"products per step; the tag exchange has one). Received: "
                             f"plan={plan!r}")
        k_cg, k_flag, k_tag, k_step = _cw.kernels(act_user, ract_user, plan.rb, plan.shuffle,
                                                  cell, masked=has_rm)
        tail = (plan.upb, plan.w_units)
        state = (xp, Rp, brec, hbuf, c, aux, last, seq, m, rm)
        # the step kernel takes the sync array too (tags: each launch waits on them)
        step_state = (*state, counter, plan.barrier == "tag")
    else:
        if cell is not _cells.LSTM:
            raise ValueError(f"Expected a WarpPlan for the {cell.name} cell (the first-version "
                             f"kernel runs the LSTM only). Received: plan={plan!r}")
        if plan.barrier == "tag":
            raise ValueError("Expected barrier 'cg' or 'flag' for a first-version Plan (the "
                             f"tag exchange is WarpPlan's). Received: plan={plan!r}")
        k_cg, k_flag, k_step = _ck.kernels(act_user, ract_user)
        k_tag = None
        tail = (plan.upb, plan.ksplit, plan.bchunk)
        state = step_state = (xp, Rp, hbuf, c, last, seq, m, rm)
    smem = plan.smem_bytes(U)

    def step(k, ns):
        # the warp step kernel takes (k, phase), the first version (k)
        for ph in phases:
            lead = (k, ph) if warp else (k,)
            k_step[plan.n_blocks, plan.nthreads, ns, smem](*lead, *step_state, *flags, *tail)

    if plan.driver == "graph" and not SIM:
        import cupy

        if smem > 48 * 1024:
            lead = (0, 0) if warp else (0,)
            _allow_smem(k_step.compile(tuple(numba.typeof(a) for a in
                                             (*lead, *step_state, *flags, *tail))), _facts()[1])
        # what the captured launches bake in (cuda_graph): every pointer and scalar
        arrays = state + ((counter,) if warp else ())
        key = (id(k_step), plan, flags, tail, smem, T, cupy.cuda.Device().id,
               tuple((a.__cuda_array_interface__["data"][0], a.shape, a.strides)
                     for a in arrays))
        _cg.run_steps(cupy, cuda.external_stream, caller, key, T, step)
        return
    if plan.driver in ("step", "graph"):
        # one launch per step: the multi-block test driver (and, under the simulator,
        # the graph driver's launches without the capture)
        for k in range(T):
            step(k, stream)
        return
    kern = {"cg": k_cg, "flag": k_flag, "tag": k_tag}.get(plan.barrier)
    if kern is None:
        raise ValueError("Expected barrier 'flag', 'cg' or (WarpPlan) 'tag'. Received: "
                         f"barrier={plan.barrier!r} in plan={plan!r}")
    args = (*state, counter, *flags, *tail) + (() if warp else (plan.w_in_smem,)) + (T,)
    if SIM:
        kern[plan.n_blocks, plan.nthreads, stream, smem](*args)
        return
    key = (id(kern), plan, U, act_user is None and ract_user is None)
    effective = _checked.get(key)
    if effective is None:
        effective = _checked[key] = _fit(kern, plan, args, smem, U)
    if effective != plan:
        return _launch(effective, stream, d, activation, recurrent_activation, go_backwards,
                       zero_output, return_sequences, T, U, has_rm, cell=cell)
    kern[plan.n_blocks, plan.nthreads, stream, smem](*args)


# ---------------------------------------------------------------------------------
def _forward_sim(cell, x, prepared, h0, c0, mask, activation, recurrent_activation,
                 go_backwards, return_sequences, zero_output, x_proj, rec_masks, plan):
    U = prepared.recurrent_kernel.shape[0]
    xp, B, T = _project(np, x, prepared, x_proj)
    if plan is None:
        # the simulator is correct for a grid barrier with one block only
        plan = (make_plan(B, U, n_blocks=1, nthreads=32, smem_optin=48 * 1024)
                if _first_version(cell, rec_masks) else
                make_warp_plan(B, U, n_blocks=1, nthreads=32, smem_optin=48 * 1024,
                               shuffle=False, gates=cell.gates))
    if plan.driver == "persistent" and plan.n_blocks != 1:
        raise ValueError("Expected n_blocks=1 for the persistent kernel under the CUDA "
                         f"simulator. Received: n_blocks={plan.n_blocks}; use driver='step'.")
    if getattr(plan, "shuffle", False):
        raise ValueError("Expected shuffle=False under the CUDA simulator (it has no warp "
                         f"shuffles). Received: plan={plan!r}")
    host = _buffers(np, cell, h0, c0, mask, rec_masks, B, T, U, return_sequences)
    Rp = prepared.packed(plan.n_blocks, plan.upb)
    d = [cuda.to_device(a) for a in (xp, Rp, _rec_bias(np, cell, prepared)) + host
         + (_sync(np, plan, B, U),)]
    if T > 0:
        _launch(plan, 0, d, activation, recurrent_activation, go_backwards, zero_output,
                return_sequences, T, U, rec_masks is not None, cell=cell)
    hbuf, c, aux, last, seq = (a.copy_to_host() for a in d[3:8])
    return ((seq if return_sequences else last), hbuf[T % 2].copy(),
            (c if cell.has_c else None))
