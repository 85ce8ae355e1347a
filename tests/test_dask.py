"""gpulstm.dask.predict on a real dask.distributed LocalCluster (2 worker processes).

The parent computes every reference with ``model.predict`` first, which also
compiles the numba kernels into the shared cache the workers then load.
Chunks stay under 8 rows so workers and parent use the same 1-thread kernels.
"""
import os
import subprocess
import sys

import numpy as np
import pytest

distributed = pytest.importorskip("dask.distributed")
da = pytest.importorskip("dask.array")

import dask  # noqa: E402

import gpulstm.dask as gdask  # noqa: E402
from gpulstm import (LSTM, Dense, Embedding, Input, Model, Sequential,  # noqa: E402
                     concatenate)

# numba-cuda builds before 0.2x reference np.row_stack, gone in NumPy 2.5 (the device
# image): alias it here and in each worker so the CUDA target loads there.
if not hasattr(np, "row_stack"):
    np.row_stack = np.vstack

N = 21  # chunks of 6 rows: 6, 6, 6, 3


def _close(out, ref):
    out, ref = np.asarray(out), np.asarray(ref)
    assert out.shape == ref.shape and out.dtype == ref.dtype
    tol = 1e-5 * max(1.0, float(np.abs(ref).max()))
    np.testing.assert_allclose(out, ref, rtol=0, atol=tol)


def _randomize(model, seed):
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(scale=0.5, size=w.shape).astype(w.dtype)
                       for w in model.get_weights()])
    return model


@pytest.fixture(scope="module")
def cases():
    """Three small models, their data and the single-process references."""
    rng = np.random.default_rng(0)
    seq = _randomize(Sequential([Input((5, 3)), LSTM(4), Dense(2)]), 1)
    x_seq = rng.normal(size=(N, 5, 3)).astype("float32")

    ids_in = Input((6,), dtype="int32")
    emb = _randomize(Model(ids_in, LSTM(4, return_sequences=True)(
        Embedding(10, 3, mask_zero=True)(ids_in))), 2)
    ids = rng.integers(1, 10, size=(N, 6)).astype("int32")
    for row in range(N):  # right padding of varying length; rows 6 and 13 fully masked
        ids[row, 6 - row % 7:] = 0

    a, b = Input((5, 3), name="seqs"), Input((4,), name="feats")
    h = LSTM(4)(a)
    two = _randomize(Model([a, b], [Dense(2)(concatenate([h, Dense(3)(b)])), h]), 3)
    xa = rng.normal(size=(N, 5, 3)).astype("float32")
    xb = rng.normal(size=(N, 4)).astype("float32")

    return {
        "seq": (seq, [x_seq], seq.predict(x_seq, batch_size=7, verbose=0)),
        "emb": (emb, [ids], emb.predict(ids, batch_size=7, verbose=0)),
        "two": (two, [xa, xb], two.predict([xa, xb], batch_size=7, verbose=0)),
    }


@pytest.fixture(scope="module")
def client(cases):  # `cases` first: the parent warms the numba cache
    # Workers inherit NUMBA_CACHE_DIR (or its absence: the same default folder), so
    # they load the kernels the parent compiled; one numba thread each on 2 cores.
    env = {"NUMBA_NUM_THREADS": "1"}
    if os.environ.get("NUMBA_CACHE_DIR"):
        env["NUMBA_CACHE_DIR"] = os.environ["NUMBA_CACHE_DIR"]
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
        env=env, silence_logs=40)
    client = distributed.Client(cluster)
    client.run(_numpy_compat)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def _lazy(xs, rows=6):
    return [da.from_array(x, chunks=(rows,) + x.shape[1:]) for x in xs]


# -- on the cluster -------------------------------------------------------------------
def test_sequential_on_cluster(client, cases):
    model, xs, ref = cases["seq"]
    y = gdask.predict(model, _lazy(xs)[0])
    assert isinstance(y, da.Array) and y.chunks == ((6, 6, 6, 3), (2,))
    _close(y.compute(), ref)


def test_embedding_mask_on_cluster(client, cases):
    model, xs, ref = cases["emb"]
    y = gdask.predict(model, _lazy(xs)[0], batch_size=4)  # batches within each chunk
    assert y.shape == (N, 6, 4) and y.chunks[1:] == ((6,), (4,))
    out = y.compute()
    _close(out, ref)
    # the fully padded row keeps zero states: the mask really reached the LSTM
    assert np.all(out[6] == 0) and np.any(out[5] != 0)


def test_two_inputs_two_outputs_on_cluster(client, cases):
    model, xs, refs = cases["two"]
    lazy = _lazy(xs)
    ys = gdask.predict(model, lazy)
    assert isinstance(ys, list) and len(ys) == 2
    outs = dask.compute(*ys)
    for out, ref in zip(outs, refs):
        _close(out, ref)
    by_name = gdask.predict(model, {"feats": lazy[1], "seqs": lazy[0]})
    _close(by_name[0].compute(), refs[0])


def test_model_travels_once_and_builds_once(client, cases):
    model, xs, ref = cases["seq"]
    y = gdask.predict(model, _lazy(xs, rows=3)[0])  # 7 chunks over 2 workers
    graph = dict(y.__dask_graph__())
    model_keys = [k for k in graph if isinstance(k, str) and k.startswith("gpulstm-model-")]
    assert len(model_keys) == 1
    tasks = [k for k in graph if isinstance(k, tuple) and k[0].startswith("gpulstm-predict-")]
    assert len(tasks) == 7
    for k in tasks:
        assert model_keys[0] in dask.core.get_dependencies(graph, k)
    _close(y.compute(), ref)
    _close(y.compute(), ref)  # a second computation reuses each worker's model
    token = model_keys[0][len("gpulstm-model-"):]
    builds = client.run(gdask._cache_info)
    counts = [b.get(token, 0) for b in builds.values()]
    assert max(counts) == 1 and sum(counts) >= 1, builds


def test_payload_holds_data_only(cases):
    """What travels is JSON text and NumPy arrays: unpickling it imports no code."""
    import io
    import pickle

    class DataOnly(pickle.Unpickler):
        def find_class(self, module, name):
            assert module.split(".")[0] in ("numpy", "builtins", "copyreg", "_codecs"), module
            return super().find_class(module, name)

    model, _, _ = cases["two"]
    payload = gdask._payload(model)
    back = DataOnly(io.BytesIO(pickle.dumps(payload, protocol=5))).load()
    assert sorted(back) == ["backend", "json", "token", "weights"]
    rebuilt = gdask._build(back)
    for w, ref in zip(rebuilt.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(w, ref)
    assert gdask._payload(model)["token"] == payload["token"]  # stable: one key per model


class FailOnce(distributed.WorkerPlugin):
    """Makes the first chunk computed on any worker raise (a marker file says "done")."""

    name = "gpulstm-fail-once"

    def __init__(self, marker):
        self.marker = marker

    def setup(self, worker):
        import gpulstm.dask as mod

        self._orig = orig = mod._predict_chunk
        marker = self.marker

        def flaky(*args, **kwargs):
            try:
                os.close(os.open(marker, os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                return orig(*args, **kwargs)
            raise RuntimeError("injected failure")

        mod._predict_chunk = flaky

    def teardown(self, worker):
        import gpulstm.dask as mod

        mod._predict_chunk = self._orig


def test_failed_task_is_retried(client, cases, tmp_path):
    model, xs, refs = cases["two"]
    marker = tmp_path / "failed"
    client.register_plugin(FailOnce(str(marker)))
    try:
        with pytest.raises(RuntimeError, match="injected failure"):
            dask.compute(*gdask.predict(model, _lazy(xs, rows=5)))  # no retries: it surfaces
        marker.unlink()
        # Other chunking, so no key of the failed run is reused.
        outs = dask.compute(*gdask.predict(model, _lazy(xs, rows=7)), retries=1)
        assert marker.exists()  # a chunk failed once more and was retried
    finally:
        client.unregister_worker_plugin(FailOnce.name)
    for out, ref in zip(outs, refs):
        _close(out, ref)


# -- local schedulers and graph checks (no cluster) ------------------------------------
def test_threads_scheduler_and_unbuilt_sequential(cases):
    model, xs, ref = cases["seq"]
    fresh = Sequential([LSTM(4, return_sequences=True), Dense(2)])  # built from the data
    seq_model = _randomize(Sequential([Input((None, 3)), LSTM(4, return_sequences=True)]), 5)
    y = gdask.predict(seq_model, _lazy(xs)[0])
    assert y.shape == (N, 5, 4)  # the free time axis comes from the data
    _close(y.compute(scheduler="threads"), seq_model.predict(xs[0], batch_size=7, verbose=0))
    y2 = gdask.predict(fresh, _lazy(xs)[0])
    assert fresh.built and y2.shape == (N, 5, 2)
    _close(gdask.predict(model, _lazy(xs)[0], batch_size=2).compute(scheduler="sync"), ref)
    keep = (np.arange(N) % 2 == 0) & ((np.arange(N) < 3) | (np.arange(N) >= 6))
    filtered = _lazy(xs, rows=3)[0][da.from_array(keep, chunks=3)]  # unknown chunk sizes
    y3 = gdask.predict(model, filtered)
    assert 0 in filtered.compute_chunk_sizes().chunks[0]  # rows 3..5: an empty chunk
    _close(y3.compute(scheduler="sync"), ref[keep])


def test_errors(cases):
    model, xs, _ = cases["seq"]
    x = xs[0]
    lazy = _lazy(xs)[0]
    with pytest.raises(ValueError, match=r"x.rechunk\(\{1: -1, 2: -1\}\)"):
        gdask.predict(model, da.from_array(x, chunks=(6, 2, 3)))
    with pytest.raises(ValueError, match="dask array"):
        gdask.predict(model, x)
    for bad in (0, 2.5, "8", True):
        with pytest.raises(ValueError, match="batch_size"):
            gdask.predict(model, lazy, batch_size=bad)
    with pytest.raises(ValueError, match="Unknown backend"):
        gdask.predict(model, lazy, backend="cdua")
    with pytest.raises(ValueError, match="incompatible"):
        gdask.predict(model, da.from_array(x[:, :, :2], chunks=(6, 5, 2)))
    two, txs, _ = cases["two"]
    a, b = _lazy(txs)
    with pytest.raises(ValueError, match="chunked alike"):
        gdask.predict(two, [a, b.rechunk({0: 5})])
    with pytest.raises(ValueError, match="expects 2 input"):
        gdask.predict(two, [a])
    stateful = Sequential([Input(batch_shape=(3, 5, 3)), LSTM(4, stateful=True)])
    with pytest.raises(ValueError, match="stateful.*cannot be split"):
        gdask.predict(stateful, da.from_array(x[:6], chunks=(3, 5, 3)))


def test_import_does_not_need_dask():
    code = (
        "import sys, gpulstm\n"
        "assert 'dask' not in sys.modules, 'import gpulstm imported dask'\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'dask' or name.startswith('dask.'):\n"
        "            raise ImportError('No module named ' + repr(name))\n"
        "sys.meta_path.insert(0, Block())\n"
        "try:\n"
        "    import gpulstm.dask\n"
        "except ImportError as e:\n"
        "    print('MSG', e)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    assert 'pip install -e ".[dask]"' in res.stdout


# -- on a GPU (skipped without one) ------------------------------------------------------
def _real_gpu():
    try:
        from gpulstm.dispatch import BACKENDS

        ok, _ = BACKENDS["cuda"].availability()
        return ok and BACKENDS["cuda"].real_device
    except Exception:
        return False


def _numpy_compat():
    if not hasattr(np, "row_stack"):  # see the top of this module
        np.row_stack = np.vstack


def _lstm_backends():
    """On a worker: the backend each cached model's LSTMs ran on last."""
    return {tok: [getattr(lyr, "last_backend", None) for lyr in m.layers
                  if type(lyr).__name__ == "LSTM"] for tok, m in gdask._MODELS.items()}


@pytest.mark.gpu
def test_cupy_chunks_run_on_cuda(client, cases):
    if not _real_gpu():
        pytest.skip("needs a real CUDA device with numba-cuda and CuPy")
    import cupy

    model, xs, refs = cases["two"]
    lazy = [da.from_array(cupy.asarray(x), chunks=(6,) + x.shape[1:], asarray=False)
            for x in xs]
    ys = gdask.predict(model, lazy)
    assert all(isinstance(y._meta, cupy.ndarray) for y in ys)
    outs = dask.compute(*ys)
    assert all(isinstance(o, cupy.ndarray) for o in outs)
    for out, ref in zip(outs, refs):
        _close(cupy.asnumpy(out), ref)
    ran = [b for per_worker in client.run(_lstm_backends).values() for bs in per_worker.values()
           for b in bs]
    assert "cuda" in ran, ran


def test_model_for_gpu_workers_is_built_on_a_cpu_client(cases, monkeypatch):
    """A client without a GPU builds the model without backend= (backend="cuda" fails at
    construction there) and asks gpulstm.dask.predict for "cuda": each worker rebuilds
    the model from its JSON and weights and resolves "cuda" on its own GPU."""
    from gpulstm import BackendUnavailableError, dispatch

    model, xs, ref = cases["seq"]
    no_gpu = dispatch.Backend("cuda", "gpulstm.kernels.cuda", lambda: (False, "no GPU here"),
                              "pip install -e '.[cuda12]'")
    monkeypatch.setitem(dispatch.BACKENDS, "cuda", no_gpu)
    with pytest.raises(BackendUnavailableError, match="gpulstm.dask.predict"):
        Sequential([Input((5, 3)), LSTM(4), Dense(2)], backend="cuda")
    y = gdask.predict(model, _lazy(xs)[0], backend="cuda")  # lazy: nothing resolved here
    with pytest.raises(BackendUnavailableError, match="no GPU here"):
        y.compute(scheduler="sync")  # a worker without a GPU refuses at predict
    # A worker whose "cuda" works (simulated: the CPU kernels behind the name).
    gpu = dispatch.Backend("cuda", "gpulstm.kernels.cpu_entry", lambda: (True, "simulated GPU"),
                           "")
    monkeypatch.setitem(dispatch.BACKENDS, "cuda", gpu)
    monkeypatch.setattr(gdask, "_MODELS", type(gdask._MODELS)())  # as on a fresh worker
    _close(y.compute(scheduler="sync"), ref)
    assert [b for bs in _lstm_backends().values() for b in bs] == ["cuda"]
