"""The numba.cuda + CuPy backend: host side of ``lstm_forward``.

One CuPy GEMM projects every timestep, ``(B*T, D) @ (D, G) + bias`` in full fp32;
then one persistent kernel runs the whole recurrence in a single launch, one grid
barrier per timestep: by default ``cuda_warp`` (a warp per hidden unit, the block's
weights in shared memory as far as they fit, warp-shuffle reductions, float32
activations, flag barrier when every block is resident); ``cuda_kernels`` (the
first version) runs recurrent-dropout masks and serves as the benchmark baseline.
``prepare`` keeps the float32 / device copies and the packed recurrent weights of a
layer across calls.

Arrays: NumPy in gives NumPy out; CuPy or any ``__cuda_array_interface__`` input
gives CuPy out on the same device, on the caller's current CuPy stream.  Every call
allocates its own buffers (CuPy's pool), so concurrent calls share nothing mutable.

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
import threading
from dataclasses import replace

import numba
import numpy as np
from numba import cuda

from gpulstm._xp import is_device_array
from gpulstm.kernels.codes import CUSTOM
from gpulstm.kernels import cuda_graph as _cg
from gpulstm.kernels import cuda_kernels as _ck
from gpulstm.kernels import cuda_warp as _cw
from gpulstm.kernels.cuda_plan import (Plan, WarpPlan, make_plan, make_warp_plan,  # noqa: F401
                                       pack_recurrent)


def simulator():
    """True when numba runs CUDA kernels in its simulator."""
    try:
        from numba.cuda import config as _cfg
    except ImportError:  # built-in numba.cuda keeps config in numba.core
        from numba.core import config as _cfg
    return bool(getattr(_cfg, "ENABLE_CUDASIM", 0))


SIM = simulator()


def array_module(a):
    """The array module the layer should use for ``a``: CuPy for device input."""
    if not SIM and is_device_array(a):
        import cupy

        return cupy
    return np


# ---------------------------------------------------------------------------------
# device facts (real GPU only), cached per device id
_device_facts = {}


def _facts():
    dev = cuda.get_current_device()
    got = _device_facts.get(dev.id)
    if got is None:
        n_sm = dev.MULTIPROCESSOR_COUNT
        try:
            optin = dev.MAX_SHARED_MEMORY_PER_BLOCK_OPTIN
        except Exception:
            optin = 48 * 1024
        got = _device_facts[dev.id] = (n_sm, optin)
    return got


_smem_set = set()
_checked = {}  # (kernel, plan, U, builtin) -> the plan that actually runs


def _allow_smem(kern, nbytes):
    """Raise a kernel's dynamic shared memory limit above 48 KiB (numba-cuda #94).

    The limit is raised once per kernel to ``nbytes`` (callers pass the device's
    opt-in maximum: raising it step by step to each request left the occupancy
    query at 0 blocks for the first requests on an H200).
    """
    key = id(kern)
    if nbytes <= 48 * 1024 or key in _smem_set:
        return
    from cuda.bindings import driver as cu

    attr = cu.CUfunction_attribute.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES
    cufunc = kern._codelibrary.get_cufunc()
    h = cufunc.handle
    if isinstance(h, getattr(cu, "CUkernel", ())):
        err = cu.cuKernelSetAttribute(attr, nbytes, h, cu.CUdevice(cufunc.device.id))[0]
    else:
        err = cu.cuFuncSetAttribute(h, attr, nbytes)[0]
    if int(err) != 0:
        raise RuntimeError(f"cuFuncSetAttribute(MAX_DYNAMIC_SHARED_SIZE_BYTES={nbytes}) "
                           f"failed: {err}")
    _smem_set.add(key)


# ---------------------------------------------------------------------------------
def _codes(activation, recurrent_activation):
    act_user = activation if callable(activation) else None
    ract_user = recurrent_activation if callable(recurrent_activation) else None
    act = CUSTOM if act_user is not None else int(activation)
    ract = CUSTOM if ract_user is not None else int(recurrent_activation)
    return act, ract, act_user, ract_user


class Prepared:
    """Weights kept for one layer: float32 copies (device arrays on a GPU) and the
    packed recurrent weights per ``(n_blocks, upb)``, made once instead of per call."""

    def __init__(self, xp, kernel, recurrent_kernel, bias):
        f32 = np.float32
        self.kernel = None if kernel is None else xp.ascontiguousarray(xp.asarray(kernel, f32))
        self.recurrent_kernel = xp.ascontiguousarray(xp.asarray(recurrent_kernel, f32))
        self.bias = None if bias is None else xp.asarray(bias, f32)
        self._xp = xp
        self._packed = {}
        self._lock = threading.Lock()

    def packed(self, n_blocks, upb):
        key = (n_blocks, upb)
        with self._lock:
            got = self._packed.get(key)
            if got is None:
                got = self._packed[key] = pack_recurrent(self._xp, self.recurrent_kernel,
                                                         n_blocks, upb)
            return got


def prepare(kernel, recurrent_kernel, bias):
    """Upload / convert the weights once; pass the result as ``lstm_forward(prepared=)``."""
    if SIM:
        return Prepared(np, kernel, recurrent_kernel, bias)
    import cupy

    return Prepared(cupy, kernel, recurrent_kernel, bias)


def lstm_forward(x, kernel, recurrent_kernel, bias, h0, c0, mask, *, activation,
                 recurrent_activation, go_backwards=False, return_sequences=False,
                 zero_output_for_mask=False, x_proj=None, rec_masks=None, plan=None,
                 prepared=None):
    """CUDA LSTM forward pass; see ``gpulstm.dispatch`` for the contract.

    ``plan`` (a ``WarpPlan`` or a first-version ``Plan``) overrides the launch
    configuration (tests, benchmarks).  ``prepared`` (from ``prepare``) replaces
    ``kernel``, ``recurrent_kernel`` and ``bias``.
    """
    weights = (kernel if x_proj is None else None, recurrent_kernel,
               bias if x_proj is None else None)
    if SIM:
        return _forward_sim(x, prepared or Prepared(np, *weights), h0, c0, mask, activation,
                            recurrent_activation, go_backwards, return_sequences,
                            zero_output_for_mask, x_proj, rec_masks, plan)
    import cupy

    device_in = is_device_array(x if x_proj is None else x_proj)
    try:
        if prepared is None:
            prepared = Prepared(cupy, *weights)
        out = _forward_gpu(cupy, x, prepared, h0, c0, mask, activation,
                           recurrent_activation, go_backwards, return_sequences,
                           zero_output_for_mask, x_proj, rec_masks, plan)
    except cupy.cuda.memory.OutOfMemoryError as exc:
        raise MemoryError(
            "gpulstm: the GPU ran out of memory for this LSTM call "
            f"({exc}). Use a smaller batch, free device memory, or pass backend='cpu'."
        ) from None
    if device_in:
        return out
    return tuple(cupy.asnumpy(a) for a in out)


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


def _buffers(xm, h0, c0, mask, rec_masks, B, T, U, return_sequences):
    """Device (or host, simulator) state: hbuf, c, last, seq, mask, rec_masks."""
    f32 = np.float32
    hbuf = xm.empty((2, B, U), f32)
    hbuf[0] = xm.asarray(h0, dtype=f32)
    c = xm.array(xm.asarray(c0, dtype=f32), order="C", copy=True)
    last = xm.zeros((B, U), f32)
    seq = xm.empty((B, T, U), f32) if return_sequences else xm.empty((1, 1, 1), f32)
    m = (xm.ascontiguousarray(xm.asarray(mask), dtype=np.uint8) if mask is not None
         else xm.zeros((0, 0), np.uint8))
    rm = (xm.ascontiguousarray(xm.asarray(rec_masks, dtype=f32)) if rec_masks is not None
          else xm.zeros((0, 0, 0), f32))
    return hbuf, c, last, seq, m, rm


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


def _forward_gpu(cupy, x, prepared, h0, c0, mask, activation, recurrent_activation,
                 go_backwards, return_sequences, zero_output, x_proj, rec_masks, plan):
    stream = cupy.cuda.get_current_stream()
    U = prepared.recurrent_kernel.shape[0]
    xp, B, T = _project(cupy, x, prepared, x_proj)
    hbuf, c, last, seq, m, rm = _buffers(cupy, h0, c0, mask, rec_masks, B, T, U,
                                         return_sequences)
    n_sm, optin = _facts()
    if plan is None:
        plan = (make_plan(B, U, n_sm=n_sm, smem_optin=optin) if rec_masks is not None
                else make_warp_plan(B, U, n_sm=n_sm, smem_optin=optin))
    counter = _sync(cupy, plan, B, U)
    Rp = prepared.packed(plan.n_blocks, plan.upb)
    if T > 0:
        nstream = cuda.external_stream(stream.ptr)
        d = [cuda.as_cuda_array(a, sync=False) for a in (xp, Rp, hbuf, c, last, seq, m, rm,
                                                          counter)]
        _launch(plan, nstream, d, activation, recurrent_activation, go_backwards,
                zero_output, return_sequences, T, U, rec_masks is not None, caller=stream)
    h = hbuf[T % 2].copy()
    return (seq if return_sequences else last), h, c


def _launch(plan, stream, d, activation, recurrent_activation, go_backwards, zero_output,
            return_sequences, T, U, has_rm, caller=None):
    """Launch ``plan``'s kernel; on a real GPU check the shared memory and co-residency once.

    ``caller`` is the CuPy stream behind ``stream`` (real GPU only; the graph driver
    launches its graph there).
    """
    act, ract, act_user, ract_user = _codes(activation, recurrent_activation)
    flags = (act, ract, bool(go_backwards), bool(zero_output), bool(return_sequences))
    xp, Rp, hbuf, c, last, seq, m, rm, counter = d
    warp = isinstance(plan, WarpPlan)
    if warp and has_rm:
        raise ValueError("Expected a first-version Plan with rec_masks (recurrent dropout). "
                         f"Received: plan={plan!r}")
    if warp:
        k_cg, k_flag, k_tag, k_step = _cw.kernels(act_user, ract_user, plan.rb, plan.shuffle)
        tail = (plan.upb, plan.w_units)
        state = (xp, Rp, hbuf, c, last, seq, m)
        # the step kernel takes the sync array too (tags: each launch waits on them)
        step_state = (*state, counter, plan.barrier == "tag")
    else:
        if plan.barrier == "tag":
            raise ValueError("Expected barrier 'cg' or 'flag' for a first-version Plan (the "
                             f"tag exchange is WarpPlan's). Received: plan={plan!r}")
        k_cg, k_flag, k_step = _ck.kernels(act_user, ract_user)
        k_tag = None
        tail = (plan.upb, plan.ksplit, plan.bchunk)
        state = step_state = (xp, Rp, hbuf, c, last, seq, m, rm)
    smem = plan.smem_bytes(U)
    if plan.driver == "graph" and not SIM:
        import cupy

        def step(k, ns):
            k_step[plan.n_blocks, plan.nthreads, ns, smem](k, *step_state, *flags, *tail)

        if smem > 48 * 1024:
            _allow_smem(k_step.compile(tuple(numba.typeof(a) for a in
                                             (0, *step_state, *flags, *tail))), _facts()[1])
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
            k_step[plan.n_blocks, plan.nthreads, stream, smem](k, *step_state, *flags, *tail)
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
                       zero_output, return_sequences, T, U, has_rm)
    kern[plan.n_blocks, plan.nthreads, stream, smem](*args)


def _fit(kern, plan, args, smem, U):
    """The plan that can run: every block co-resident (cooperative or flag barrier)."""
    # compile first so the opt-in and the co-residency check see the kernel
    overload = kern.compile(tuple(numba.typeof(a) for a in args))
    if smem > 48 * 1024:
        _allow_smem(overload, _facts()[1])
    limit = overload.max_cooperative_grid_blocks(plan.nthreads, smem)
    if plan.n_blocks <= limit:
        return plan
    if isinstance(plan, WarpPlan) and plan.w_units > 0:
        # fewer weights on chip: smaller blocks, more of them resident
        return replace(plan, w_units=plan.w_units // 2)
    if not isinstance(plan, WarpPlan) and plan.w_in_smem:
        return replace(plan, w_in_smem=False, bchunk=1)
    raise RuntimeError(
        f"gpulstm: {plan.n_blocks} blocks of {plan.nthreads} threads with {smem} B shared "
        f"memory cannot all be resident (limit {limit}). Pass a plan with fewer blocks.")


# ---------------------------------------------------------------------------------
def _forward_sim(x, prepared, h0, c0, mask, activation, recurrent_activation, go_backwards,
                 return_sequences, zero_output, x_proj, rec_masks, plan):
    U = prepared.recurrent_kernel.shape[0]
    xp, B, T = _project(np, x, prepared, x_proj)
    if plan is None:
        # the simulator is correct for a grid barrier with one block only
        plan = (make_plan(B, U, n_blocks=1, nthreads=32, smem_optin=48 * 1024)
                if rec_masks is not None else
                make_warp_plan(B, U, n_blocks=1, nthreads=32, smem_optin=48 * 1024,
                               shuffle=False))
    if plan.driver == "persistent" and plan.n_blocks != 1:
        raise ValueError("Expected n_blocks=1 for the persistent kernel under the CUDA "
                         f"simulator. Received: n_blocks={plan.n_blocks}; use driver='step'.")
    if getattr(plan, "shuffle", False):
        raise ValueError("Expected shuffle=False under the CUDA simulator (it has no warp "
                         f"shuffles). Received: plan={plan!r}")
    host = _buffers(np, h0, c0, mask, rec_masks, B, T, U, return_sequences)
    Rp = prepared.packed(plan.n_blocks, plan.upb)
    d = [cuda.to_device(a) for a in (xp, Rp) + host + (_sync(np, plan, B, U),)]
    if T > 0:
        _launch(plan, 0, d, activation, recurrent_activation, go_backwards, zero_output,
                return_sequences, T, U, rec_masks is not None)
    hbuf, c, last, seq = (a.copy_to_host() for a in d[2:6])
    return (seq if return_sequences else last), hbuf[T % 2].copy(), c


__all__ = ["lstm_forward", "prepare", "array_module", "is_device_array", "make_plan",
           "make_warp_plan", "Plan", "WarpPlan", "simulator", "pack_recurrent"]
