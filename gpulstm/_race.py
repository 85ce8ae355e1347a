"""The benchmark race behind ``gpulstm bench`` and ``bench/``: sizes, reference, timing.

One race takes cases (sizes and flags), contenders (gpulstm backends and peers)
and thread counts.  For every case and thread count it builds each contender with
the same weights, checks its output against a float64 reference, warms it up, then
times it in *interleaved* samples (contender order rotated each round) so that a
neighbour's load hits everyone alike; the median sample is the result.

Saved runs follow the JSON schema of ``gpulstm._results``.
"""
import datetime
import math
import os
import platform
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from gpulstm import _peers
from gpulstm._results import SCHEMA

STREAM_STEPS = 16  # stateful cases check this many T=1 calls against the reference


@dataclass(frozen=True)
class Case:
    """One benchmark size: x is (B, T, D), U units; ``stateful`` means streaming T=1 calls."""

    group: str
    B: int
    T: int
    D: int
    U: int
    recurrent_activation: str = "sigmoid"
    activation: str = "tanh"
    use_bias: bool = True
    mask: str = None  # "left": left-padded sequences of random lengths
    stateful: bool = False
    tags: frozenset = field(default_factory=frozenset)

    @property
    def flags(self):
        out = {}
        if self.recurrent_activation != "sigmoid":
            out["recurrent_activation"] = self.recurrent_activation
        if self.activation != "tanh":
            out["activation"] = self.activation
        if not self.use_bias:
            out["use_bias"] = False
        if self.mask:
            out["mask"] = self.mask
        if self.stateful:
            out["stateful"] = True
        return out

    @property
    def name(self):
        base = f"B={self.B} T={self.T} D={self.D} U={self.U}"
        extra = " ".join(f"{k}={v}" if v is not True else k for k, v in self.flags.items())
        return f"{base} {extra}".strip()

    def key(self):
        return (self.B, self.T, self.D, self.U, tuple(sorted(self.flags.items())))

    def weights(self, seed=0):
        """Keras-layout float32 weights: kernel (D, 4U), recurrent_kernel (U, 4U), bias (4U,)."""
        rng = np.random.default_rng(seed)
        U, G = self.U, 4 * self.U
        kernel = rng.uniform(-1, 1, (self.D, G)) * math.sqrt(6.0 / (self.D + G))
        recurrent_kernel = rng.uniform(-1, 1, (U, G)) * math.sqrt(3.0 / U)
        bias = rng.uniform(-0.1, 0.1, G)
        bias[U:2 * U] += 1.0  # unit_forget_bias
        return [np.ascontiguousarray(a, dtype=np.float32) for a in (kernel, recurrent_kernel, bias)]

    def inputs(self, seed=1):
        """``(x, mask)``: x is (B, T, D) float32 (T = STREAM_STEPS when stateful); mask (B, T) or None."""
        rng = np.random.default_rng(seed)
        T = STREAM_STEPS if self.stateful else self.T
        x = rng.standard_normal((self.B, T, self.D)).astype(np.float32)
        mask = None
        if self.mask == "left":
            lengths = rng.integers(T // 2, T + 1, self.B)
            mask = np.arange(T)[None, :] >= (T - lengths)[:, None]  # mask is (B, T)
            x[~mask] = 0.0
        return x, mask


def _c(group, B, T, D, U, tags=(), **kw):
    return Case(group, B, T, D, U, tags=frozenset(tags), **kw)


def matrix():
    """Every case of the suites (issue 6's matrix plus the issue-2/7 target sizes)."""
    cases = [
        _c("targets", 1, 100, 32, 128, ("issue2", "issue7", "quick")),
        _c("targets", 8, 100, 64, 256, ("issue2", "issue7", "quick")),
        _c("targets", 64, 100, 32, 256, ("issue2", "issue7", "quick")),
        _c("targets", 1, 1000, 16, 64, ("issue7", "quick")),
        _c("targets", 1, 100, 256, 512, ("issue7",)),
        _c("targets", 256, 50, 128, 512, ("issue7",)),
        _c("streaming", 1, 1, 32, 128, ("issue7", "quick"), stateful=True),
        _c("streaming", 1, 1, 256, 512, ("issue7",), stateful=True),
        _c("nocudnn", 8, 100, 64, 256, ("quick",), recurrent_activation="hard_sigmoid"),
        _c("nocudnn", 8, 100, 64, 256, ("quick",), mask="left"),
        _c("nocudnn", 8, 100, 64, 256, (), use_bias=False),
        _c("long", 1, 5000, 16, 64),
    ]
    # DeepBench inference LSTM sizes, input width = units.
    for U, T in ((256, 150), (512, 25), (1024, 25), (2048, 25), (1536, 50)):
        cases += [_c("deepbench", B, T, U, U) for B in (1, 2, 4)]
    # Keras-typical models: few input features (D = 32).
    for U in (32, 64, 128, 256):
        for B in (1, 8, 32, 256):
            cases += [_c("keras", B, T, 32, U) for T in (10, 50, 200)]
    return cases


GROUPS = ("targets", "streaming", "nocudnn", "long", "deepbench", "keras")


def select(names, cases=None):
    """Cases whose group or tag is in ``names`` (or all for "all"), duplicates dropped."""
    names = set(names)
    out, seen = [], set()
    for case in cases if cases is not None else matrix():
        if "all" in names or case.group in names or names & case.tags:
            if case.key() not in seen:
                seen.add(case.key())
                out.append(case)
    return out


# ----------------------------------------------------------------------------- reference
def _sigmoid(z):
    return 0.5 * np.tanh(0.5 * z) + 0.5


_REF_ACT = {"tanh": np.tanh, "sigmoid": _sigmoid,
            "hard_sigmoid": lambda z: np.clip(z / 6.0 + 0.5, 0.0, 1.0)}


def reference_lstm(x, kernel, recurrent_kernel, bias=None, mask=None,
                   activation="tanh", recurrent_activation="sigmoid"):
    """Float64 NumPy LSTM from Keras's equations; returns the output at every step (B, T, U).

    Masked steps carry h and c and repeat the previous output (Keras's CPU rule).
    """
    x = np.asarray(x, np.float64)
    W, R = np.asarray(kernel, np.float64), np.asarray(recurrent_kernel, np.float64)
    B, T, _ = x.shape
    U = R.shape[0]
    b = np.zeros(4 * U) if bias is None else np.asarray(bias, np.float64)
    act, ract = _REF_ACT[activation], _REF_ACT[recurrent_activation]
    h, c, out = np.zeros((B, U)), np.zeros((B, U)), np.zeros((B, U))
    seq = np.empty((B, T, U))
    x_proj = x @ W + b  # x_proj is (B, T, 4U)
    for t in range(T):
        z = x_proj[:, t] + h @ R
        c_new = ract(z[:, U:2 * U]) * c + ract(z[:, :U]) * act(z[:, 2 * U:3 * U])
        h_new = ract(z[:, 3 * U:]) * act(c_new)
        keep = np.ones((B, 1), bool) if mask is None else mask[:, t:t + 1]
        h, c, out = np.where(keep, h_new, h), np.where(keep, c_new, c), np.where(keep, h_new, out)
        seq[:, t] = out
    return seq


def expected_outputs(case, x, mask, weights, reference=None):
    """What each call must return: [(B, U)] once, or one (B, U) per streaming step."""
    kernel, recurrent_kernel, bias = weights
    ref = reference or reference_lstm
    seq = ref(x, kernel, recurrent_kernel, bias if case.use_bias else None, mask=mask,
              activation=case.activation, recurrent_activation=case.recurrent_activation)
    return [seq[:, t] for t in range(x.shape[1])] if case.stateful else [seq[:, -1]]


def validate(runner, case, x, mask, expected):
    """Max abs error of the runner's outputs (streaming: every step from a reset state)."""
    runner.reset()
    if case.stateful:
        outs = [runner.call(np.ascontiguousarray(x[:, t:t + 1])) for t in range(x.shape[1])]
    else:
        outs = [runner.call(x, mask)]
    err = max(float(np.max(np.abs(np.asarray(o, np.float64) - e))) for o, e in zip(outs, expected))
    return err if all(np.all(np.isfinite(o)) for o in outs) else float("inf")


def tolerance(expected):
    """The float32 tolerance: 1e-5 * max(1, max|ref|)."""
    return 1e-5 * max(1.0, max(float(np.max(np.abs(e))) for e in expected))


# ----------------------------------------------------------------------------- timing
def _time_calls(fn, n):
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n


def machine_info(contenders=()):
    """Platform, CPU, GPU, library versions and the env settings a timing depends on."""
    from gpulstm._info import info

    inf = info()
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), cpu)
    except OSError:
        pass
    keys = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
            "MKL_NUM_THREADS", "NUMBA_NUM_THREADS", "NUMBA_THREADING_LAYER", "GPULSTM_BACKEND")
    return {
        "platform": platform.platform(), "python": platform.python_version(), "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "gpu": inf.get("devices", {}).get("cuda") or None,
        "versions": inf["versions"],
        "numba_threading": inf["threading"],
        "env": {k: os.environ.get(k) for k in keys},
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


def race(cases, contenders, threads=(None,), *, repeats=7, min_sample_s=0.03,
         max_other_load=None, reference=None, progress=None, command=None):
    """Run the race; return a run dict in the ``SCHEMA`` format.

    Parameters
    ----------
    cases : list of Case
    contenders : list of str
        "gpulstm-<backend>" names and peer names (``_peers.PEERS``).
    threads : sequence of int or None
        Thread counts to run every contender at; None means all cores.
    repeats : int
        Interleaved samples per contender; the median is reported.
    min_sample_s : float
        Each sample repeats the call until it lasts at least this long.
    max_other_load : float, optional
        Drop a round (one sample of every contender) when other processes used more
        than this many cores meanwhile (from /proc/stat), and run another, up to
        3 x ``repeats`` rounds; None keeps every round.
    reference : callable, optional
        Float64 reference with ``reference_lstm``'s signature.
    progress : callable, optional
        Called with each finished list of result rows (one case, one thread count).
    """
    threads = [t or os.cpu_count() for t in threads]
    run = {
        "schema": SCHEMA,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": command or " ".join(sys.argv),
        "machine": machine_info(contenders),
        "settings": {"repeats": repeats, "min_sample_s": min_sample_s, "statistic": "median",
                     "max_other_load": max_other_load,
                     "interleaved": True, "threads": threads, "dtype": "float32",
                     "io": "NumPy in, NumPy out (last output, B x U)",
                     "onnxruntime": "intra_op_num_threads=threads, allow_spinning=0",
                     "torch": "nn.LSTM batch_first, inference_mode, set_num_threads(threads)",
                     "tolerance": "1e-5 * max(1, max|ref|) vs float64"},
        "results": [],
    }
    for case in cases:
        weights = case.weights()
        x, mask = case.inputs()
        expected = expected_outputs(case, x, mask, weights, reference)
        tol = tolerance(expected)
        for n in threads:
            rows = _race_one(case, contenders, n, weights, x, mask, expected, tol, repeats,
                             min_sample_s, max_other_load)
            run["results"].extend(rows)
            if progress:
                progress(rows)
    run["machine"]["loadavg_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    return run


def _row(case, name, n, **kw):
    row = {"case": case.name, "group": case.group, "B": case.B, "T": case.T, "D": case.D,
           "U": case.U, "flags": case.flags, "threads": n, "contender": name,
           "kind": "gpulstm" if name.startswith("gpulstm-") else "peer",
           "device": "cuda" if "cuda" in name else "cpu", "dtype": "float32",
           "status": "ok", "reason": None, "version": None, "median_ms": None, "times_ms": [],
           "first_call_ms": None, "max_abs_err": None, "tolerance": None,
           "discarded_ms": [], "other_load": [], "noisy": False}
    row.update(kw)
    return row


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


def _race_one(case, contenders, n, weights, x, mask, expected, tol, repeats, min_sample_s,
              max_other_load=None):
    rows, live = {}, []
    with _peers.set_threads(n):
        for name in contenders:
            try:
                t0 = time.perf_counter()
                runner = _peers.make_runner(name, case, *weights, n)
                err = validate(runner, case, x, mask, expected)
                first = (time.perf_counter() - t0) * 1e3
            except _peers.Unavailable as exc:
                rows[name] = _row(case, name, n, status="missing", reason=str(exc))
                continue
            except _peers.Unsupported as exc:
                rows[name] = _row(case, name, n, status="unsupported", reason=str(exc))
                continue
            except Exception as exc:  # a contender that crashes must not end the race
                rows[name] = _row(case, name, n, status="failed", reason=f"{type(exc).__name__}: {exc}")
                continue
            row = _row(case, name, n, device=runner.device, version=runner.version,
                       max_abs_err=err, tolerance=tol, first_call_ms=first)
            # gpulstm must meet the float32 tolerance; peers get 10x (their own math).
            limit = tol if row["kind"] == "gpulstm" else 10 * tol
            if not err <= limit:
                row.update(status="invalid", reason=f"max abs error {err:.3g} > {limit:.3g}")
            else:
                live.append(runner)
            rows[name] = row
        calls = {}
        x_call = np.ascontiguousarray(x[:, :1]) if case.stateful else x
        for runner in live:
            fn = (lambda r=runner: r.call(x_call)) if mask is None else (lambda r=runner: r.call(x_call, mask))
            runner.reset()
            per = _time_calls(fn, 2)  # warm-up; also sizes the sample
            calls[runner.name] = (fn, max(1, int(math.ceil(min_sample_s / max(per, 1e-7)))))
        names = list(calls)
        kept = rounds = 0
        max_rounds = repeats if max_other_load is None else 3 * repeats
        while kept < repeats and rounds < max_rounds:
            k = rounds % max(1, len(names))
            before, t0, sample = _busy_seconds(), time.perf_counter(), {}
            for name in names[k:] + names[:k]:  # rotate who goes first
                fn, n_calls = calls[name]
                sample[name] = _time_calls(fn, n_calls) * 1e3
            load = _other_load(before, _busy_seconds(), time.perf_counter() - t0)
            rounds += 1
            noisy = max_other_load is not None and load is not None and load > max_other_load
            kept += not noisy
            for name, ms in sample.items():
                rows[name]["discarded_ms" if noisy else "times_ms"].append(ms)
                if not noisy:
                    rows[name]["other_load"].append(None if load is None else round(load, 3))
    for name in names:
        row = rows[name]
        if len(row["times_ms"]) < max(1, min(3, repeats)):  # too few quiet rounds: use them all
            row["noisy"] = True
            row["times_ms"] += row["discarded_ms"]
        row["median_ms"] = float(np.median(row["times_ms"]))
    return [rows[name] for name in contenders]
