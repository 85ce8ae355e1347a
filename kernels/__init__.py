"""numba kernels of gpulstm (installed as ``gpulstm.kernels``).

Importing this package imports numba; ``import gpulstm`` does not import it.
``activations`` holds the scalar activations shared by every backend, ``cpu`` the
``@njit`` backend and ``cuda`` the ``numba.cuda`` backend.
"""
from . import _cache  # noqa: F401  (must run before any kernel module is compiled)
