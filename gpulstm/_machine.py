"""What a timing depends on: the machine, library versions, environment, neighbours' load."""
import os
import platform

ENV_KEYS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
            "MKL_NUM_THREADS", "NUMBA_NUM_THREADS", "NUMBA_THREADING_LAYER", "GPULSTM_BACKEND",
            "GPULSTM_NUMPY_TIER", "XLA_FLAGS")


def machine_info(contenders=(), env=None):
    """Platform, CPU, GPU, library versions and the env settings a timing depends on."""
    from gpulstm._info import info

    inf = info()
    cpu = platform.processor() or platform.machine()
    flags = set()
    try:
        with open("/proc/cpuinfo") as fh:
            lines = fh.read().splitlines()
        cpu = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")), cpu)
        flags = set(next((ln.split(":", 1)[1].split() for ln in lines if ln.startswith("flags")), []))
    except OSError:
        pass
    return {
        "platform": platform.platform(), "python": platform.python_version(), "cpu": cpu,
        "cpu_count": os.cpu_count(),
        # the two x86 machine kinds of issue 13: AVX-512 (Zen 5) or AVX2 only (Zen 3)
        "isa": "avx512f" if "avx512f" in flags else "avx2" if "avx2" in flags else None,
        "gpu": inf.get("devices", {}).get("cuda") or None,
        "versions": inf["versions"],
        "numba_threading": inf["threading"],
        "env": {k: (os.environ if env is None else env).get(k) for k in ENV_KEYS},
        "loadavg_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        # which kernel source ran: the numba cache fingerprint, and the git commit if any
        "kernels_fingerprint": inf.get("cache", {}).get("fingerprint"),
        "git": _git_describe(),
    }


def _git_describe():
    """``<commit>[-dirty]`` of the source tree gpulstm runs from, or None."""
    import subprocess

    here = os.path.dirname(os.path.abspath(__file__))
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=here,
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() or None


def _busy_seconds():
    """CPU seconds used by everyone (/proc/stat) and by this process, or None off Linux."""
    try:
        with open("/proc/stat") as fh:
            v = [int(p) for p in fh.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    t = os.times()
    # user nice system idle iowait irq softirq steal: steal is time a neighbour VM took.
    busy = (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / os.sysconf("SC_CLK_TCK")
    return busy, t.user + t.system


def _other_load(before, after, wall):
    """Cores used by other processes between two ``_busy_seconds`` readings."""
    if before is None or after is None or wall <= 0:
        return None
    return max(0.0, ((after[0] - before[0]) - (after[1] - before[1])) / wall)
