"""One contender at one thread count, timed inside its own process (the race's worker).

``gpulstm._race`` starts ``python -m gpulstm._measure`` once per contender, thread
count and pass (pinned with ``taskset``), writes a JSON spec to its stdin and reads
one JSON line of result rows per case from its stdout.  In the worker every case is
built with the seeded weights, checked against the float64 reference, warmed up,
then timed either in ``repeats`` samples of at least ``min_sample_s`` each (the
median is the result) or, with ``calls``, call by call (median and 90th percentile).
"""
import json
import math
import sys
import time

import numpy as np

from gpulstm import _cases, _peers
from gpulstm._machine import _busy_seconds, _other_load


def _time_calls(fn, n):
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n


def _cpu_seconds():
    return time.process_time()  # every thread of this process, ns resolution (os.times: 10 ms ticks)


def make_row(case, name, n, **kw):
    """A result row of ``gpulstm._results.SCHEMA`` with every field at its empty value."""
    row = {"case": case.name, "group": case.group, "B": case.B, "T": case.T, "D": case.D,
           "U": case.U, "cell": case.cell, "flags": case.flags, "threads": n, "contender": name,
           "kind": "gpulstm" if name.startswith("gpulstm-") else "peer",
           "device": "cuda" if "cuda" in name else "cpu", "dtype": "float32",
           "status": "ok", "reason": None, "version": None, "median_ms": None, "times_ms": [],
           "first_call_ms": None, "max_abs_err": None, "tolerance": None,
           "discarded_ms": [], "other_load": [], "noisy": False}
    row.update(kw)
    return row


def prepare(case, name, n, weights, x, mask, expected, tol):
    """Build and validate contender ``name``: ``(row, runner)``, runner None unless it is ok."""
    try:
        t0 = time.perf_counter()
        runner = _peers.make_runner(name, case, *weights, n)
        err = _cases.validate(runner, case, x, mask, expected)
        first = (time.perf_counter() - t0) * 1e3
    except _peers.Unavailable as exc:
        return make_row(case, name, n, status="missing", reason=str(exc)), None
    except _peers.Unsupported as exc:
        return make_row(case, name, n, status="unsupported", reason=str(exc)), None
    except Exception as exc:  # a contender that crashes must not end the race
        return make_row(case, name, n, status="failed", reason=f"{type(exc).__name__}: {exc}"), None
    row = make_row(case, name, n, device=runner.device, version=runner.version, max_abs_err=err,
                   tolerance=tol, first_call_ms=first, notes=runner.notes)
    # gpulstm must meet the float32 tolerance; peers get 10x (their own math).
    limit = tol if row["kind"] == "gpulstm" else 10 * tol
    if not err <= limit:
        row.update(status="invalid", reason=f"max abs error {err:.3g} > {limit:.3g}")
        return row, None
    return row, runner


def call_fn(runner, case, x, mask):
    """The timed call: the whole sequence, or one T=1 step of a stateful case."""
    x_call = np.ascontiguousarray(x[:, :1]) if case.stateful else x
    runner.reset()
    if mask is None:
        return lambda: runner.call(x_call)
    return lambda: runner.call(x_call, mask)


def time_samples(row, fn, repeats, min_sample_s, max_other_load=None):
    """Fill ``row`` with ``repeats`` samples of at least ``min_sample_s`` each (ms per call).

    With ``max_other_load``, a sample during which other processes used more than
    that many cores is dropped and redone, up to 3 x ``repeats`` samples.
    """
    per = _time_calls(fn, 2)  # warm-up; also sizes the sample
    n_calls = max(1, int(math.ceil(min_sample_s / max(per, 1e-7))))
    kept = tries = 0
    wall = cpu = 0.0
    while kept < repeats and tries < (repeats if max_other_load is None else 3 * repeats):
        before, c0, t0 = _busy_seconds(), _cpu_seconds(), time.perf_counter()
        ms = _time_calls(fn, n_calls) * 1e3
        dt = time.perf_counter() - t0
        load = _other_load(before, _busy_seconds(), dt)
        tries += 1
        noisy = max_other_load is not None and load is not None and load > max_other_load
        if noisy:
            row["discarded_ms"].append(ms)
            continue
        kept += 1
        wall, cpu = wall + dt, cpu + _cpu_seconds() - c0
        row["times_ms"].append(ms)
        row["other_load"].append(None if load is None else round(load, 3))
    if len(row["times_ms"]) < max(1, min(3, repeats)):  # too few quiet samples: use them all
        row["noisy"] = True
        row["times_ms"] += row["discarded_ms"]
    row["median_ms"] = float(np.median(row["times_ms"]))
    row["calls_per_sample"] = n_calls
    # cores this process kept busy while timed: > 1 at 1 thread means the setting was ignored
    row["cpu_util"] = round(cpu / wall, 3) if wall > 0 else None


def time_each_call(row, fn, calls):
    """Fill ``row`` with ``calls`` single-call times (ms): median and 90th percentile."""
    fn()  # warm-up
    c0, t0 = _cpu_seconds(), time.perf_counter()
    for _ in range(calls):
        t = time.perf_counter()
        fn()
        row["times_ms"].append((time.perf_counter() - t) * 1e3)
    wall = time.perf_counter() - t0
    row["median_ms"] = float(np.median(row["times_ms"]))
    row["p90_ms"] = float(np.percentile(row["times_ms"], 90))
    row["cpu_util"] = round((_cpu_seconds() - c0) / wall, 3) if wall > 0 else None


def measure(spec, emit):
    """Run ``spec`` (contender, threads, cases, ...) and call ``emit(rows)`` once per case."""
    name, n = spec["contender"], int(spec["threads"])
    with _peers.set_threads(n):
        for d in spec["cases"]:
            case = _cases.Case.from_dict(d)
            weights = case.weights()
            x, mask = case.inputs()
            expected = _cases.expected_outputs(case, x, mask, weights)
            row, runner = prepare(case, name, n, weights, x, mask, expected, _cases.tolerance(expected))
            if runner is not None:
                fn = call_fn(runner, case, x, mask)
                if spec.get("calls"):
                    time_each_call(row, fn, int(spec["calls"]))
                else:
                    time_samples(row, fn, int(spec["repeats"]), float(spec["min_sample_s"]),
                                 spec.get("max_other_load"))
            emit([row])


def main():
    spec = json.loads(sys.stdin.read())
    out = sys.stdout

    def emit(rows):
        out.write(json.dumps(rows) + "\n")
        out.flush()

    sys.stdout = sys.stderr  # a library's prints must not corrupt the JSON lines
    measure(spec, emit)
    return 0


if __name__ == "__main__":
    sys.exit(main())
