"""``gpulstm.info()``: what gpulstm would run on here, and why — without compiling anything.

Collected: versions (Python, NumPy, numba, llvmlite, gpulstm and the optional
numba-cuda / CuPy / tqdm, read from package metadata so nothing GPU-related is
imported), every registered backend with its availability and reason, what
"auto" picks, the CPU and CUDA devices, numba's configured threading layer and
thread count, the numba cache folder, and which tier serves the CPU backend's first
calls.  It imports numba and the CPU kernel module (which ends the NumPy tier of
``gpulstm.kernels.cpu_entry``) but compiles nothing; numba's thread pool is not
launched either.
"""
import ctypes.util
import os
import platform
import sys
from importlib import metadata, util

# Environment variables that change what gpulstm does or how fast it runs.
ENV_VARS = ("GPULSTM_BACKEND", "GPULSTM_CUDA_MIN_ELEMENTS", "GPULSTM_NUMPY_TIER", "NUMBA_NUM_THREADS",
            "NUMBA_THREADING_LAYER", "NUMBA_CACHE_DIR", "NUMBA_ENABLE_CUDASIM",
            "NUMBA_DISABLE_JIT", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
            "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "MKL_NUM_THREADS")

_DISTS = {  # name shown -> distributions that provide it (first installed wins)
    "numpy": ("numpy",), "numba": ("numba",), "llvmlite": ("llvmlite",),
    "scipy": ("scipy",), "numba-cuda": ("numba-cuda",),
    "cupy": ("cupy-cuda13x", "cupy-cuda12x", "cupy-cuda11x", "cupy"),
    "h5py": ("h5py",), "tqdm": ("tqdm",), "rich": ("rich",),
}


def _dist_version(names):
    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def versions():
    """Versions of Python, gpulstm and its (optional) dependencies; None when absent."""
    from gpulstm._version import __version__

    out = {"python": platform.python_version(), "gpulstm": __version__}
    for shown, names in _DISTS.items():
        out[shown] = _dist_version(names)
    return out


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cpu_kernels():
    """Which recurrent product the CPU backend runs here (a host-feature check only)."""
    try:
        from gpulstm.kernels import cpu
    except Exception as exc:  # numba missing or broken: the backend says why
        return f"unavailable ({type(exc).__name__}: {exc})"
    import os

    kind = os.environ.get(cpu.KERNEL_ENV) or cpu.HOST_KERNEL
    forced = f" (forced by {cpu.KERNEL_ENV}; this host's: {cpu.HOST_KERNEL})" \
        if os.environ.get(cpu.KERNEL_ENV) else ""
    what = {
        "panels16": "register-blocked panel micro-kernels, 16 lanes (AVX-512)",
        "panels8": "register-blocked panel micro-kernels, 8 lanes (AVX2 + FMA)",
        "tiles4x4": "4 x 4 register tiles",
        "tiles4x2": "4 x 2 register tiles, per-step BLAS for large batches",
    }.get(kind, f"unknown kernel {kind!r}")
    return f"float32: {what}{forced}"


def _first_calls():
    """How the CPU backend runs its first calls (read before ``_cpu_kernels`` loads numba)."""
    from gpulstm.kernels import cpu_entry

    enabled, loaded, spent = cpu_entry.tier_state()
    if loaded:
        return "numba kernels (loaded)"
    if not enabled:
        return f"numba kernels from the first call ({cpu_entry.ENV_VAR}=0)"
    return (f"NumPy tier until {cpu_entry.LOAD_COST_S:g} s of calls would have paid for "
            f"loading numba ({spent:.3f} s so far; {cpu_entry.ENV_VAR}=0 turns it off)")


def _cuda_devices(backends):
    """The CUDA devices, only when the cuda backend already found a working device."""
    cuda = backends.get("cuda")
    if not cuda or not cuda["available"] or "simulator" in cuda["reason"]:
        return []
    try:
        from numba import cuda as nbcuda

        devs = []
        for dev in nbcuda.list_devices():
            name = dev.name.decode() if isinstance(dev.name, bytes) else dev.name
            devs.append({"id": dev.id, "name": name,
                         "compute_capability": ".".join(map(str, dev.compute_capability))})
        return devs
    except Exception as exc:  # a device listing problem must not break info()
        return [{"error": f"{type(exc).__name__}: {exc}"}]


def threading():
    """numba's configured threading layer and thread count (the pool is not started)."""
    try:
        from numba.core import config
    except ImportError as exc:
        return {"error": f"numba cannot be imported ({exc})"}
    layers = {}
    for layer, module in (("tbb", "tbbpool"), ("omp", "omppool"), ("workqueue", "workqueue")):
        layers[layer] = util.find_spec(f"numba.np.ufunc.{module}") is not None
    # numba ships tbbpool always; it loads only when the TBB library is installed too.
    layers["tbb"] = layers["tbb"] and (_dist_version(("tbb",)) is not None
                                       or ctypes.util.find_library("tbb") is not None)
    parallel = sys.modules.get("numba.np.ufunc.parallel")
    launched = bool(parallel and getattr(parallel, "_is_initialized", False))
    active = None
    if launched:
        import numba

        active = numba.threading_layer()
    return {
        "threading_layer": config.THREADING_LAYER,  # "default" = tbb, then omp, then workqueue
        "threading_layer_active": active,  # None until a parallel kernel has run
        "layers_present": layers,
        "num_threads": config.NUMBA_NUM_THREADS,  # NUMBA_NUM_THREADS, default = CPU count
        "num_threads_source": ("NUMBA_NUM_THREADS" if os.environ.get("NUMBA_NUM_THREADS")
                               else "default (CPU count)"),
    }


def cache():
    """gpulstm's numba cache folder for this version and kernel source."""
    try:
        from gpulstm.kernels import _cache
    except ImportError as exc:
        return {"error": f"gpulstm.kernels cannot be imported ({exc})"}
    path = _cache.cache_dir()
    return {"dir": path, "root": _cache.cache_root(), "fingerprint": _cache.FINGERPRINT,
            "exists": os.path.isdir(path)}


def info():
    """What gpulstm would run on here, and why.

    Returns
    -------
    dict
        ``versions`` (python, gpulstm, numpy, numba, ...; None when not installed),
        ``backends`` (name -> {"available": bool, "reason": str}), ``auto``
        ({"backend", "reason"}: what "auto" picks for an unspecified input) and
        ``requested`` (the ``GPULSTM_BACKEND`` override, if any), ``devices``
        ({"cpu": {...}, "cuda": [...]}), ``threading`` (numba's configured threading
        layer and thread count), ``cache`` (numba cache folder) and ``env``
        (the environment variables that matter).  Nothing is compiled.

    Examples
    --------
    >>> import gpulstm
    >>> gpulstm.info()["backends"]["cpu"]["available"]
    True
    """
    from gpulstm import dispatch

    backends = {}
    for name, backend in dispatch.BACKENDS.items():
        ok, reason = backend.availability()
        backends[name] = {"available": bool(ok), "reason": reason}
    auto_name, auto_reason = dispatch.auto_choice()
    try:
        name, source = dispatch.requested_backend()
        requested = {"backend": name, "source": source}
    except ValueError as exc:
        requested = {"backend": os.environ.get(dispatch.ENV_VAR), "error": str(exc)}
    first_calls = _first_calls()
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        affinity = os.cpu_count()
    return {
        "versions": versions(),
        "backends": backends,
        "auto": {"backend": auto_name, "reason": auto_reason},
        "requested": requested,
        "devices": {"cpu": {"model": _cpu_model(), "cpu_count": os.cpu_count(),
                            "usable_cpus": affinity, "machine": platform.machine(),
                            "kernels": _cpu_kernels(), "first_calls": first_calls},
                    "cuda": _cuda_devices(backends)},
        "threading": threading(),
        "cache": cache(),
        "env": {k: os.environ[k] for k in ENV_VARS if k in os.environ},
        "platform": platform.platform(),
    }


def format_info(data, indent=0):
    """Indented ``key: value`` text of a nested dict, for the command line."""
    lines = []
    pad = "  " * indent
    for key, value in data.items():
        if isinstance(value, dict):
            if value:
                lines.append(f"{pad}{key}:")
                lines.append(format_info(value, indent + 1))
            else:
                lines.append(f"{pad}{key}: (none)")
        elif isinstance(value, list):
            lines.append(f"{pad}{key}: " + (", ".join(map(str, value)) if value else "(none)"))
        else:
            lines.append(f"{pad}{key}: {'-' if value is None else value}")
    return "\n".join(lines)
