"""Where gpulstm's numba kernels keep their on-disk cache, and why it is safe.

numba keys a cached kernel on its *own* source file only, so an edit to a callee in
another module (the shared activations) would silently reuse a stale binary, and a
newer gpulstm could load an older one's cache.  Every kernel module of this package
therefore caches under a folder named by a fingerprint of gpulstm's version and the
text of all ``kernels/*.py``: any change to either starts a fresh cache.
"""
import hashlib
import importlib.util
import os

from numba.core import caching, config

_HERE = os.path.dirname(os.path.abspath(__file__))


def _fingerprint():
    from gpulstm._version import __version__

    digest = hashlib.sha256(__version__.encode())
    # kernels compiled with SciPy call its BLAS; without it they are built without:
    # the two never share a cache
    try:
        scipy = importlib.util.find_spec("scipy") is not None
    except (ImportError, ValueError):
        scipy = False
    digest.update(b"scipy" if scipy else b"no-scipy")
    for name in sorted(os.listdir(_HERE)):
        if name.endswith(".py"):
            with open(os.path.join(_HERE, name), "rb") as fh:
                digest.update(name.encode() + b"\0" + fh.read())
    return digest.hexdigest()[:16]


def cache_root():
    """The folder that holds gpulstm's numba caches (NUMBA_CACHE_DIR if set)."""
    if config.CACHE_DIR:
        return os.path.join(config.CACHE_DIR, "gpulstm")
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "gpulstm", "numba")


FINGERPRINT = _fingerprint()


def cache_dir():
    """The cache folder of this exact version and kernel source."""
    return os.path.join(cache_root(), FINGERPRINT)


class _KernelCacheLocator(caching.UserProvidedCacheLocator):
    def __init__(self, py_func, py_file):
        self._py_file = py_file
        self._lineno = py_func.__code__.co_firstlineno
        self._cache_path = os.path.join(cache_dir(), os.path.basename(py_file)[:-3])

    @classmethod
    def from_function(cls, py_func, py_file):
        if os.path.dirname(os.path.abspath(py_file)) != _HERE:
            return None
        return caching._SourceFileBackedLocatorMixin.from_function.__func__(cls, py_func, py_file)


def install():
    """Put the fingerprinted locator first for functions defined in this package."""
    classes = caching.CacheImpl._locator_classes
    if _KernelCacheLocator not in classes:
        classes.insert(0, _KernelCacheLocator)


install()
