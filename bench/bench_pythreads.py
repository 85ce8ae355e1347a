"""Python threads sharing one non-stateful model: calls/s with 1 and 2 threads, under
pytest-benchmark (the model, inputs and serving loop are ``gpulstm._pythreads``'s; the
race with its own pinned worker process is ``gpulstm bench --pythreads``).

    NUMBA_NUM_THREADS=1 GPULSTM_NUMPY_TIER=0 taskset -c 0-1 \\
        pytest bench/bench_pythreads.py --benchmark-only

Issue 13's target: 2 threads >= 1.6x the calls/s of one, results bit-identical.
"""
import pytest


@pytest.mark.parametrize("py_threads", [1, 2], ids=lambda n: f"{n}pythreads")
def bench_python_threads(benchmark, py_threads):
    import os

    from gpulstm import _pythreads

    model, x, _ = _pythreads._model(_pythreads.SIZE)
    first = model.predict(x, verbose=0)
    _pythreads._serve(model, x, first, py_threads, 0.2)  # compile and warm up
    calls, wall, identical = benchmark.pedantic(
        _pythreads._serve, args=(model, x, first, py_threads, 1.0), rounds=3, iterations=1)
    assert identical, "outputs differ from the single-threaded call's"
    benchmark.group = f"python threads {tuple(_pythreads.SIZE)}"
    benchmark.extra_info.update(py_threads=py_threads, calls_per_s=calls / wall,
                                numba_threads=os.environ.get("NUMBA_NUM_THREADS"),
                                numpy_tier=os.environ.get("GPULSTM_NUMPY_TIER"))
