"""Race gpulstm's CPU backend against torch.nn.LSTM and onnxruntime's LSTM (manual).

Same Keras weights for every contender, last output (B, U), float32, NumPy in/out.
Repetitions are interleaved (contender A, B, C, A, B, C, ...) and the median of the
repetition times is reported with the ratio gpulstm / min(torch, onnxruntime).

Usage::

    python scripts/cpu_race.py [--threads 1 2] [--reps 7] [--shapes 1,100,32,128 ...]

``--step`` adds single-step stateful calls (T=1): gpulstm layer vs torch vs ort,
each carrying h and c.  ``--isolate`` runs every contender in its own process
(rounds alternate the processes): with 2+ threads, OpenMP / BLAS worker threads
left spinning by one library otherwise steal the cores from the next one.
Needs ``pip install torch==2.13.0 onnxruntime onnx``.
"""
import argparse
import os
import sys
import time

import numpy as np

SHAPES = [(1, 100, 32, 128), (1, 1000, 16, 64), (1, 100, 256, 512), (8, 100, 64, 256),
          (64, 100, 32, 256), (256, 50, 128, 512)]
STEP_SHAPES = [(1, 32, 128), (1, 256, 512), (8, 64, 256)]


def weights(D, U, seed=0):
    rng = np.random.default_rng(seed)
    k = rng.uniform(-0.2, 0.2, (D, 4 * U)).astype(np.float32)
    r = (rng.normal(0, 1, (U, 4 * U)) / np.sqrt(U)).astype(np.float32)
    b = rng.uniform(-0.1, 0.1, 4 * U).astype(np.float32)
    return k, r, b


def gpulstm_call(k, r, b, stateful=False, B=None):
    import gpulstm

    layer = gpulstm.LSTM(r.shape[0], stateful=stateful, backend="cpu")
    layer.set_weights([k, r, b])
    return layer, (lambda x: layer(x))


def torch_call(k, r, b, threads, stateful=False):
    import torch

    torch.set_num_threads(threads)
    U = r.shape[0]
    m = torch.nn.LSTM(k.shape[0], U, batch_first=True)
    with torch.no_grad():
        m.weight_ih_l0.copy_(torch.from_numpy(k.T.copy()))
        m.weight_hh_l0.copy_(torch.from_numpy(r.T.copy()))
        m.bias_ih_l0.copy_(torch.from_numpy(b))
        m.bias_hh_l0.zero_()
    state = [None]

    def call(x):
        with torch.inference_mode():
            y, (h, c) = m(torch.from_numpy(x), state[0])
            if stateful:
                state[0] = (h, c)
            return h[0].numpy()
    return call


def _perm(a, U):
    i, f, c, o = (a[..., g * U:(g + 1) * U] for g in range(4))
    return np.concatenate([i, o, f, c], axis=-1)


def ort_call(k, r, b, threads, stateful=False, B=1):
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    D, U = k.shape[0], r.shape[0]
    W = _perm(k, U).T[None]  # (1, 4U, D) in i, o, f, c
    R = _perm(r, U).T[None]
    Bb = np.concatenate([_perm(b, U), np.zeros(4 * U, np.float32)])[None]
    inits = [numpy_helper.from_array(W.astype(np.float32), "W"),
             numpy_helper.from_array(R.astype(np.float32), "R"),
             numpy_helper.from_array(Bb.astype(np.float32), "B")]
    nodes = [helper.make_node("Transpose", ["x"], ["xt"], perm=[1, 0, 2]),
             helper.make_node("LSTM", ["xt", "W", "R", "B", "", "h0", "c0"],
                              ["", "yh", "yc"], hidden_size=U)]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, None, D]),
              helper.make_tensor_value_info("h0", TensorProto.FLOAT, [1, None, U]),
              helper.make_tensor_value_info("c0", TensorProto.FLOAT, [1, None, U])]
    outputs = [helper.make_tensor_value_info("yh", TensorProto.FLOAT, [1, None, U]),
               helper.make_tensor_value_info("yc", TensorProto.FLOAT, [1, None, U])]
    graph = helper.make_graph(nodes, "lstm", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    state = {}

    def call(x):
        Bx = x.shape[0]
        h0 = state.get("h", np.zeros((1, Bx, U), np.float32))
        c0 = state.get("c", np.zeros((1, Bx, U), np.float32))
        yh, yc = sess.run(None, {"x": x, "h0": h0, "c0": c0})
        if stateful:
            state["h"], state["c"] = yh, yc
        return yh[0]
    return call


def bench(calls, x, reps, min_time=0.05):
    """Interleaved: per repetition each contender runs n calls; median per-call seconds."""
    n = {}
    for name, fn in calls.items():
        fn(x)
        t0 = time.perf_counter()
        fn(x)
        dt = time.perf_counter() - t0
        n[name] = max(1, int(min_time / max(dt, 1e-7)))
    times = {name: [] for name in calls}
    for _ in range(reps):
        for name, fn in calls.items():
            t0 = time.perf_counter()
            for _ in range(n[name]):
                fn(x)
            times[name].append((time.perf_counter() - t0) / n[name])
    return ({name: float(np.median(ts)) for name, ts in times.items()},
            {name: float(np.min(ts)) for name, ts in times.items()})


def race_shapes(shapes, threads, reps):
    import numba

    numba.set_num_threads(threads)
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(threads)
    except ImportError:
        pass
    rows = []
    for B, T, D, U in shapes:
        k, r, b = weights(D, U)
        x = np.random.default_rng(1).normal(size=(B, T, D)).astype(np.float32)
        _, g = gpulstm_call(k, r, b)
        calls = {"gpulstm": g, "torch": torch_call(k, r, b, threads),
                 "onnxruntime": ort_call(k, r, b, threads)}
        outs = {name: np.asarray(fn(x)) for name, fn in calls.items()}
        err = max(float(np.abs(outs["gpulstm"] - o).max()) for o in outs.values())
        t, tmin = bench(calls, x, reps)
        best = min(t["torch"], t["onnxruntime"])
        best_min = min(tmin["torch"], tmin["onnxruntime"])
        rows.append((B, T, D, U, t, t["gpulstm"] / best, err))
        print(f"{threads}t {B:>4},{T:>5},{D:>4},{U:>4}  median ms: gpulstm {t['gpulstm']*1e3:8.3f}  "
              f"torch {t['torch']*1e3:8.3f}  ort {t['onnxruntime']*1e3:8.3f}  "
              f"ratio {t['gpulstm']/best:5.2f} | min ms: {tmin['gpulstm']*1e3:8.3f} "
              f"{tmin['torch']*1e3:8.3f} {tmin['onnxruntime']*1e3:8.3f} ratio "
              f"{tmin['gpulstm']/best_min:5.2f} | maxdiff {err:.1e}", flush=True)
    return rows


def race_steps(threads, reps):
    import numba

    numba.set_num_threads(threads)
    for B, D, U in STEP_SHAPES:
        k, r, b = weights(D, U)
        x = np.random.default_rng(2).normal(size=(B, 1, D)).astype(np.float32)
        _, g = gpulstm_call(k, r, b, stateful=True)
        calls = {"gpulstm": g, "torch": torch_call(k, r, b, threads, stateful=True),
                 "onnxruntime": ort_call(k, r, b, threads, stateful=True)}
        t, tmin = bench(calls, x, reps, min_time=0.02)
        print(f"{threads}t step B={B} D={D} U={U}: median us: gpulstm {t['gpulstm']*1e6:7.1f}  "
              f"torch {t['torch']*1e6:7.1f}  ort {t['onnxruntime']*1e6:7.1f}  "
              f"torch/gpulstm {t['torch']/t['gpulstm']:5.1f}x | min us: "
              f"{tmin['gpulstm']*1e6:7.1f} {tmin['torch']*1e6:7.1f} {tmin['onnxruntime']*1e6:7.1f} "
              f"torch/gpulstm {tmin['torch']/tmin['gpulstm']:5.1f}x", flush=True)


def _worker(name, shape, threads, reps):
    """One contender alone in this process: prints per-repetition seconds as JSON."""
    import json

    import numba

    numba.set_num_threads(threads)
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(threads)
    except ImportError:
        pass
    B, T, D, U = shape
    k, r, b = weights(D, U)
    x = np.random.default_rng(1).normal(size=(B, T, D)).astype(np.float32)
    if name == "gpulstm":
        fn = gpulstm_call(k, r, b)[1]
    elif name == "torch":
        fn = torch_call(k, r, b, threads)
    else:
        fn = ort_call(k, r, b, threads)
    fn(x)
    t0 = time.perf_counter()
    fn(x)
    n = max(1, int(0.05 / max(time.perf_counter() - t0, 1e-7)))
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(n):
            fn(x)
        times.append((time.perf_counter() - t0) / n)
    print(json.dumps(times))


def race_isolated(shapes, threads, reps, rounds=3):
    import json
    import subprocess

    names = ["gpulstm", "torch", "onnxruntime"]
    for shape in shapes:
        times = {n: [] for n in names}
        for i in range(rounds):
            for name in names[i % 3:] + names[:i % 3]:
                out = subprocess.run(
                    [sys.executable, __file__, "--worker", name, "--threads", str(threads),
                     "--reps", str(reps), "--shapes", ",".join(map(str, shape))],
                    capture_output=True, text=True, check=True).stdout
                times[name] += json.loads(out.strip().splitlines()[-1])
        t = {n: float(np.median(v)) for n, v in times.items()}
        tmin = {n: float(np.min(v)) for n, v in times.items()}
        best = min(t["torch"], t["onnxruntime"])
        best_min = min(tmin["torch"], tmin["onnxruntime"])
        B, T, D, U = shape
        print(f"{threads}t isolated {B:>4},{T:>5},{D:>4},{U:>4}  median ms: gpulstm "
              f"{t['gpulstm']*1e3:8.3f}  torch {t['torch']*1e3:8.3f}  ort "
              f"{t['onnxruntime']*1e3:8.3f}  ratio {t['gpulstm']/best:5.2f} | min ratio "
              f"{tmin['gpulstm']/best_min:5.2f}", flush=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--reps", type=int, default=7)
    p.add_argument("--shapes", nargs="*", default=None)
    p.add_argument("--step", action="store_true", help="also time T=1 stateful calls")
    p.add_argument("--no-shapes", action="store_true")
    p.add_argument("--isolate", action="store_true", help="one process per contender")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    shapes = ([tuple(int(v) for v in s.split(",")) for s in a.shapes] if a.shapes
              else SHAPES)
    if a.worker:
        return _worker(a.worker, shapes[0], a.threads[0], a.reps)
    if a.isolate:
        for th in a.threads:
            race_isolated(shapes, th, a.reps)
        return
    print(f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE')} python {sys.version.split()[0]}")
    for th in a.threads:
        if not a.no_shapes:
            race_shapes(shapes, th, a.reps)
        if a.step:
            race_steps(th, a.reps)


if __name__ == "__main__":
    main()
