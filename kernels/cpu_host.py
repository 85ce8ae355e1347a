"""Which product kernel the CPU recurrences run: the host's (from its vector ISA), or
the one ``GPULSTM_CPU_KERNEL`` forces (read at every call, so one process reaches every
path: tests force another host's kernels this way)."""
import os


def _host_has(*features):
    """Whether LLVM reports every one of ``features`` on this CPU."""
    try:
        import llvmlite.binding as ll
        have = ll.get_host_cpu_features()
        return all(have.get(f, False) for f in features)
    except Exception:  # pragma: no cover - feature query unsupported
        return False


# The product kernel of each step, by host: "panels16" (AVX-512: 32 registers of 16
# floats; cpu_micro's 16-lane blocks of up to 8 rows x 32 columns), "panels8" (AVX2 +
# FMA: 8-lane blocks of 4 x 16), else the dot-product tiles of cpu_fast ("tiles4x4"
# with 32 vector registers, "tiles4x2" with 16).  The panels run float32 only;
# float64 runs the tiles of the same width.  GPULSTM_CPU_KERNEL (read at every call)
# forces one, e.g. to test another host's path: every kind runs on every x86 host
# (LLVM splits wider vectors), only the speed differs.
# One thread, h @ U per step on the Zen 5 AVX-512 host, GFLOP/s, panels16 / tiles4x4
# / panels8 (scripts/micro_sweep.py): B=8 U=256 (K=320) 176 / 125 / 84; B=64 U=256
# 217 / 121 / 96; B=256 U=512 (K=640) 205 / 130 / 94; B=4 U=64 176 / 85 / 96; B=1
# bandwidth-bound, all within 10%.  On the Zen 3 AVX2 host: panels8 B=8 U=256 73 /
# tiles4x2 33; B=64 U=256 81 / 54; B=128 U=512 71 / 51.
KERNEL_ENV = "GPULSTM_CPU_KERNEL"
KERNELS = ("panels16", "panels8", "tiles4x4", "tiles4x2")
_PANELS = ("panels16", "panels8")
_WIDE = ("panels16", "tiles4x4")


def _host_kernel():
    if _host_has("avx512f", "fma"):
        return "panels16"
    if _host_has("avx2", "fma"):
        return "panels8"
    return "tiles4x2"


HOST_KERNEL = _host_kernel()


def product_kernel():
    """The per-step product kernel a call runs: GPULSTM_CPU_KERNEL, else the host's."""
    forced = os.environ.get(KERNEL_ENV)
    if not forced:
        return HOST_KERNEL
    forced = forced.strip().lower()
    if forced not in KERNELS:
        raise ValueError(
            f"Expected {KERNEL_ENV} to be one of {list(KERNELS)} (or unset for this host's "
            f"{HOST_KERNEL!r}). Received: {KERNEL_ENV}={os.environ[KERNEL_ENV]!r}. Unset it "
            "or pick one of those.")
    return forced
