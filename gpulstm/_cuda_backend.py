"""Registration of the "cuda" backend (numba.cuda kernels + CuPy projection).

Importing this module imports neither numba nor CuPy and touches no GPU: the
availability check runs on first use and is cached by ``dispatch.Backend``.
"""
import os
import sys

from gpulstm import _xp, dispatch

FIX = ("pip install -e '.[cuda12]' (CUDA 12 driver) or -e '.[cuda13]' (CUDA 13 driver) "
       "in the gpulstm clone, on a machine with an NVIDIA GPU")


def _sim_requested():
    # numba reads this once at import; reading the environment keeps numba unimported.
    if "numba" in sys.modules:
        try:
            from numba.core import config

            return bool(config.ENABLE_CUDASIM)
        except Exception:  # pragma: no cover
            pass
    return os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0")


def _check():
    """``(ok, reason)``: can the CUDA kernels run here (a device, or the simulator)?"""
    import importlib.util

    if not _sim_requested():
        # Answer before importing numba.cuda (~0.5 s) where no GPU can be used: the
        # CPU backend's first calls need no numba at all (gpulstm.kernels.cpu_entry).
        if importlib.util.find_spec("cupy") is None:
            return False, "CuPy is not installed (No module named 'cupy')"
        try:
            import cupy

            if not cupy.cuda.is_available():  # no driver or no device: False, no raise
                return False, "CuPy finds no CUDA driver or device"
        except Exception as exc:  # a broken CuPy install must not break "auto"
            return False, f"CuPy cannot be used ({type(exc).__name__}: {exc})"
    try:
        from numba import cuda
    except ImportError as exc:
        return False, f"numba.cuda cannot be imported ({exc})"
    from gpulstm.kernels.cuda import simulator

    if simulator():
        return True, "numba CUDA simulator (NUMBA_ENABLE_CUDASIM=1; NumPy projection)"
    try:
        import cupy
    except ImportError as exc:
        return False, f"CuPy is not installed ({exc})"
    try:
        if not cuda.is_available():
            return False, "numba.cuda finds no CUDA driver or device"
        if cupy.cuda.runtime.getDeviceCount() < 1:
            return False, "CuPy finds no CUDA device"
        dev = cuda.get_current_device()
        name = dev.name.decode() if isinstance(dev.name, bytes) else dev.name
        cc = dev.compute_capability
    except (ImportError, RuntimeError) as exc:  # CudaSupportError is an ImportError
        return False, f"the CUDA device cannot be used ({type(exc).__name__}: {exc})"
    impl = getattr(cuda, "implementation", "Built-in")
    if impl != "NVIDIA":
        # the deprecated built-in numba.cuda works but lacks fixes the kernels rely on
        return False, ("numba-cuda is not installed (the deprecated built-in numba.cuda "
                       "is in use)")
    return True, f"{name} (compute capability {cc[0]}.{cc[1]}), CuPy {cupy.__version__}"


class CudaBackend(dispatch.Backend):
    """The CUDA registry entry: device-array detection and the small-input rule."""

    @property
    def real_device(self):
        return not _sim_requested()

    is_device_array = staticmethod(_xp.is_device_array)

    @staticmethod
    def prefer_cpu(data):
        """A reason string when NumPy ``data`` is too small to pay for the GPU, else None."""
        shape = getattr(data, "shape", None)
        if shape is None or len(shape) != 3:
            return None
        limit = float(os.environ.get("GPULSTM_CUDA_MIN_ELEMENTS", 4096))
        n = float(shape[0]) * shape[1] * shape[2]
        if n < limit:
            return (f"CPU: input of {int(n)} elements is below the GPU threshold "
                    f"GPULSTM_CUDA_MIN_ELEMENTS={int(limit)} (an estimate: a GPU call costs "
                    "~0.1 ms of fixed overhead)")
        return None


def register():
    """Add the "cuda" entry to ``gpulstm.dispatch.BACKENDS`` (idempotent)."""
    if "cuda" not in dispatch.BACKENDS or not isinstance(dispatch.BACKENDS["cuda"], CudaBackend):
        dispatch.register(CudaBackend("cuda", "gpulstm.kernels.cuda", _check, FIX))
    return dispatch.BACKENDS["cuda"]
