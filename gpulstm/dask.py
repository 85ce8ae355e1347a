"""Batch inference over Dask arrays, on one machine or a Dask cluster.

>>> import dask.array as da, gpulstm.dask
>>> x = da.from_zarr("sequences.zarr")                  # (N, T, D), chunked along N only
>>> y = gpulstm.dask.predict(model, x, batch_size=256)  # lazy; y.compute() or y.to_zarr(...)

Each chunk of rows is one task.  The model travels as one small payload (its
Keras JSON and its weights as NumPy arrays, never pickled code) held by a single
graph key that every chunk task depends on, so each worker receives it once per
computation; a worker rebuilds the model once and keeps it, keyed by a token of
the payload, for every later chunk and computation.  Each worker resolves its
own backend: CuPy chunks run on the CUDA backend, NumPy chunks wherever the
worker's dispatcher (``backend=`` > ``GPULSTM_BACKEND`` > "auto") says.

Dask is an optional extra: ``pip install -e ".[dask]"`` in the gpulstm clone.
"""
import numbers
import operator
import threading
from collections import OrderedDict

try:
    import dask
    import dask.array as da
    from dask.array.utils import meta_from_array
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        "gpulstm.dask needs Dask, an optional extra of gpulstm. Install it with "
        "`pip install -e \".[dask]\"` in the gpulstm clone (or `pip install "
        "\"dask[array,distributed]\" zarr`). "
        f"Cause: {exc}") from exc

import numpy as np

from gpulstm.dispatch import BACKENDS, requested_backend, resolve_backend

__all__ = ["predict"]

# token -> rebuilt model, per process (one per Dask worker).  A few entries only:
# a worker rarely serves more than a couple of models at once.
_MODELS = OrderedDict()
_MODELS_MAX = 8
_BUILDS = {}  # token -> how many times this process built it (tests check "once")
_LOCK = threading.Lock()


# -- worker side ------------------------------------------------------------------
def _build(payload):
    from gpulstm.models import model_from_json

    model = model_from_json(payload["json"], backend=payload["backend"])
    model.set_weights(payload["weights"])
    return model


def _cached_model(payload):
    """The model of ``payload``, built at most once per process."""
    token = payload["token"]
    with _LOCK:
        model = _MODELS.get(token)
        if model is None:
            model = _build(payload)
            _MODELS[token] = model
            _BUILDS[token] = _BUILDS.get(token, 0) + 1
            while len(_MODELS) > _MODELS_MAX:
                _MODELS.popitem(last=False)
        else:
            _MODELS.move_to_end(token)
        return model


def _cache_info():
    """``{token: builds}`` for this process (``client.run(gpulstm.dask._cache_info)``)."""
    with _LOCK:
        return dict(_BUILDS)


def _is_device(block):
    cuda = BACKENDS.get("cuda")
    check = getattr(cuda, "is_device_array", None)
    return bool(check is not None and check(block))


def _device_zeros(shape, dtype):
    import cupy

    return cupy.zeros(shape, dtype)


def _predict_chunk(model, blocks, batch_size, backend):
    """``model.predict`` on one chunk of rows; a list of outputs in the chunk's array type."""
    n = blocks[0].shape[0]
    bs = max(1, n) if batch_size is None else batch_size
    device = _is_device(blocks[0])
    if device:
        # predict takes the device chunk as it is (no host round trip on the way in)
        # and returns NumPy; "auto" sees the device chunk and picks the CUDA backend.
        import cupy

        backend, _ = resolve_backend(backend if backend is not None else model.backend, blocks[0])
    outs = model.predict(blocks if len(blocks) > 1 else blocks[0], batch_size=bs, verbose=0,
                         backend=backend)
    outs = outs if isinstance(outs, list) else [outs]
    if device:
        outs = [cupy.asarray(o) for o in outs]
    return tuple(outs)


def _predict_block(payload, *blocks, batch_size=None, backend=None, dtypes=(), shapes=()):
    if blocks[0].shape[0] == 0:  # empty chunks (after filtering) skip the model
        return tuple(np.zeros((0,) + s, dt) if not _is_device(blocks[0]) else
                     _device_zeros((0,) + s, dt) for s, dt in zip(shapes, dtypes))
    model = _cached_model(payload)
    outs = _predict_chunk(model, list(blocks), batch_size, backend)
    return tuple(o.astype(dt, copy=False) for o, dt in zip(outs, dtypes))


# -- client side ------------------------------------------------------------------
def _as_inputs(model, x):
    if isinstance(x, dict):
        names = model.input_names
        missing = [n for n in names if n not in x]
        if missing:
            raise ValueError(f"Missing inputs {missing}. Received keys: {sorted(x)}")
        xs = [x[n] for n in names]
    else:
        xs = list(x) if isinstance(x, (list, tuple)) else [x]
    for i, a in enumerate(xs):
        if not isinstance(a, da.Array):
            raise ValueError(
                f"Expected a dask array (or a list of them) for input {i}. Received: "
                f"{type(a).__name__}. Wrap in-memory data first, e.g. "
                "`dask.array.from_array(x, chunks=(1024,) + x.shape[1:])`, or call "
                "`model.predict(x)` directly.")
    return xs


def _check_chunks(xs):
    for i, a in enumerate(xs):
        split = [ax for ax in range(1, a.ndim) if len(a.chunks[ax]) > 1]
        if split:
            fix = "{" + ", ".join(f"{ax}: -1" for ax in range(1, a.ndim)) + "}"
            raise ValueError(
                f"Expected input {i} to be chunked along the batch axis (0) only: each task "
                "needs whole sequences. Received: chunks="
                f"{tuple(a.chunks[ax] for ax in split)} along axis {split}. Rechunk first: "
                f"`x = x.rechunk({fix})`.")
    first = xs[0].chunks[0]
    for i, a in enumerate(xs[1:], 1):
        if a.chunks[0] != first:
            hint = "" if all(c == c for c in first + a.chunks[0]) else (
                " Unknown chunk sizes: call `x.compute_chunk_sizes()` on each input first.")
            raise ValueError(
                "Expected all inputs chunked alike along the batch axis (0). Received: input 0 "
                f"chunks={first}, input {i} chunks={a.chunks[0]}. Rechunk to match: "
                f"`x{i} = x{i}.rechunk({{0: x0.chunks[0]}})`.{hint}")


def _check_shapes(model, xs):
    if len(xs) != len(model.inputs):
        raise ValueError(f"Model '{model.name}' expects {len(model.inputs)} input(s). "
                         f"Received: {len(xs)} arrays")
    for i, (a, t) in enumerate(zip(xs, model.inputs)):
        want = t.shape
        ok = a.ndim == len(want) and all(w is None or w == d
                                         for w, d in zip(want[1:], a.shape[1:]))
        if not ok:
            raise ValueError(f"Input {i} of model '{model.name}' is incompatible: expected "
                             f"shape={want}, found shape={a.shape}.")
        if np.dtype(a.dtype).kind not in "biuf":
            raise ValueError(f"Input {i} must be numeric. Received: dtype={a.dtype}")


def _output_shapes(model, clone_json, xs):
    """Per-sample output shapes, with free axes (e.g. time) filled in from ``xs``."""
    shapes = [tuple(t.shape[1:]) for t in model.outputs]
    if all(d is not None for s in shapes for d in s):
        return shapes
    # Trace a copy whose inputs have this data's concrete shapes: no kernel runs.
    import json

    from gpulstm.models.from_config import model_from_config

    d = json.loads(clone_json)
    by_name = {t._keras_history[0].name: a for t, a in zip(model.inputs, xs)}
    for lcfg in d["config"]["layers"]:
        if lcfg.get("class_name") == "InputLayer":
            a = by_name.get(lcfg["config"].get("name"))
            if a is not None:
                lcfg["config"]["batch_shape"] = [None] + list(a.shape[1:])
    if "build_input_shape" in d["config"]:
        d["config"]["build_input_shape"] = [None] + list(xs[0].shape[1:])
    traced = model_from_config(d)
    return [tuple(t.shape[1:]) for t in traced.outputs]


def _payload(model):
    from gpulstm.models import model_from_json

    json_str = model.to_json()
    weights = [np.ascontiguousarray(w) for w in model.get_weights()]
    try:  # fail here, not on every worker, when the model does not round-trip
        clone = model_from_json(json_str, backend=model.backend)
        clone.set_weights(weights)
    except (ValueError, TypeError, KeyError) as e:
        raise ValueError(
            f"Model '{model.name}' cannot be sent to Dask workers: it does not rebuild from "
            f"`model.to_json()` and `get_weights()` ({e}). Only built-in layers and "
            "activations travel; replace custom callables by their Keras names.") from None
    token = tokenize(json_str, weights, model.backend)
    payload = {"token": token, "json": json_str, "weights": weights, "backend": model.backend}
    with _LOCK:  # local schedulers (threads, sync) reuse the checked copy
        if token not in _MODELS:
            _MODELS[token] = clone
            _BUILDS[token] = _BUILDS.get(token, 0) + 1
    return payload


def predict(model, x, batch_size=None, backend=None):
    """``model.predict`` over a Dask array: lazy, one task per chunk of rows.

    Parameters
    ----------
    model : gpulstm.Model or gpulstm.Sequential
        Not stateful (its states could not be split over chunks).
    x : dask.array.Array, or a list (or dict by input name) of them
        ``(N, ...)`` per input, chunked along the batch axis N only and alike for all
        inputs. NumPy or CuPy chunks (CuPy chunks run on the CUDA backend).
    batch_size : int, optional
        The batch each worker feeds the model within a chunk; None: the whole chunk.
    backend : str, optional
        "auto", "cpu" or "cuda", resolved on each worker (default: the model's
        backend, then ``GPULSTM_BACKEND``, then "auto").

    Returns
    -------
    dask.array.Array, or a list of them for several outputs
        Chunked like ``x`` along N; compute with ``.compute()``, ``dask.compute``
        (``retries=`` re-runs failed chunks) or store with ``.to_zarr``.

    Raises
    ------
    ValueError
        Stateful model, an input that is not a Dask array, chunks along time or
        features, inputs chunked differently along N, wrong shapes, bad batch_size.

    Examples
    --------
    >>> from dask.distributed import Client
    >>> client = Client()  # or Client("scheduler:8786"), or LocalCUDACluster
    >>> y = gpulstm.dask.predict(model, da.from_zarr("x.zarr"), batch_size=256)
    >>> y.to_zarr("y.zarr")
    """
    from gpulstm.models import Model, Sequential

    if not isinstance(model, Model):
        raise ValueError("Expected a gpulstm Model or Sequential. Received: "
                         f"model of type {type(model).__name__}")
    if model.stateful:
        layers = [lyr.name for lyr in model.layers if getattr(lyr, "stateful", False)]
        raise ValueError(
            f"Model '{model.name}' is stateful (layers {layers}): each batch starts from the "
            "states the previous one left, so its rows cannot be split into independent "
            "chunks on several workers. Run `model.predict(x)` in one process, or rebuild the "
            "model with `stateful=False` (same weights) for independent sequences.")
    if batch_size is not None and (isinstance(batch_size, bool)
                                   or not isinstance(batch_size, numbers.Integral)
                                   or batch_size <= 0):
        raise ValueError("Expected a positive integer `batch_size` (or None for whole "
                         f"chunks). Received: batch_size={batch_size!r}")
    batch_size = None if batch_size is None else int(batch_size)
    if backend is not None:
        requested_backend(backend)  # an unknown name fails now, not on the workers
    xs = _as_inputs(model, x)
    if isinstance(model, Sequential) and not model.built:
        model._ensure_built(np.zeros((0,) + tuple(xs[0].shape[1:]), xs[0].dtype))
    _check_shapes(model, xs)
    _check_chunks(xs)

    payload = _payload(model)
    token = payload["token"]
    shapes = [tuple(int(d) for d in s) for s in _output_shapes(model, payload["json"], xs)]
    dtypes = tuple(np.dtype(t.dtype) for t in model.outputs)
    # One key holds the payload: every chunk task depends on it, so a worker
    # fetches it once per computation however many chunks it runs.
    model_key = dask.delayed(payload, traverse=False, pure=True, name=f"gpulstm-model-{token}")

    args = []
    for i, a in enumerate(xs):
        args += [a, ("n",) + tuple(f"x{i}_{k}" for k in range(1, a.ndim))]
    name = "gpulstm-predict-" + tokenize(token, batch_size, backend, *xs)
    tmp = da.blockwise(_predict_block, ("n",), model_key, None, *args, name=name,
                       concatenate=True, meta=np.empty((0,), object), dtype=object,
                       batch_size=batch_size, backend=backend, dtypes=dtypes, shapes=shapes)
    outs = []
    for j, (shape, dt) in enumerate(zip(shapes, dtypes)):
        out_name = f"gpulstm-output{j}-{tmp.name[len('gpulstm-predict-'):]}"
        tail = (0,) * len(shape)
        layer = {(out_name, b) + tail: (operator.getitem, (tmp.name, b), j)
                 for b in range(tmp.numblocks[0])}
        graph = HighLevelGraph.from_collections(out_name, layer, dependencies=[tmp])
        chunks = (xs[0].chunks[0],) + tuple((d,) for d in shape)
        meta = meta_from_array(xs[0]._meta, ndim=1 + len(shape), dtype=dt)
        outs.append(da.Array(graph, out_name, chunks=chunks, meta=meta))
    return outs[0] if len(outs) == 1 else outs
