"""The numba.cuda + CuPy backend: host side of ``lstm_forward``.

One CuPy GEMM projects every timestep, ``(B*T, D) @ (D, G) + bias`` in full fp32;
then one persistent kernel (``cuda_kernels``) runs the whole recurrence in a single
launch, its block's slice of the recurrent weights in shared memory when it fits
(else read from global memory / L2 every step), one grid barrier per timestep.

Arrays: NumPy in gives NumPy out; CuPy or any ``__cuda_array_interface__`` input
gives CuPy out on the same device, on the caller's current CuPy stream.  Every call
allocates its own buffers (CuPy's pool), so concurrent calls share nothing mutable.

Under ``NUMBA_ENABLE_CUDASIM=1`` the kernels run in numba's simulator and NumPy does
the projection (CuPy cannot run there); the simulator runs one block per grid
barrier correctly only, so it runs the persistent kernel with one block and tests
multi-block partitions through the per-step driver (``plan`` with ``driver='step'``).
"""
import sys
from dataclasses import dataclass, replace

import numba
import numpy as np
from numba import cuda

from gpulstm.activations import CUSTOM
from gpulstm.kernels import cuda_kernels as _ck


def simulator():
    """True when numba runs CUDA kernels in its simulator."""
    try:
        from numba.cuda import config as _cfg
    except ImportError:  # built-in numba.cuda keeps config in numba.core
        from numba.core import config as _cfg
    return bool(getattr(_cfg, "ENABLE_CUDASIM", 0))


SIM = simulator()


def is_device_array(a):
    """A CuPy array or any object exposing ``__cuda_array_interface__`` (no import)."""
    cp = sys.modules.get("cupy")
    if cp is not None and isinstance(a, cp.ndarray):
        return True
    try:
        return getattr(a, "__cuda_array_interface__", None) is not None
    except Exception:  # torch raises on CPU tensors
        return False


def array_module(a):
    """The array module the layer should use for ``a``: CuPy for device input."""
    if not SIM and is_device_array(a):
        import cupy

        return cupy
    return np


@dataclass(frozen=True)
class Plan:
    """Launch configuration of one call (see ``cuda_kernels`` for the mapping)."""
    n_blocks: int
    upb: int          # hidden units per block
    nthreads: int
    ksplit: int       # threads per (row, unit) item, a power of two
    bchunk: int       # batch rows staged in shared memory at a time
    w_in_smem: bool
    driver: str = "persistent"   # "persistent" (one launch) or "step" (tests only)
    barrier: str = "cg"          # "cg" (cooperative grid sync) or "flag"

    def smem_bytes(self, U):
        return 4 * _ck.smem_words(self.nthreads, self.bchunk, U, self.upb, self.w_in_smem)


def _pow2_floor(n):
    return 1 << (max(1, int(n)).bit_length() - 1)


def make_plan(B, U, n_sm=132, smem_optin=227 * 1024, nthreads=256, n_blocks=None,
              **overrides):
    """Pick blocks, units per block, thread split and whether weights fit on chip."""
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
def pack_recurrent(xp, recurrent_kernel, n_blocks, upb):
    """``Rp`` 1-D: ``Rp[blk, j, g, k] = recurrent_kernel[k, g*U + blk*upb + j]``."""
    U = recurrent_kernel.shape[0]
    r = recurrent_kernel.reshape(U, 4, U)           # [k, g, u]
    pad = n_blocks * upb - U
    if pad:
        r = xp.concatenate([r, xp.zeros((U, 4, pad), r.dtype)], axis=2)
    r = r.transpose(2, 1, 0)                        # [u, g, k]
    return xp.ascontiguousarray(r, dtype=np.float32).reshape(-1)


def _codes(activation, recurrent_activation):
    act_user = activation if callable(activation) else None
    ract_user = recurrent_activation if callable(recurrent_activation) else None
    act = CUSTOM if act_user is not None else int(activation)
    ract = CUSTOM if ract_user is not None else int(recurrent_activation)
    return act, ract, act_user, ract_user


def lstm_forward(x, kernel, recurrent_kernel, bias, h0, c0, mask, *, activation,
                 recurrent_activation, go_backwards=False, return_sequences=False,
                 zero_output_for_mask=False, x_proj=None, rec_masks=None, plan=None):
    """CUDA LSTM forward pass; see ``gpulstm.dispatch`` for the contract.

    ``plan`` (a ``Plan``) overrides the launch configuration (tests, benchmarks).
    """
    if SIM:
        return _forward_sim(x, kernel, recurrent_kernel, bias, h0, c0, mask, activation,
                            recurrent_activation, go_backwards, return_sequences,
                            zero_output_for_mask, x_proj, rec_masks, plan)
    import cupy

    device_in = is_device_array(x if x_proj is None else x_proj)
    try:
        out = _forward_gpu(cupy, x, kernel, recurrent_kernel, bias, h0, c0, mask,
                           activation, recurrent_activation, go_backwards,
                           return_sequences, zero_output_for_mask, x_proj, rec_masks, plan)
    except cupy.cuda.memory.OutOfMemoryError as exc:
        raise MemoryError(
            "gpulstm: the GPU ran out of memory for this LSTM call "
            f"({exc}). Use a smaller batch, free device memory, or pass backend='cpu'."
        ) from None
    if device_in:
        return out
    return tuple(cupy.asnumpy(a) for a in out)


def _forward_gpu(cupy, x, kernel, recurrent_kernel, bias, h0, c0, mask, activation,
                 recurrent_activation, go_backwards, return_sequences, zero_output,
                 x_proj, rec_masks, plan):
    f32 = np.float32
    stream = cupy.cuda.get_current_stream()
    rk = cupy.asarray(recurrent_kernel, dtype=f32)
    U = rk.shape[0]
    G = 4 * U
    if x_proj is None:
        xd = cupy.asarray(x, dtype=f32)
        B, T, D = xd.shape
        # xp is (B, T, G): one fp32 GEMM for all timesteps (CUPY_TF32 must stay 0)
        xp = cupy.matmul(xd.reshape(B * T, D), cupy.asarray(kernel, dtype=f32))
        if bias is not None:
            xp += cupy.asarray(bias, dtype=f32)
        xp = xp.reshape(B, T, G)
    else:
        xp = cupy.ascontiguousarray(cupy.asarray(x_proj, dtype=f32))
        B, T, _ = xp.shape
    hbuf = cupy.empty((2, B, U), f32)
    hbuf[0] = cupy.asarray(h0, dtype=f32)
    c = cupy.array(cupy.asarray(c0, dtype=f32), order="C", copy=True)
    last = cupy.zeros((B, U), f32)
    seq = cupy.empty((B, T, U), f32) if return_sequences else cupy.empty((1, 1, 1), f32)
    m = (cupy.ascontiguousarray(cupy.asarray(mask), dtype=np.uint8) if mask is not None
         else cupy.zeros((0, 0), np.uint8))
    rm = (cupy.ascontiguousarray(cupy.asarray(rec_masks, dtype=f32)) if rec_masks is not None
          else cupy.zeros((0, 0, 0), f32))
    counter = cupy.zeros(1, np.int32)
    n_sm, optin = _facts()
    if plan is None:
        plan = make_plan(B, U, n_sm=n_sm, smem_optin=optin)
    Rp = pack_recurrent(cupy, rk, plan.n_blocks, plan.upb)
    if T > 0:
        _launch(plan, stream, [xp, Rp, hbuf, c, last, seq, m, rm, counter], activation,
                recurrent_activation, go_backwards, zero_output, return_sequences, T, U)
    h = hbuf[T % 2].copy()
    return (seq if return_sequences else last), h, c


def _launch(plan, stream, arrays, activation, recurrent_activation, go_backwards,
            zero_output, return_sequences, T, U):
    act, ract, act_user, ract_user = _codes(activation, recurrent_activation)
    k_cg, k_flag, k_step = _ck.kernels(act_user, ract_user)
    nstream = cuda.external_stream(stream.ptr)
    d = [cuda.as_cuda_array(a, sync=False) for a in arrays]
    xp, Rp, hbuf, c, last, seq, m, rm, counter = d
    smem = plan.smem_bytes(U)
    flags = (act, ract, bool(go_backwards), bool(zero_output), bool(return_sequences))
    if plan.driver == "step":
        for k in range(T):
            k_step[plan.n_blocks, plan.nthreads, nstream, smem](
                k, xp, Rp, hbuf, c, last, seq, m, rm, *flags, plan.upb, plan.ksplit,
                plan.bchunk)
        return
    kern = k_cg if plan.barrier == "cg" else k_flag
    args = (xp, Rp, hbuf, c, last, seq, m, rm, counter, *flags, plan.upb, plan.ksplit,
            plan.bchunk, plan.w_in_smem, T)
    configured = kern[plan.n_blocks, plan.nthreads, nstream, smem]
    key = (id(kern), plan, U, act_user is None and ract_user is None)
    effective = _checked.get(key)
    if effective is not None and effective != plan:
        return _launch(effective, stream, arrays, activation, recurrent_activation,
                       go_backwards, zero_output, return_sequences, T, U)
    if effective is None:
        # compile first so the opt-in and the co-residency check see the kernel
        sig = tuple(numba.typeof(a) for a in args)
        overload = kern.compile(sig)
        if smem > 48 * 1024:
            _allow_smem(overload, _facts()[1])
        limit = overload.max_cooperative_grid_blocks(plan.nthreads, smem)
        if plan.n_blocks > limit and plan.w_in_smem:
            # weights do not fit on chip after all: read them from global memory / L2
            small = replace(plan, w_in_smem=False, bchunk=1)
            _checked[key] = small
            return _launch(small, stream, arrays, activation, recurrent_activation,
                           go_backwards, zero_output, return_sequences, T, U)
        if plan.n_blocks > limit:
            raise RuntimeError(
                f"gpulstm: {plan.n_blocks} blocks of {plan.nthreads} threads with "
                f"{smem} B shared memory cannot all be resident (limit {limit}). "
                "Pass a plan with fewer blocks.")
        _checked[key] = plan
    configured(*args)


# ---------------------------------------------------------------------------------
def _forward_sim(x, kernel, recurrent_kernel, bias, h0, c0, mask, activation,
                 recurrent_activation, go_backwards, return_sequences, zero_output,
                 x_proj, rec_masks, plan):
    f32 = np.float32
    rk = np.asarray(recurrent_kernel, dtype=f32)
    U = rk.shape[0]
    if x_proj is None:
        x = np.asarray(x, dtype=f32)
        B, T, D = x.shape
        xp = (x.reshape(B * T, D) @ np.asarray(kernel, dtype=f32)).reshape(B, T, 4 * U)
        if bias is not None:
            xp = xp + np.asarray(bias, dtype=f32)
    else:
        xp = np.asarray(x_proj, dtype=f32)
        B, T, _ = xp.shape
    xp = np.ascontiguousarray(xp, dtype=f32)
    if plan is None:
        # the simulator is correct for a grid barrier with one block only
        plan = make_plan(B, U, n_blocks=1, nthreads=32, smem_optin=48 * 1024)
    if plan.driver != "step" and plan.n_blocks != 1:
        raise ValueError("Expected n_blocks=1 for the persistent kernel under the CUDA "
                         f"simulator. Received: n_blocks={plan.n_blocks}; use driver='step'.")
    hbuf = np.empty((2, B, U), f32)
    hbuf[0] = np.asarray(h0, dtype=f32)
    c = np.array(c0, dtype=f32, order="C", copy=True)
    last = np.zeros((B, U), f32)
    seq = np.empty((B, T, U), f32) if return_sequences else np.empty((1, 1, 1), f32)
    m = (np.ascontiguousarray(mask, dtype=np.uint8) if mask is not None
         else np.zeros((0, 0), np.uint8))
    rm = (np.ascontiguousarray(rec_masks, dtype=f32) if rec_masks is not None
          else np.zeros((0, 0, 0), f32))
    counter = np.zeros(1, np.int32)
    Rp = pack_recurrent(np, rk, plan.n_blocks, plan.upb)
    d = [cuda.to_device(a) for a in (xp, Rp, hbuf, c, last, seq, m, rm, counter)]
    if T > 0:
        _launch_sim(plan, d, activation, recurrent_activation, go_backwards, zero_output,
                    return_sequences, T, U)
    hbuf, c, last, seq = (d[2].copy_to_host(), d[3].copy_to_host(), d[4].copy_to_host(),
                          d[5].copy_to_host())
    return (seq if return_sequences else last), hbuf[T % 2].copy(), c


def _launch_sim(plan, d, activation, recurrent_activation, go_backwards, zero_output,
                return_sequences, T, U):
    act, ract, act_user, ract_user = _codes(activation, recurrent_activation)
    k_cg, k_flag, k_step = _ck.kernels(act_user, ract_user)
    xp, Rp, hbuf, c, last, seq, m, rm, counter = d
    smem = plan.smem_bytes(U)
    flags = (act, ract, bool(go_backwards), bool(zero_output), bool(return_sequences))
    if plan.driver == "step":
        for k in range(T):
            k_step[plan.n_blocks, plan.nthreads, 0, smem](
                k, xp, Rp, hbuf, c, last, seq, m, rm, *flags, plan.upb, plan.ksplit,
                plan.bchunk)
        return
    kern = k_cg if plan.barrier == "cg" else k_flag
    kern[plan.n_blocks, plan.nthreads, 0, smem](
        xp, Rp, hbuf, c, last, seq, m, rm, counter, *flags, plan.upb, plan.ksplit,
        plan.bchunk, plan.w_in_smem, T)


__all__ = ["lstm_forward", "array_module", "is_device_array", "make_plan", "Plan",
           "simulator", "pack_recurrent"]
