"""NumPy or CuPy: which array module holds an array, and moving arrays between them.

The non-recurrent layers compute with the module of their input (``array_module``),
so a model on the CUDA backend keeps its activations on the device from the first
layer to the last.  Importing this module imports neither CuPy nor numba: CuPy is
only looked up in ``sys.modules`` (an array of it cannot exist before it is imported)
and imported when a backend keeps data on a real device.
"""
import sys

import numpy as np

from gpulstm import dispatch

# At most about this much of predict's input, and of its outputs, is kept on a device
# at once: inputs below it move there in one copy and the outputs come back in one.
DEVICE_BYTES = 1 << 30


def array_module(x):
    """``cupy`` when ``x`` is a CuPy array, else ``numpy``."""
    if type(x) is np.ndarray:
        return np
    cp = sys.modules.get("cupy")
    if cp is not None and isinstance(x, cp.ndarray):
        return cp
    return np


def is_device_array(x):
    """A CuPy array or any object exposing ``__cuda_array_interface__`` (torch and
    numba device arrays: CuPy wraps them without a copy); imports nothing."""
    if type(x) is np.ndarray:
        return False
    cp = sys.modules.get("cupy")
    if cp is not None and isinstance(x, cp.ndarray):
        return True
    try:
        return getattr(x, "__cuda_array_interface__", None) is not None
    except Exception:  # torch raises on CPU tensors
        return False


def asarray(x, dtype=None):
    """``x`` as an array of its own module (NumPy for lists and scalars; CuPy for
    ``__cuda_array_interface__`` objects); no copy when it already is one."""
    xp = array_module(x)
    if xp is np and is_device_array(x):
        import cupy

        xp = cupy
    return xp.asarray(x, dtype=dtype)


def to_host(x):
    """``x`` as a NumPy array (one device-to-host copy for a CuPy array)."""
    if type(x) is np.ndarray:
        return x
    xp = array_module(x)
    if xp is np:
        return np.asarray(x)
    return xp.asnumpy(x)


def to_module(x, xp):
    """``x`` as an array of module ``xp``: host<->device copy only when they differ."""
    if xp is np:
        return to_host(x)
    return xp.asarray(x)


def backend_module(name):
    """The array module a model keeps its data in on backend ``name``.

    CuPy for a backend whose kernels run on a real device (the "cuda" entry outside
    the simulator), NumPy otherwise (the CPU, and the CUDA simulator, which computes
    on host arrays).
    """
    entry = dispatch.BACKENDS.get(name)
    if entry is not None and getattr(entry, "real_device", False):
        import cupy

        return cupy
    return np


def device_id(xp):
    """The current device of ``xp`` (None for NumPy): device copies are kept per device."""
    if xp is np:
        return None
    runtime = getattr(getattr(xp, "cuda", None), "runtime", None)
    return None if runtime is None else runtime.getDevice()


def special(xp):
    """The ``scipy.special`` functions for ``xp``'s arrays (``cupyx.scipy.special``)."""
    import cupyx.scipy.special

    return cupyx.scipy.special


def weights_on(layer, xp):
    """``layer._weights`` as ``xp`` arrays.

    NumPy gets the weights themselves.  Device copies are made once per set of
    weights and device: ``set_weights`` / ``build`` assign a new list, which starts
    a new cache.
    """
    ws = layer._weights
    if xp is np:
        return ws
    cache = layer.__dict__.get("_xp_weights")
    if cache is None or cache[0] is not ws:
        cache = (ws, {})
        layer._xp_weights = cache
    key = (xp.__name__, device_id(xp))
    got = cache[1].get(key)
    if got is None:
        got = cache[1][key] = [xp.asarray(w) for w in ws]
    return got


def windows(xs, n, batch_size, xp):
    """``(start, blocks)``: rows of the arrays ``xs`` moved to module ``xp``, whole
    batches each; one window (one copy) unless the input exceeds ``DEVICE_BYTES``."""
    rows = max(n, 1)
    if xp is not np and any(array_module(a) is not xp for a in xs):
        per_row = sum(a[:1].nbytes for a in xs)
        fit = DEVICE_BYTES // max(per_row, 1) // batch_size * batch_size
        rows = max(batch_size, fit)
    for start in range(0, max(n, 1), rows):
        yield start, [to_module(a[start:start + rows], xp) for a in xs]


class Gather:
    """Collects predict's per-batch outputs into one NumPy array per output.

    NumPy outputs, when the total row count ``rows`` is known, are copied into the
    result as each batch arrives (while the batch is still in cache; no list of chunks
    concatenated at the end, which holds every output twice).  The seq2seq model's
    (4096, 59, 93) output from 16 batches: 184 ms to concatenate at the end, one
    thread, Zen 5.  Outputs on a device are concatenated there and copied back in one
    transfer per output (or one per ``DEVICE_BYTES`` of outputs, so long runs do not
    fill it).
    """

    def __init__(self, n_outputs, xp, rows=None):
        self.n, self.xp = n_outputs, xp
        self._pending, self._bytes, self._host = [], 0, []
        self._rows, self._out, self._pos = rows, None, 0

    def _direct(self, outs):
        """Copy ``outs`` into the preallocated result; False (after handing the rows
        filled so far to the chunk list) when they do not fit it."""
        if self.xp is not np or self._rows is None or self._pending or self._host:
            return False
        fits = bool(outs) and all(isinstance(o, np.ndarray) and o.ndim for o in outs)
        if fits:
            k = outs[0].shape[0]
            if self._out is None:
                self._out = [np.empty((self._rows,) + o.shape[1:], o.dtype) for o in outs]
            fits = len(outs) == len(self._out) and self._pos + k <= self._rows and all(
                o.shape == (k,) + r.shape[1:] and o.dtype == r.dtype
                for o, r in zip(outs, self._out))
        if not fits:
            if self._out is not None:
                self._pending.append([r[:self._pos] for r in self._out])
                self._out = None
            return False
        for o, r in zip(outs, self._out):
            r[self._pos:self._pos + k] = o
        self._pos += k
        return True

    def add(self, outs):
        if self._direct(outs):
            return
        self._pending.append(outs)
        if self.xp is not np:
            self._bytes += sum(o.nbytes for o in outs)
            if self._bytes >= DEVICE_BYTES:
                self._flush()

    def _flush(self):
        if self._pending:
            xp, chunks = self.xp, self._pending
            self._host.append([to_host(xp.concatenate([to_module(c[i], xp) for c in chunks],
                                                      axis=0)) for i in range(self.n)])
        self._pending, self._bytes = [], 0

    def result(self):
        """The list of NumPy outputs."""
        if self._out is not None:
            return [r[:self._pos] for r in self._out] if self._pos < self._rows else self._out
        self._flush()
        if len(self._host) == 1:
            return self._host[0]
        return [np.concatenate([h[i] for h in self._host], axis=0) for i in range(self.n)]
