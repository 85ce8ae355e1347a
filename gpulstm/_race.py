"""The benchmark race behind ``gpulstm bench``: every contender in its own process.

For every thread count, each contender runs in a fresh worker process
(``python -m gpulstm._measure``, see there) pinned with ``taskset -c CPUS`` to the
same cores (by default the first N cores for N threads: a one-thread worker gets one
core, so a runtime that ignores its thread setting cannot use the second), with the
same seeded weights, the NumPy first-call tier off and
OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE unset in the worker only.  The whole round
runs ``passes`` times (2 by default) with the contender order reversed on every
other pass; a cell is the best of the passes' medians.  Interleaving contenders in
one process distorts ratios by up to 2x (spinning thread pools, evicted caches),
hence one process each.

Saved runs follow the JSON schema of ``gpulstm._results``.  The sizes and the
reference live in ``gpulstm._cases`` (re-exported here).
"""
import datetime
import json
import os
import shutil
import subprocess
import sys
import threading

from gpulstm import _peers
from gpulstm._cases import (GROUPS, REFERENCES, STREAM_STEPS, TAGS, Case, expected_outputs,  # noqa: F401
                            matrix, reference_gru, reference_lstm, select, tolerance, validate)
from gpulstm._machine import machine_info
from gpulstm._measure import make_row
from gpulstm._results import SCHEMA

UNSET_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")  # they slow NumPy's BLAS on these machines
WORKER_ENV = {"GPULSTM_NUMPY_TIER": "0"}  # time the numba kernels, not the first-call tier
TIMEOUT_S = 3600.0  # one worker (one contender, one thread count, every case)


def default_cpus(threads):
    """The first max(threads) cores of the machine ("0,1")."""
    n = min(max(threads), os.cpu_count() or 1)
    return ",".join(str(i) for i in range(n))


def cpus_for(n, cpus=None):
    """The ``taskset -c`` list of the workers at ``n`` threads: ``cpus`` when given (every
    thread count on the same cores), else the first ``n`` cores ("0" for one thread).

    One core for one thread keeps a runtime that does not honour its thread setting
    (JAX's XLA CPU client spins a second core at "1 thread") at one thread.
    """
    return default_cpus([n]) if cpus is None else cpus


def cpus_text(threads, cpus=None):
    """What ``settings["cpus"]`` records: ``cpus``, or the list per thread count."""
    if cpus is not None:
        return cpus
    return "; ".join(f"{n} thread{'s' * (n > 1)}: {cpus_for(n)}" for n in threads)


def worker_env(contender, threads, base=None):
    """The environment of a worker: ``base`` (os.environ) with the race's settings."""
    env = dict(os.environ if base is None else base)
    for key in UNSET_ENV:
        env.pop(key, None)
    env.update(WORKER_ENV)
    env.update(_peers.worker_env(contender, threads))
    return env


def worker_command(cpus, module="gpulstm._measure", args=()):
    """``taskset -c CPUS python -m MODULE ARGS`` (unpinned where taskset is missing or cpus is empty)."""
    cmd = [sys.executable, "-m", module, *args]
    if cpus and shutil.which("taskset"):
        cmd = ["taskset", "-c", cpus] + cmd
    return cmd


def run_worker(spec, cpus, env, timeout=TIMEOUT_S, on_rows=None):
    """Start one worker on ``spec`` (JSON on its stdin); return ``(rows, error)``.

    ``rows`` are the result rows it wrote; ``error`` is None, or why it stopped early
    (exit code and the last stderr line, or the timeout).  ``on_rows`` is called
    with each case's rows as they arrive.
    """
    proc = subprocess.Popen(worker_command(cpus, spec.get("module", "gpulstm._measure")),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    rows, err_lines = [], []

    def read_out():
        for line in proc.stdout:
            if line.strip():
                got = json.loads(line)
                rows.extend(got)
                if on_rows:
                    on_rows(got)

    def read_err():
        for line in proc.stderr:
            err_lines.append(line.rstrip())
            del err_lines[:-20]

    readers = [threading.Thread(target=f, daemon=True) for f in (read_out, read_err)]
    for t in readers:
        t.start()
    error = None
    try:
        proc.stdin.write(json.dumps(spec))
        proc.stdin.close()
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        error = f"worker timed out after {timeout:g} s"
    finally:
        if proc.poll() is None:  # timed out or interrupted: never leave a worker behind
            proc.kill()
            proc.wait()
        for t in readers:
            t.join(timeout=10)
    if error is None and proc.returncode != 0:
        last = next((ln for ln in reversed(err_lines) if ln.strip()), "no message")
        error = f"worker exited with code {proc.returncode}: {last}"
    return rows, error


def best_of(rows):
    """One row from a cell's passes: the ok pass with the lowest median, and every median."""
    ok = [r for r in rows if r["status"] == "ok"]
    best = dict(min(ok, key=lambda r: r["median_ms"]) if ok else rows[0])
    best["pass_medians_ms"] = [r["median_ms"] for r in rows]
    return best


def settings(threads, repeats, min_sample_s, max_other_load, passes, calls, cpus, command=None):
    """The ``settings`` of a run; ``command``: the worker's command line (default: ours)."""
    return {"isolation": "process", "passes": passes, "order": "alternating",
            "statistic": (f"median of {calls} single calls (and p90)" if calls else
                          f"best of {passes} per-process medians"),
            "repeats": repeats, "min_sample_s": min_sample_s, "calls": calls,
            "max_other_load": max_other_load, "interleaved": False, "threads": threads,
            "cpus": cpus_text(threads, cpus),
            "worker_command": command or " ".join(worker_command(cpus_for(max(threads), cpus)))
            + " < SPEC.json",
            "worker_env": {**WORKER_ENV, **{k: None for k in UNSET_ENV}},
            "dtype": "float32", "io": "NumPy in, NumPy out (last output, B x U)",
            "peers": dict(_peers.DESCRIPTIONS), "tolerance": "1e-5 * max(1, max|ref|) vs float64"}


def new_run(contenders, threads, command, run_settings):
    """An empty run: schema, time, command, the machine as the workers see it, settings."""
    return {
        "schema": SCHEMA,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": command or " ".join(sys.argv),
        "machine": {**machine_info(contenders, env=worker_env(contenders[0], threads[0])),
                    "env_unset_in_workers": {k: os.environ.get(k) for k in UNSET_ENV}},
        "settings": run_settings,
        "results": [],
    }


def race(cases, contenders, threads=(None,), *, repeats=7, min_sample_s=0.03, max_other_load=None,
         passes=2, calls=None, cpus=None, progress=None, command=None, timeout=TIMEOUT_S):
    """Run the race; return a run dict in the ``SCHEMA`` format.

    Parameters
    ----------
    cases : list of Case
    contenders : list of str
        "gpulstm-<backend>" names and peer names (``_peers.PEERS``).
    threads : sequence of int or None
        Thread counts to run every contender at; None means all cores.
    repeats, min_sample_s : int, float
        Samples per worker (each repeating the call for at least ``min_sample_s``); the
        median is the worker's result.
    max_other_load : float, optional
        Drop and redo a sample during which other processes used more than this many
        cores (from /proc/stat), up to 3 x ``repeats`` samples.
    passes : int
        Workers per contender and thread count; the order is reversed every other pass.
    calls : int, optional
        Time this many single calls instead (median and 90th percentile): the busy race.
    cpus : str, optional
        ``taskset -c`` list for every worker (default: the first N cores at N threads).
    progress : callable, optional
        Called as ``progress(contender, threads, pass_index, rows)`` per finished case.
    """
    threads = [t or os.cpu_count() for t in threads]
    run = new_run(contenders, threads, command,
                  settings(threads, repeats, min_sample_s, max_other_load, passes, calls, cpus))
    spec_common = {"cases": [c.to_dict() for c in cases], "repeats": repeats,
                   "min_sample_s": min_sample_s, "max_other_load": max_other_load, "calls": calls}

    def one(name, n, p):
        spec = dict(spec_common, contender=name, threads=n)
        return run_worker(spec, cpus_for(n, cpus), worker_env(name, n), timeout,
                          on_rows=progress and (lambda r: progress(name, n, p, r)))

    return run_all(run, cases, contenders, threads, passes, one)


def run_all(run, cases, contenders, threads, passes, run_one, absent="failed"):
    """Fill ``run["results"]``: ``run_one(contender, threads, pass)`` gives ``(rows, error)``.

    Workers run per thread count, pass after pass, the contender order reversed every
    other pass; a case a worker gave no row for gets an ``absent`` row saying why; each
    cell keeps the best of its passes (``best_of``).
    """
    run["settings"]["cells"] = sorted({case.cell for case in cases})  # the recurrent layers raced
    cells = {}  # (case name, threads, contender) -> one row per pass
    for n in threads:
        for p in range(passes):
            for name in contenders if p % 2 == 0 else contenders[::-1]:
                rows, error = run_one(name, n, p)
                done = {r["case"] for r in rows}
                rows += [make_row(case, name, n, status=absent, reason=error or "no result")
                         for case in cases if case.name not in done]
                for r in rows:
                    cells.setdefault((r["case"], n, name), []).append(r)
    for case in cases:
        for n in threads:
            run["results"] += [best_of(cells[(case.name, n, name)]) for name in contenders]
    run["machine"]["loadavg_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    return run
