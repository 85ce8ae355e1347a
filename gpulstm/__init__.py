"""gpulstm: Keras-exact LSTM inference on numba (CPU) and numba.cuda + CuPy (GPU).

``import gpulstm`` imports neither numba nor CuPy and never touches a GPU: the
kernels load on first use.
"""
from gpulstm._version import __version__
from gpulstm.dispatch import (BACKENDS, BackendUnavailableError, available_backends,
                              resolve_backend)
from gpulstm.layers import LSTM, Layer


def info():
    """Versions, backends and why each is or isn't available (see ``gpulstm.info``)."""
    from gpulstm._info import info as _info

    return _info()


__all__ = ["__version__", "LSTM", "Layer", "info", "BACKENDS", "BackendUnavailableError",
           "available_backends", "resolve_backend"]
