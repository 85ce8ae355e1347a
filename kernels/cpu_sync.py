"""Atomic counters for the CPU kernels' own work sharing (LLVM atomics through numba).

numba's ``prange`` hands each thread a fixed share of the iterations: one thread the
OS deschedules (a busy machine) then holds the whole call up.  The threaded drivers
of ``cpu_split`` instead let threads *claim* work items from shared counters, so any
thread that runs can do any item and a late thread finds its share already done.

``counter`` is an int64 array; every operation is sequentially consistent, so what a
thread wrote before ``fetch_add`` / ``cas`` is visible to a thread that reads the
new value.  ``relax()`` is the body of a wait loop: it yields the CPU (``sched_yield``)
so a waiting thread gives its core to the thread it waits for.
"""
import numba
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from gpulstm.kernels import _cache  # noqa: F401  (first: before any cached kernel)


def _slot(context, builder, arr_type, arr, index):
    ary = context.make_array(arr_type)(context, builder, arr)
    return cgutils.get_item_pointer(context, builder, arr_type, ary, [index],
                                    wraparound=False, boundscheck=False)


def _is_counter(arr):
    return isinstance(arr, types.Array) and arr.dtype == types.int64 and arr.ndim == 1


@intrinsic
def fetch_add(typingctx, arr, index, value):
    """``old = arr[index]; arr[index] += value; return old``, atomically."""
    if not _is_counter(arr):
        return None
    sig = types.int64(arr, types.intp, types.int64)

    def codegen(context, builder, signature, args):
        ptr = _slot(context, builder, signature.args[0], args[0], args[1])
        return builder.atomic_rmw("add", ptr, args[2], "seq_cst")

    return sig, codegen


@intrinsic
def cas(typingctx, arr, index, expected, new):
    """Set ``arr[index] = new`` if it holds ``expected``; whether it did, atomically."""
    if not _is_counter(arr):
        return None
    sig = types.boolean(arr, types.intp, types.int64, types.int64)

    def codegen(context, builder, signature, args):
        ptr = _slot(context, builder, signature.args[0], args[0], args[1])
        pair = builder.cmpxchg(ptr, args[2], args[3], "seq_cst", "seq_cst")
        return builder.extract_value(pair, 1)

    return sig, codegen


@intrinsic
def load(typingctx, arr, index):
    """``arr[index]``, read atomically (sees every write made before the value's store)."""
    if not _is_counter(arr):
        return None
    sig = types.int64(arr, types.intp)

    def codegen(context, builder, signature, args):
        ptr = _slot(context, builder, signature.args[0], args[0], args[1])
        return builder.load_atomic(ptr, "seq_cst", 8)

    return sig, codegen


@intrinsic
def relax(typingctx):
    """Give up the CPU for a moment (``sched_yield``) inside a wait loop."""
    sig = types.void()

    def codegen(context, builder, signature, args):
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.IntType(32), []), "sched_yield")
        builder.call(fn, [])
        return context.get_dummy_value()

    return sig, codegen


_JIT = dict(cache=True, error_model="numpy", nogil=True)


# Polls before a waiting thread starts to yield its core.  A yield on a busy machine
# can hand the core to another process for a whole time slice, so waits of a step's
# length (microseconds) only poll; a thread that still waits after this many polls
# (about a millisecond: the thread it waits for is not running) yields between polls.
YIELD_AFTER = 1 << 17


@numba.njit(**_JIT)
def wait_until(counter, index, target):
    """Wait until ``counter[index] >= target``: poll, and after YIELD_AFTER polls
    yield the CPU between polls."""
    spins = 0
    while load(counter, index) < target:
        spins += 1
        if spins > YIELD_AFTER:
            relax()
