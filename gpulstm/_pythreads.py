"""Python threads sharing one model (``gpulstm bench --pythreads``).

One non-stateful ``Sequential([Input((T, D)), LSTM(U)])`` with seeded weights is
called with the same (B, T, D) input from 1, then 2 Python threads, then 2 and 1
again, ``seconds`` / 2 each (the better of each count's two is kept), in a worker process started with NUMBA_NUM_THREADS=1 and the NumPy
tier off (pinned like the race's workers).  Reported: calls per second at each
thread count, whether every output was bit-identical to the first call's (and that
one within the float32 tolerance of the float64 reference), and the speed-up.
Issue 13's target: 2 threads >= 1.6x the calls/s of one.
"""
import json
import sys
import threading
import time

import numpy as np

SIZE = (4, 50, 32, 64)  # B, T, D, U
SECONDS = 2.0
THREADS = (1, 2)
SPEEDUP_TARGET = 1.6
WORKER_ENV = {"NUMBA_NUM_THREADS": "1", "GPULSTM_NUMPY_TIER": "0"}


def _model(size):
    import gpulstm
    from gpulstm import _cases

    B, T, D, U = size
    case = _cases.Case("pythreads", B, T, D, U)
    model = gpulstm.Sequential([gpulstm.Input((T, D)), gpulstm.LSTM(U)])
    model.set_weights(case.weights())
    x, _ = case.inputs()
    expected = _cases.expected_outputs(case, x, None, case.weights())
    return model, x, expected


def _serve(model, x, first, n, seconds):
    """``n`` threads call ``model.predict(x)`` until ``seconds`` pass: (calls, wall s, identical)."""
    counts, same = [0] * n, [True] * n
    start = threading.Barrier(n + 1)
    stop = [0.0]

    def loop(k):
        start.wait()
        while time.perf_counter() < stop[0]:
            y = model.predict(x, verbose=0)
            same[k] &= bool(np.array_equal(y, first))
            counts[k] += 1

    workers = [threading.Thread(target=loop, args=(k,)) for k in range(n)]
    for w in workers:
        w.start()
    stop[0] = time.perf_counter() + seconds
    t0 = time.perf_counter()
    start.wait()
    for w in workers:
        w.join()
    return sum(counts), time.perf_counter() - t0, all(same)


def measure(size=SIZE, seconds=SECONDS, threads=THREADS):
    """The ``pythreads`` section of a run (called inside the worker process)."""
    import os

    from gpulstm import _cases

    model, x, expected = _model(size)
    first = model.predict(x, verbose=0)
    err = float(np.max(np.abs(first.astype(np.float64) - expected[0])))
    tol = _cases.tolerance(expected)
    _serve(model, x, first, 1, min(0.2, seconds))  # warm-up
    best = {}
    # two rounds in opposite orders, the better of each thread count's two (shared machines)
    for n in list(threads) + list(threads)[::-1]:
        cpu = time.process_time()
        calls, wall, identical = _serve(model, x, first, n, seconds / 2)
        cpu = time.process_time() - cpu
        # cpu_util: cores this process kept busy (about n if the threads really ran together)
        r = {"threads": n, "calls": calls, "seconds": round(wall, 3), "calls_per_s": calls / wall,
             "cpu_util": round(cpu / wall, 3),
             "identical": identical and best.get(n, {}).get("identical", True)}
        if n not in best or r["calls_per_s"] > best[n]["calls_per_s"]:
            best[n] = r
        best[n]["identical"] = r["identical"]
    results = [best[n] for n in threads]
    base = results[0]["calls_per_s"]
    return {"size": list(size), "seconds": seconds, "max_abs_err": err, "tolerance": tol,
            "valid": err <= tol, "env": {k: os.environ.get(k) for k in WORKER_ENV},
            "results": results, "speedup": results[-1]["calls_per_s"] / base if base else None,
            "speedup_target": SPEEDUP_TARGET}


def run(size=SIZE, seconds=SECONDS, threads=THREADS, cpus=None, timeout=600):
    """Start the worker (``python -m gpulstm._pythreads``); its section, or {"error": ...}."""
    from gpulstm import _race

    cpus = _race.default_cpus(threads) if cpus is None else cpus
    env = _race.worker_env("gpulstm-cpu", 1)
    env.update(WORKER_ENV)
    spec = {"module": "gpulstm._pythreads", "size": list(size), "seconds": seconds,
            "threads": list(threads)}
    rows, error = _race.run_worker(spec, cpus, env, timeout)
    if error or not rows:
        return {"error": error or "no result"}
    out = rows[0]
    out["command"] = " ".join(_race.worker_command(cpus, spec["module"])) + " < SPEC.json"
    return out


def lines(section):
    """Text lines of a ``pythreads`` section."""
    if "error" in section:
        return [f"Python threads: not measured ({section['error']})"]
    B, T, D, U = section["size"]
    per = ", ".join(f"{r['threads']} thread(s) {r['calls_per_s']:.0f} calls/s "
                    f"({r.get('cpu_util', float('nan')):.2f} cores busy)"
                    f"{'' if r['identical'] else ' (OUTPUTS DIFFER)'}" for r in section["results"])
    speed = section["speedup"]
    mark = "met" if speed is not None and speed >= section["speedup_target"] else "missed"
    return [f"Python threads sharing one Sequential([LSTM({U})]) on ({B}, {T}, {D}), NUMBA_NUM_THREADS=1, "
            f"tier off, ~{section['seconds']:g} s each: {per}; speed-up {speed:.2f}x (target >= "
            f"{section['speedup_target']:g}x: {mark}); bit-identical: "
            f"{'yes' if all(r['identical'] for r in section['results']) else 'NO'}; first output vs "
            f"float64 reference {section['max_abs_err']:.2g} (tolerance {section['tolerance']:.2g})"]


def main():
    spec = json.loads(sys.stdin.read())
    out = sys.stdout
    sys.stdout = sys.stderr
    section = measure(tuple(spec["size"]), float(spec["seconds"]), tuple(spec["threads"]))
    out.write(json.dumps([section]) + "\n")
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
