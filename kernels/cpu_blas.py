"""The thread count of the BLAS that ``np.dot`` inside ``@njit`` calls (SciPy's).

The large-batch CPU path runs ``z = h_tm1 @ U`` per step through numba's ``np.dot``,
which calls SciPy's BLAS (``scipy.linalg.cython_blas``).  That BLAS (OpenBLAS in the
SciPy wheels) starts its own threads: left alone, a 2-thread GEMM per step runs
next to the numba threads and they fight over the cores (B=8, 1 numba thread:
578 ms instead of 18 ms on a 2-core machine).  ``limit(n)`` sets its thread count
for the duration of one forward call and puts the old count back.

SciPy's OpenBLAS is found by its exported ``*openblas_set_num_threads`` symbol in
the libraries bundled next to SciPy; failing that, threadpoolctl (if installed)
drives whatever BLAS SciPy uses.  ``available()`` is False when neither works:
the caller then keeps the register tiles.
"""
import contextlib
import ctypes
import glob
import importlib.util
import os
import threading

import numpy as np
from numba.extending import overload

_lock = threading.RLock()
_state = {}


def _openblas_funcs():
    """(set_num_threads, get_num_threads) ctypes functions of SciPy's OpenBLAS, or None."""
    try:
        import scipy
        import scipy.linalg.cython_blas  # noqa: F401 - loads the library numba calls
    except ImportError:
        return None
    base = os.path.dirname(scipy.__file__)
    paths = sorted(glob.glob(os.path.join(base + ".libs", "*openblas*"))
                   + glob.glob(os.path.join(base, ".dylibs", "*openblas*")))
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix in ("scipy_openblas", "openblas"):
            for suffix in ("", "64_"):
                try:
                    set_ = getattr(lib, f"{prefix}_set_num_threads{suffix}")
                    get_ = getattr(lib, f"{prefix}_get_num_threads{suffix}")
                except AttributeError:
                    continue
                set_.argtypes, set_.restype = [ctypes.c_int], None
                get_.argtypes, get_.restype = [], ctypes.c_int
                return set_, get_
    return None


def _threadpoolctl():
    try:
        import scipy.linalg.cython_blas  # noqa: F401
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    ctl = ThreadpoolController().select(user_api="blas")
    return ctl if ctl.lib_controllers else None


def _init():
    if "mode" not in _state:
        with _lock:
            funcs = _openblas_funcs()
            if funcs is not None:
                _state["funcs"] = funcs
                _state["mode"] = "openblas"
            else:
                ctl = _threadpoolctl()
                _state["ctl"] = ctl
                _state["mode"] = "threadpoolctl" if ctl is not None else None
    return _state["mode"]


def available():
    """Whether SciPy's BLAS is there and its thread count can be set."""
    return scipy_present() and _init() is not None


def scipy_present():
    """Whether SciPy can be imported (looked up without importing it)."""
    try:
        return importlib.util.find_spec("scipy") is not None
    except (ImportError, ValueError):  # sys.modules["scipy"] is None: hidden on purpose
        return False


def dot(a, b, out):
    """``np.dot(a, b, out)`` inside compiled kernels, where SciPy is installed.

    numba types ``np.dot`` through SciPy's BLAS, so a kernel that merely contains it
    fails to compile without SciPy.  Kernels call this instead: without SciPy it
    compiles to nothing (the callers take the BLAS path only when ``available()``).
    """
    np.dot(a, b, out)


@overload(dot)
def _dot(a, b, out):
    if scipy_present():
        def impl(a, b, out):
            np.dot(a, b, out)
    else:
        def impl(a, b, out):  # never reached: available() is False without SciPy
            pass
    return impl


@contextlib.contextmanager
def limit(n):
    """Run the body with SciPy's BLAS on ``n`` threads (its old count restored after).

    Nested and concurrent callers (threads running forward calls side by side) share
    one setting: the first one in saves the old count and sets ``n``, the last one
    out restores it.
    """
    mode = _init()
    if mode is None:
        yield
        return
    with _lock:
        if _state.get("users", 0) == 0:
            if mode == "openblas":
                set_, get_ = _state["funcs"]
                _state["saved"] = get_()
                set_(n)
            else:
                _state["saved"] = _state["ctl"].limit(limits=n)
        _state["users"] = _state.get("users", 0) + 1
    try:
        yield
    finally:
        with _lock:
            _state["users"] -= 1
            if _state["users"] == 0:
                if mode == "openblas":
                    _state["funcs"][0](_state["saved"])
                else:
                    _state["saved"].restore_original_limits()
