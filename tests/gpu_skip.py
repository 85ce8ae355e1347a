"""Whether a real CUDA device can run the kernels (the ``gpu`` test modules skip without).

Also aliases ``np.row_stack`` (removed in NumPy 2.5), which numba-cuda builds before
0.2x reference (device image: numba-cuda + NumPy 2.5.2), so the CUDA target can load.
"""
import numpy as np

if not hasattr(np, "row_stack"):
    np.row_stack = np.vstack


def real_gpu():
    try:
        from numba import cuda

        from gpulstm.kernels.cuda import simulator

        if simulator() or not cuda.is_available():
            return False
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False
