"""The busy-machine race (``gpulstm bench --busy``): single calls under a CPU hog.

A hog is ``python -c 'while 1: pass'``, first left to the scheduler ("unpinned"),
then pinned to one core ("pinned", ``taskset -c 1``); "idle" runs with none.  Under
each load, gpulstm and onnxruntime each run in their own worker process (the
race's workers, pinned to the same cores) and time ``calls`` single calls per size
and thread count: median and 90th percentile, and gpulstm / onnxruntime for both.

The hog always dies: it is killed (its whole process group) when its phase ends,
on an exception, Ctrl-C or SIGTERM, and ``timeout -s KILL`` bounds its life should
this process itself be killed.
"""
import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time

from gpulstm import _race

LOAD_CODE = "while 1: pass"
LOADS = ("idle", "unpinned", "pinned")
CONTENDERS = ("gpulstm-cpu", "onnxruntime")
CALLS = 200
LOAD_LIMIT_S = 3600  # the longest a hog may live (one load phase)
P90_TARGET = 1.5  # issue 13: gpulstm / onnxruntime under the same load, median and p90


def load_command(load, cpu="1", limit_s=LOAD_LIMIT_S):
    """The hog's command line for ``load`` ("unpinned" or "pinned" to ``cpu``)."""
    if shutil.which("timeout"):
        cmd = ["timeout", "-s", "KILL", str(int(limit_s)), sys.executable, "-c", LOAD_CODE]
    else:  # no coreutils: the loop bounds itself
        cmd = [sys.executable, "-c", f"import time\nend = time.monotonic() + {int(limit_s)}\n"
                                     "while time.monotonic() < end: pass"]
    if load == "pinned" and shutil.which("taskset"):
        cmd = ["taskset", "-c", str(cpu)] + cmd
    return cmd


def _kill_group(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the hog and its timeout wrapper: its own group
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


@contextlib.contextmanager
def cpu_load(load, cpu="1", limit_s=LOAD_LIMIT_S):
    """Run the hog of ``load`` for the ``with`` block; yields a dict filled with its fate."""
    fate = {"load": load, "alive_at_end": None}
    if load == "idle":
        yield fate
        return
    if load not in LOADS:
        raise ValueError(f"Expected a load among {LOADS}. Received: {load!r}")
    proc = subprocess.Popen(load_command(load, cpu, limit_s), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally
    try:
        time.sleep(0.2)  # the hog is spinning before the first worker starts
        yield fate
        fate["alive_at_end"] = proc.poll() is None
    finally:
        _kill_group(proc)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def busy_race(cases, threads, *, contenders=CONTENDERS, calls=CALLS, loads=LOADS, cpus=None,
              load_cpu="1", limit_s=LOAD_LIMIT_S, progress=None, command=None):
    """Race ``contenders`` call by call under each load; a run dict with a ``busy`` section.

    The run's ``results`` stay empty (these are not the idle race's medians); the
    ``busy`` section holds every row with its ``load``.
    """
    rows, fates, run = [], [], None
    if cpus is None:  # at least cores 0 and 1, so the hog pinned to core 1 shares them with 1 thread too
        cpus = _race.default_cpus(list(threads) + [2])
    for load in loads:
        with cpu_load(load, load_cpu, limit_s) as fate:
            sub = _race.race(cases, list(contenders), threads, calls=calls, passes=1, cpus=cpus,
                             command=command, timeout=limit_s,
                             progress=progress and (lambda *a, ld=load: progress(ld, *a)))
        fates.append(fate)
        rows += [dict(r, load=load) for r in sub["results"]]
        run = run or sub
    run["results"] = []
    run["busy"] = {"loads": list(loads), "load_command": shlex.join(load_command("pinned", load_cpu, limit_s)),
                   "load_cpu": load_cpu, "calls": calls, "fates": fates, "results": rows}
    return run


def busy_table(busy, mine="gpulstm-cpu", peer="onnxruntime"):
    """Markdown: median / p90 of both contenders per load, size and threads, and the ratios."""
    cells = {}
    for r in busy["results"]:
        cells[(r["load"], r["case"], r["threads"], r["contender"])] = r
    lines = [f"| load | case | threads | {mine} median / p90 ms | {peer} median / p90 ms | "
             f"ratio median | ratio p90 (target <= {P90_TARGET}) |", "|---|---|---|---|---|---|---|"]
    seen = dict.fromkeys((r["load"], r["case"], r["threads"]) for r in busy["results"])
    for load, case, n in seen:
        a, b = cells.get((load, case, n, mine)), cells.get((load, case, n, peer))
        ok = [x is not None and x["status"] == "ok" for x in (a, b)]
        text = [f"{x['median_ms']:.3f} / {x['p90_ms']:.3f}" if good else (x["status"] if x else "-")
                for x, good in zip((a, b), ok)]
        ratios = ["-", "-"]
        if all(ok):
            rm, rp = a["median_ms"] / b["median_ms"], a["p90_ms"] / b["p90_ms"]
            ratios = [f"{rm:.2f}", f"{rp:.2f}" + ("" if max(rm, rp) <= P90_TARGET else " MISSED")]
        lines.append(f"| {load} | {case} | {n} | {text[0]} | {text[1]} | {ratios[0]} | {ratios[1]} |")
    return "\n".join(lines)


def idle_rows(busy):
    """The busy section's idle phase as a run for ``_results.thread_scaling``."""
    return {"results": [r for r in busy["results"] if r["load"] == "idle"]}
