"""Python threads sharing one non-stateful model: calls/s with 1 and 2 threads.

Issue 13's target: with NUMBA_NUM_THREADS=1 and the NumPy tier off, a shared model at
(B, T, D, U) = (4, 50, 32, 64) serves 2 Python threads at >= 1.6x the calls/s of one,
results bit-identical.  Script mode sets that environment in a child process pinned to
cores 0-1 (OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE unset there) and prints the ratio::

    python bench/bench_pythreads.py [--calls 2000]

Under pytest: ``NUMBA_NUM_THREADS=1 GPULSTM_NUMPY_TIER=0 pytest bench/bench_pythreads.py
--benchmark-only`` (``extra_info["calls_per_s"]``).
"""
import argparse
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

B, T, D, U = 4, 50, 32, 64


def make_model():
    import gpulstm

    rng = np.random.default_rng(0)
    inp = gpulstm.Input((T, D))
    model = gpulstm.Model(inp, gpulstm.Dense(1)(gpulstm.LSTM(U)(inp)))
    model.set_weights([rng.standard_normal(w.shape).astype(np.float32) * 0.2
                       for w in model.get_weights()])
    xs = [rng.standard_normal((B, T, D)).astype(np.float32) for _ in range(8)]
    return model, xs


def serve(model, xs, n_threads, calls):
    """Seconds for ``calls`` predict_on_batch calls split over ``n_threads`` threads;
    raises if any result differs from the single-threaded one."""
    ref = [model.predict_on_batch(x) for x in xs]
    start, bad = threading.Barrier(n_threads + 1), []

    def worker(k):
        start.wait()
        for i in range(calls // n_threads):
            j = (i + k) % len(xs)
            if not np.array_equal(model.predict_on_batch(xs[j]), ref[j]):
                bad.append(j)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(n_threads)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    if bad:
        raise AssertionError(f"{len(bad)} results differ from the single-threaded ones")
    return elapsed


@pytest.mark.parametrize("py_threads", [1, 2], ids=lambda n: f"{n}pythreads")
def bench_python_threads(benchmark, py_threads):
    model, xs = make_model()
    calls = 400
    serve(model, xs, py_threads, 40)  # compile and warm up
    benchmark.group = f"python threads ({B},{T},{D},{U})"
    benchmark.extra_info.update(py_threads=py_threads, calls=calls,
                                numba_threads=os.environ.get("NUMBA_NUM_THREADS"))
    secs = benchmark.pedantic(lambda: serve(model, xs, py_threads, calls), rounds=5,
                              iterations=1)
    benchmark.extra_info["calls_per_s"] = calls / secs


def _child(calls, repeats):
    model, xs = make_model()
    serve(model, xs, 2, 40)
    rates = {}
    for n in (1, 2, 1, 2):  # alternated; best of each
        best = min(serve(model, xs, n, calls) for _ in range(repeats))
        rates[n] = max(rates.get(n, 0.0), calls / best)
    print(f"1 thread {rates[1]:.0f} calls/s, 2 threads {rates[2]:.0f} calls/s, "
          f"ratio {rates[2] / rates[1]:.2f} (target >= 1.6); results bit-identical")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return _child(args.calls, args.repeats)
    env = dict(os.environ, NUMBA_NUM_THREADS="1", GPULSTM_NUMPY_TIER="0",
               OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        env.pop(k, None)
    cmd = ["taskset", "-c", "0-1", sys.executable, __file__, "--child",
           "--calls", str(args.calls), "--repeats", str(args.repeats)]
    print("#", " ".join(cmd), "(NUMBA_NUM_THREADS=1 GPULSTM_NUMPY_TIER=0)")
    subprocess.run(cmd, env=env, check=True)


if __name__ == "__main__":
    main()
