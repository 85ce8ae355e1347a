"""NumPy's BLAS on one thread while ``predict`` runs on the CPU backend.

The numba kernels run their own threads; an OpenBLAS GEMM between two kernel calls
(a Dense layer, an input projection) wakes OpenBLAS's own threads, which then spin
against the numba workers.  Measured on the 2-core Zen 5 machine (busy neighbours),
``predict`` of 2048 sequences at batch 32, 2 numba threads, ms, NumPy's OpenBLAS on
2 threads / 1: Embedding -> LSTM(128) -> Dense(256) 310-340 / 183-224; encoder-decoder
LSTM(256) + Dense(93) on every step 1650-1820 / 860-1550.  Uses threadpoolctl when it
is installed; without it nothing changes.
"""
import threading

_lock = threading.Lock()
_state = {"users": 0}


def _blas_libs():
    if "libs" not in _state:  # scanning the loaded libraries costs a few ms: once
        try:
            from threadpoolctl import ThreadpoolController

            libs = [lc for lc in ThreadpoolController().lib_controllers
                    if lc.user_api == "blas"]
        except Exception:  # not installed, or an unknown BLAS
            libs = []
        _state["libs"] = libs
    return _state["libs"]


class one_thread:
    """``with one_thread(active):`` runs the block with NumPy's BLAS on one thread.

    Nested and concurrent users share one setting: the first one in saves the thread
    counts, the last one out restores them.
    """

    __slots__ = ("active",)

    def __init__(self, active=True):
        self.active = active

    def __enter__(self):
        if self.active:
            with _lock:
                if _state["users"] == 0:
                    _state["saved"] = [(lc, lc.num_threads) for lc in _blas_libs()]
                    for lc, _ in _state["saved"]:
                        lc.set_num_threads(1)
                _state["users"] += 1
        return self

    def __exit__(self, exc_type, exc, tb):
        if self.active:
            with _lock:
                _state["users"] -= 1
                if _state["users"] == 0:
                    for lc, n in _state.pop("saved"):
                        lc.set_num_threads(n)
        return False
