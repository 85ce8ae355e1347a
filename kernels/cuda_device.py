"""What the device allows the CUDA kernels: its facts, the shared-memory opt-in, co-residency.

Real GPU only (never called under the simulator); every answer is cached.
"""
from dataclasses import replace

import numba
from numba import cuda

from gpulstm.kernels.cuda_plan import WarpPlan

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
