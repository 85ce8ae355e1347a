"""Backend registry and the rules that pick one.

Precedence: the ``backend=`` argument, then the ``GPULSTM_BACKEND`` environment
variable (read at every call), then ``"auto"``.  "auto" picks a working real GPU,
else the CPU, and never the CUDA simulator; an explicit request for a backend that
cannot run raises ``BackendUnavailableError`` saying why and how to fix it.

Every backend module (``gpulstm.kernels.<name>``) exposes one function::

    lstm_forward(x, kernel, recurrent_kernel, bias, h0, c0, mask, *,
                 activation, recurrent_activation, go_backwards,
                 return_sequences, zero_output_for_mask,
                 x_proj=None, rec_masks=None) -> (output, h_T, c_T)

    # x is (B, T, D), kernel (D, G), recurrent_kernel (U, G), bias (G,) or None,
    # h0 and c0 (B, U), mask (B, T) bool or None, G = 4U in Keras gate order i,f,c,o.
    # activation / recurrent_activation: an int code of gpulstm.activations.CODES,
    # or a numba-compilable callable.  x_proj (B, T, G), when given, replaces
    # x @ kernel + bias (dropout in training mode projects per gate).  rec_masks
    # (B, 4, U), when given, multiplies h_tm1 per gate before the recurrent product.
    # output is (B, T, U) in processing order when return_sequences, else (B, U).

The ``cpu`` entry is ``gpulstm.kernels.cpu_entry``: the numba kernels, with a NumPy
tier for a fresh process's first small calls (numba takes ~1 s to load).

A backend that runs GRUs (``cpu`` and ``cuda``) also exposes::

    gru_forward(x, kernel, recurrent_kernel, bias, h0, mask, *, activation,
                recurrent_activation, reset_after, go_backwards, return_sequences,
                zero_output_for_mask, x_proj=None, rec_masks=None, prepared=None)
        -> (output, h_T)

    # kernel (D, 3U), recurrent_kernel (U, 3U) in Keras gate order z, r, h; bias
    # (2, 3U) [input; recurrent] when reset_after else (3U,), or None; rec_masks
    # (B, 3, U); and ``gru_prepare`` like ``prepare`` below.

and SimpleRNNs (``cpu`` and ``cuda``)::

    rnn_forward(x, kernel, recurrent_kernel, bias, h0, mask, *, activation, go_backwards,
                return_sequences, zero_output_for_mask, x_proj=None, rec_masks=None,
                prepared=None) -> (output, h_T)

    # kernel (D, U), recurrent_kernel (U, U), bias (U,) or None; rec_masks (B, 1, U);
    # and ``rnn_prepare`` like ``prepare`` below.

A backend may also expose ``prepare(kernel, recurrent_kernel, bias) -> object``: the
layer then calls it once per set of weights, keeps the result, and passes it back as
``lstm_forward(..., prepared=obj)`` (packed or device-resident weights).
"""
import importlib
import logging
import os
import threading

log = logging.getLogger("gpulstm.dispatch")

ENV_VAR = "GPULSTM_BACKEND"


class BackendUnavailableError(RuntimeError):
    """An explicitly requested backend cannot run here."""


class Backend:
    """One registry entry: a lazily imported kernel module and a cached availability check."""

    def __init__(self, name, module, check, fix):
        self.name = name
        self.module = module
        self._check = check
        self.fix = fix
        self._status = None
        self._module = None
        self._lock = threading.Lock()

    def availability(self):
        """``(ok, reason)``, computed once and cached."""
        with self._lock:
            if self._status is None:
                try:
                    self._status = self._check()
                except Exception as exc:  # a broken install must not break auto
                    self._status = (False, f"{type(exc).__name__}: {exc}")
            return self._status

    def load(self):
        """The backend's kernel module, imported on first use."""
        if self._module is None:
            self._module = importlib.import_module(self.module)
        return self._module

    def reset(self):
        with self._lock:
            self._status = None


def _check_cpu():
    # Find numba without importing it (~0.3 s; importlib.metadata alone ~30 ms):
    # small first calls run on the CPU backend's NumPy tier and never need it
    # (gpulstm.kernels.cpu_entry).  info() reports the version.
    import importlib.util

    if importlib.util.find_spec("numba") is None:
        return False, "numba is not installed"
    return True, "numba @njit kernels (a NumPy tier serves small calls until numba has loaded)"


BACKENDS = {
    "cpu": Backend("cpu", "gpulstm.kernels.cpu_entry", _check_cpu, "pip install numba"),
}

_choice_logged = set()


def register(backend):
    """Add (or replace) a backend entry."""
    BACKENDS[backend.name] = backend


def available_backends():
    """Names of the backends that can run here."""
    return [name for name, b in BACKENDS.items() if b.availability()[0]]


def _validate_name(name, source):
    if isinstance(name, str) and (name.lower() == "auto" or name.lower() in BACKENDS):
        return name.lower()
    raise ValueError(
        f"Unknown backend. Expected one of {['auto'] + list(BACKENDS)}. Received: "
        f"{source}={name!r}. Pass one of those names (or unset {ENV_VAR})."
    )


def requested_backend(backend=None):
    """The name asked for and where it came from, before "auto" is resolved."""
    if backend is not None:
        return _validate_name(backend, "backend"), "backend argument"
    env = os.environ.get(ENV_VAR)
    if env:
        return _validate_name(env, ENV_VAR), f"{ENV_VAR} environment variable"
    return "auto", "default"


def auto_choice(data=None):
    """``(name, reason)`` that "auto" picks for ``data`` (an array or None)."""
    cuda = BACKENDS.get("cuda")
    if cuda is not None:
        ok, why = cuda.availability()
        if getattr(cuda, "is_device_array", None) and data is not None and cuda.is_device_array(data):
            return "cuda", "the input is a device array"
        if ok and getattr(cuda, "real_device", True):
            prefer = getattr(cuda, "prefer_cpu", None)
            if prefer is not None and data is not None:
                small = prefer(data)
                if small:
                    return "cpu", small
            return "cuda", f"a CUDA device works ({why})"
        reason = f"CPU: no usable GPU ({why})"
    else:
        reason = "CPU: no GPU backend is registered"
    return "cpu", reason


def resolve_backend(backend=None, data=None):
    """Pick the backend for one call: ``(name, reason)``.

    Raises ``ValueError`` for an unknown name and ``BackendUnavailableError`` when
    an explicitly requested backend cannot run.
    """
    name, source = requested_backend(backend)
    if name == "auto":
        name, reason = auto_choice(data)
    else:
        ok, why = BACKENDS[name].availability()
        if not ok:
            raise BackendUnavailableError(
                f"The '{name}' backend was requested ({source}) but cannot run: {why}. "
                f"To fix it: {BACKENDS[name].fix}; or pass backend='auto' to fall back."
            )
        reason = f"requested by the {source}"
    key = (name, reason)
    if key not in _choice_logged:
        _choice_logged.add(key)
        log.info("gpulstm backend %r: %s", name, reason)
    return name, reason


def require_backend(backend):
    """Check a ``backend=`` given to a layer or model constructor, at construction.

    None and "auto" pass; an unknown name raises ``ValueError``; a named backend
    that cannot run here raises ``BackendUnavailableError`` now rather than at the
    first call. (``GPULSTM_BACKEND`` is read at every call, so it is not checked
    here.) A model meant for GPU Dask workers is built without ``backend=`` on a
    machine without a GPU, and ``gpulstm.dask.predict(model, x, backend="cuda")``
    resolves the backend on each worker.
    """
    if backend is None:
        return None
    name, _ = requested_backend(backend)
    if name != "auto":
        ok, why = BACKENDS[name].availability()
        if not ok:
            raise BackendUnavailableError(
                f"Expected a backend that can run here. Received: backend={backend!r}, but "
                f"it cannot run: {why}. To fix it: {BACKENDS[name].fix}; or pass "
                "backend='auto' (or leave it unset) to fall back. Building a model for GPU "
                "Dask workers on a machine without one? Leave backend unset here and pass "
                "backend= to gpulstm.dask.predict.")
    return name


def get_backend(backend=None, data=None):
    """The kernel module for one call plus ``(name, reason)``."""
    name, reason = resolve_backend(backend, data)
    return BACKENDS[name].load(), name, reason
