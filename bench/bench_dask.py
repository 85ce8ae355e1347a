"""Throughput of ``gpulstm.dask.predict`` on a LocalCluster beside single-process predict.

    pytest bench/bench_dask.py --benchmark-only

One model (Input(T, D) -> LSTM(U) -> Dense(1)) scores N sequences four ways:
``model.predict`` in this process with 1 and with all numba threads, and
``gpulstm.dask.predict`` on a LocalCluster of 1 and 2 worker processes (1 thread
and 1 numba thread each).  The input is persisted on the workers first (as when
they read it from storage), so a round is compute plus gathering the result.
``extra_info['seq_per_s']`` is N / median; on this 2-core machine 2 workers can at
best double 1 worker, and the single-process all-threads run is the bar to beat.
"""
import os
import warnings

import numpy as np
import pytest

distributed = pytest.importorskip("dask.distributed")
da = pytest.importorskip("dask.array")

import gpulstm  # noqa: E402
import gpulstm.dask as gdask  # noqa: E402

N, T, D, U = 2048, 50, 32, 128
CHUNK = 256
MODES = ["single-1t", "single-all", "dask-1w", "dask-2w"]


@pytest.fixture(scope="module")
def workload():
    rng = np.random.default_rng(0)
    model = gpulstm.Sequential([gpulstm.Input((T, D)), gpulstm.LSTM(U), gpulstm.Dense(1)])
    model.set_weights([rng.normal(scale=0.2, size=w.shape).astype(w.dtype)
                       for w in model.get_weights()])
    x = rng.normal(size=(N, T, D)).astype("float32")
    import numba

    from gpulstm.kernels import cpu_entry

    cpu_entry.load_numba()  # time the numba kernels, not the NumPy tier of first calls
    numba.set_num_threads(1)  # the workers' kernel variant, compiled and cached here
    ref = model.predict(x, batch_size=CHUNK, verbose=0)
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    return model, x, ref


def _check(out, ref):
    tol = 1e-5 * max(1.0, float(np.abs(ref).max()))
    err = float(np.abs(np.asarray(out) - ref).max())
    assert err <= tol, f"max abs error {err:.3g} > {tol:.3g}"
    return err


@pytest.mark.parametrize("mode", MODES)
def bench_dask_predict(benchmark, workload, mode):
    import numba

    model, x, ref = workload
    benchmark.group = f"dask predict N={N} T={T} D={D} U={U} chunk={CHUNK}"
    info = dict(N=N, T=T, D=D, U=U, chunk=CHUNK, mode=mode, device="cpu", dtype="float32",
                backend="cpu", cores=os.cpu_count())
    if mode.startswith("single"):
        threads = 1 if mode == "single-1t" else numba.config.NUMBA_NUM_THREADS
        numba.set_num_threads(threads)
        try:
            def run():
                return model.predict(x, batch_size=CHUNK, verbose=0, backend="cpu")

            info["max_abs_err"] = _check(run(), ref)  # validates and compiles off the clock
            benchmark.pedantic(run, rounds=5, warmup_rounds=1)
        finally:
            numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        info.update(threads=threads, workers=0)
    else:
        workers = int(mode[len("dask-")])
        env = {"NUMBA_NUM_THREADS": "1", "GPULSTM_NUMPY_TIER": "0"}  # numba, as above
        if os.environ.get("NUMBA_CACHE_DIR"):
            env["NUMBA_CACHE_DIR"] = os.environ["NUMBA_CACHE_DIR"]
        with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                      dashboard_address=None, env=env,
                                      silence_logs=40) as cluster, \
                distributed.Client(cluster) as client:
            with warnings.catch_warnings():  # "large graph": the data goes over once, here
                warnings.simplefilter("ignore", UserWarning)
                lazy = da.from_array(x, chunks=(CHUNK, T, D)).persist()
                distributed.wait(lazy)
            y = gdask.predict(model, lazy, batch_size=CHUNK, backend="cpu")

            def run():
                return client.compute(y).result()

            info["max_abs_err"] = _check(run(), ref)  # workers load kernels, build the model
            benchmark.pedantic(run, rounds=5, warmup_rounds=1)
        info.update(threads=1, workers=workers)
    info["seq_per_s"] = N / benchmark.stats.stats.median
    benchmark.extra_info.update(info)
