"""numba kernels of gpulstm (installed as ``gpulstm.kernels``).

Importing this package imports nothing; ``import gpulstm`` does not import numba.
``activations`` holds the scalar activations shared by every backend, ``cpu`` the
``@njit`` backend, ``cpu_numpy`` its NumPy tier, ``cpu_entry`` the switch between
the two, and ``cuda`` the ``numba.cuda`` backend.  Every module that defines cached
kernels imports ``_cache`` first (it must run before any kernel is decorated).
"""
