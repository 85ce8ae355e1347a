"""One-call device check for the CUDA backend: spike, then validated benchmark.

Run on a machine with an NVIDIA GPU, numba-cuda, CuPy and torch::

    python scripts/gpu_check.py --out DIR [--quick]

1. spike: grid-barrier cost (cooperative ``cg.this_grid().sync()`` vs an atomic
   flag barrier) at 16-132 blocks; >48 KiB dynamic shared memory through the
   numba-cuda #94 opt-in; cooperative launch.
2. bench: every config is validated against the float64 reference (tests/naive.py)
   before timing; gpulstm and torch.nn.LSTM (cuDNN, fp32, TF32 off, same weights)
   are timed with CUDA events on the same stream, median of many runs after warm-up.
   "device" times enqueue a sleep kernel first so host launch overhead is hidden;
   "wall" times are host perf_counter per call with a synchronize.
3. GRU (``gpu_check_gru``): both ``reset_after`` settings on the persistent driver,
   validated, then timed beside torch.nn.GRU (``--only-gru``: this section alone).
Writes DIR/gpu_check.json (rewritten after each section) and prints a table.
"""
import argparse
import dataclasses
import json
import os
import statistics
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

import numpy as np  # noqa: E402

# numba-cuda builds before 0.2x reference np.row_stack, removed in NumPy 2.5: alias it
# (device image: numba-cuda + NumPy 2.5.2) so the CUDA target can load.
if not hasattr(np, "row_stack"):
    np.row_stack = np.vstack

RESULT = {"spike": {}, "bench": [], "gru": [], "errors": []}


def save(out):
    with open(os.path.join(out, "gpu_check.json"), "w") as fh:
        json.dump(RESULT, fh, indent=1, default=str)


def env_info():
    import cupy
    import numba
    import torch
    from numba import cuda

    dev = cuda.get_current_device()
    name = dev.name.decode() if isinstance(dev.name, bytes) else dev.name
    return dict(device=name, cc=list(dev.compute_capability), sms=dev.MULTIPROCESSOR_COUNT,
                smem_optin=dev.MAX_SHARED_MEMORY_PER_BLOCK_OPTIN,
                numba=numba.__version__, numba_cuda_impl=getattr(cuda, "implementation", "?"),
                cupy=cupy.__version__, torch=torch.__version__,
                cudnn=torch.backends.cudnn.version(),
                cupy_runtime=cupy.cuda.runtime.runtimeGetVersion(),
                driver=cupy.cuda.runtime.driverGetVersion())


# ---------------------------------------------------------------------------------
def spike():
    import cupy
    import numba
    from numba import cuda

    from gpulstm.kernels.cuda_device import _allow_smem

    res = {}

    @cuda.jit
    def cg_kernel(n, out):
        g = cuda.cg.this_grid()
        for _ in range(n):
            g.sync()
        if cuda.grid(1) == 0:
            out[0] = n

    @cuda.jit
    def flag_kernel(n, counter, out):
        nblk = cuda.gridDim.x
        for k in range(n):
            cuda.syncthreads()
            if cuda.threadIdx.x == 0:
                cuda.threadfence()
                cuda.atomic.add(counter, 0, 1)
                while cuda.atomic.add(counter, 0, 0) < nblk * (k + 1):
                    pass
                cuda.threadfence()
            cuda.syncthreads()
        if cuda.grid(1) == 0:
            out[0] = n

    out = cupy.zeros(1, np.int32)
    n = 2000
    for nblk in (16, 32, 66, 132):
        row = {}
        for kind in ("cg", "flag"):
            times = []
            for rep in range(4):
                counter = cupy.zeros(1, np.int32)
                cupy.cuda.Device().synchronize()
                t0 = time.perf_counter()
                if kind == "cg":
                    cg_kernel[nblk, 256](n, out)
                else:
                    flag_kernel[nblk, 256](n, counter, out)
                cuda.synchronize()
                times.append(time.perf_counter() - t0)
            row[kind + "_us_per_barrier"] = min(times[1:]) / n * 1e6
        res[f"barrier_{nblk}_blocks"] = row
        print("barrier", nblk, row, flush=True)
    sig = (numba.int64, numba.int32[::1])
    k = cg_kernel.compile(sig) if hasattr(cg_kernel, "compile") else None
    if k is not None:
        res["max_coop_blocks_256thr_0smem"] = k.max_cooperative_grid_blocks(256, 0)

    @cuda.jit
    def smem_kernel(a, n):
        s = cuda.shared.array(0, dtype=numba.float32)
        for i in range(cuda.threadIdx.x, n, cuda.blockDim.x):
            s[i] = a[i] * 2
        cuda.syncthreads()
        for i in range(cuda.threadIdx.x, n, cuda.blockDim.x):
            a[i] = s[n - 1 - i]

    nbytes = 200 * 1024
    nw = nbytes // 4
    a = cupy.arange(nw, dtype=np.float32)
    try:
        smem_kernel[1, 256, 0, nbytes](a, nw)
        cuda.synchronize()
        res["smem_200k_without_optin"] = "launched (unexpected)"
    except Exception as exc:
        res["smem_200k_without_optin"] = f"failed as expected: {type(exc).__name__}: {exc}"[:200]
    try:
        kern = smem_kernel.compile((numba.float32[::1], numba.int64))
        _allow_smem(kern, 227 * 1024)
        a = cupy.arange(nw, dtype=np.float32)
        smem_kernel[1, 256, 0, nbytes](a, nw)
        cuda.synchronize()
        ok = bool((a.get() == 2 * np.arange(nw, dtype=np.float32)[::-1]).all())
        res["smem_200k_with_optin"] = "ok" if ok else "wrong values"
    except Exception as exc:
        res["smem_200k_with_optin"] = f"FAILED: {type(exc).__name__}: {exc}"[:300]
    print("smem", res["smem_200k_without_optin"], "|", res["smem_200k_with_optin"], flush=True)
    return res


# ---------------------------------------------------------------------------------
def make_case(rng, B, T, D, U, scale=None):
    s = scale or 1.0 / np.sqrt(U)
    x = rng.standard_normal((B, T, D)).astype(np.float32)
    W = rng.uniform(-s, s, (D, 4 * U)).astype(np.float32)
    R = rng.uniform(-s, s, (U, 4 * U)).astype(np.float32)
    b = rng.uniform(-s, s, 4 * U).astype(np.float32)
    h0 = (0.5 * rng.standard_normal((B, U))).astype(np.float32)
    c0 = (0.5 * rng.standard_normal((B, U))).astype(np.float32)
    return x, W, R, b, h0, c0


def device_time(fn, stream_ptr, reps, warm=3, sleep_cycles=3_000_000):
    """Median device ms of fn() with a sleep kernel hiding host launch overhead."""
    import torch

    for _ in range(warm):
        fn()
    torch.cuda.synchronize()
    ev = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
          for _ in range(reps)]
    for e0, e1 in ev:
        torch.cuda._sleep(sleep_cycles)
        e0.record()
        fn()
        e1.record()
    torch.cuda.synchronize()
    return statistics.median(e0.elapsed_time(e1) for e0, e1 in ev)


def wall_time(fn, reps):
    import torch

    torch.cuda.synchronize()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts) * 1e3


def bench_one(cfg, reps, rng):
    import cupy
    import torch

    from gpulstm.activations import CODES
    from gpulstm.kernels import cuda as kc
    from gpulstm.kernels import cuda_device
    from naive import lstm as naive_lstm

    B, T, U = cfg["B"], cfg["T"], cfg["U"]
    D = cfg.get("D", U)
    ract_name = cfg.get("ract", "sigmoid")
    x, W, R, b, h0, c0 = make_case(rng, B, T, D, U)
    mask = None
    if cfg.get("mask") == "left":
        mask = np.ones((B, T), bool)
        for r in range(B):
            mask[r, : (r * T) // (2 * max(B, 1))] = False
    hs = {"hard_sigmoid_k3": "keras3", "hard_sigmoid_k2": "keras2"}
    ref_seq, ref_last, ref_h, ref_c = naive_lstm(
        x, W, R, b, h0, c0, mask, "tanh",
        "hard_sigmoid" if ract_name.startswith("hard") else ract_name,
        hard_sigmoid=hs.get(ract_name, "keras3"))
    row = dict(cfg)
    tstream = torch.cuda.current_stream()
    ext = cupy.cuda.ExternalStream(tstream.cuda_stream)  # same stream as torch
    d = {k: cupy.asarray(v) for k, v in dict(x=x, W=W, R=R, b=b, h0=h0, c0=c0).items()}
    dmask = None if mask is None else cupy.asarray(mask)
    codes = dict(activation=CODES["tanh"], recurrent_activation=CODES[ract_name])
    n_sm, optin = cuda_device._facts()
    wp = dict(n_sm=n_sm, smem_optin=optin)
    # "old": the first kernel's default plan (what BENCHMARKS.md measured before);
    # "new": the warp-per-unit default (what lstm_forward picks), weights prepared once
    # as the layer does; the rest are variants of the new kernel.
    plans = {"old": kc.make_plan(B, U, **wp), "new": kc.make_warp_plan(B, U, **wp)}
    plans["new_cg"] = dataclasses.replace(plans["new"], barrier="cg")
    # no grid barrier: h entries tagged with their step (kernels/cuda_warp.py)
    plans["new_tag"] = dataclasses.replace(plans["new"], barrier="tag")
    # the per-step kernel replayed from a CUDA graph (kernels/cuda_graph.py), weights
    # read from L2 each step: the path for weights that do not fit on chip
    plans["new_graph"] = dataclasses.replace(plans["new"], driver="graph", w_units=0)
    if U <= 1024 and B <= 4 and not cfg.get("mask"):
        plans["new_noshfl"] = kc.make_warp_plan(B, U, shuffle=False, **wp)
    if U <= 512:
        plans["new_upb2"] = kc.make_warp_plan(B, U, min_upb=2, **wp)
        plans["new_upb8"] = kc.make_warp_plan(B, U, min_upb=8, **wp)
    row["plans"] = {k: repr(v) for k, v in plans.items()}
    prep = kc.prepare(d["W"], d["R"], d["b"])
    tol = 1e-5 * max(1.0, float(np.abs(ref_seq).max()), float(np.abs(ref_c).max()))
    with ext:
        for name, plan in plans.items():
            def run(plan=plan, name=name):
                return kc.lstm_forward(d["x"], d["W"], d["R"], d["b"], d["h0"], d["c0"], dmask,
                                       go_backwards=False, return_sequences=True, plan=plan,
                                       prepared=None if name == "old" else prep, **codes)
            try:
                seq, h, c = run()
                err = max(float(np.abs(seq.get() - ref_seq).max()),
                          float(np.abs(h.get() - ref_h).max()),
                          float(np.abs(c.get() - ref_c).max()))
            except Exception as exc:
                row[f"gpulstm_{name}_ERROR"] = f"{type(exc).__name__}: {exc}"[:300]
                print(f"  ERROR {name}: {exc}"[:300], flush=True)
                continue
            row[f"gpulstm_{name}_maxerr"] = err
            if not err <= tol:
                row[f"gpulstm_{name}_INVALID"] = True
                print(f"  INVALID {name}: err {err:.3g} > tol {tol:.3g}", flush=True)
                continue
            row[f"gpulstm_{name}_device_ms"] = device_time(run, tstream.cuda_stream, reps)
            fell = [f"{k[1]!r} -> {v!r}" for k, v in cuda_device._checked.items() if k[1] != v]
            if fell:
                row["fallback_plans_so_far"] = fell
            if name == "new":
                row["gpulstm_new_wall_ms"] = wall_time(run, reps)
                # recurrence only: the projection handed in as x_proj
                xproj = (d["x"].reshape(B * T, D) @ d["W"] + d["b"]).reshape(B, T, 4 * U)

                def rec():
                    return kc.lstm_forward(None, None, d["R"], None, d["h0"], d["c0"], dmask,
                                           return_sequences=True, x_proj=xproj, plan=plan,
                                           prepared=prep, **codes)
                row["gpulstm_new_recurrence_device_ms"] = device_time(rec, tstream.cuda_stream,
                                                                      reps)
        # cuDNN through torch, fp32, TF32 off, same weights (i,f,g,o == Keras i,f,c,o)
        if ract_name == "sigmoid" and mask is None:
            lstm = torch.nn.LSTM(D, U, batch_first=True).cuda()
            with torch.no_grad():
                lstm.weight_ih_l0.copy_(torch.from_numpy(W.T.copy()))
                lstm.weight_hh_l0.copy_(torch.from_numpy(R.T.copy()))
                lstm.bias_ih_l0.copy_(torch.from_numpy(b))
                lstm.bias_hh_l0.zero_()
            tx = torch.from_numpy(x).cuda()
            th = (torch.from_numpy(h0).cuda()[None], torch.from_numpy(c0).cuda()[None])
            with torch.inference_mode():
                def trun():
                    return lstm(tx, th)
                y, (hn, cn) = trun()
                row["cudnn_maxerr"] = max(float(np.abs(y.cpu().numpy() - ref_seq).max()),
                                          float(np.abs(cn[0].cpu().numpy() - ref_c).max()))
                row["cudnn_device_ms"] = device_time(trun, tstream.cuda_stream, reps)
                row["cudnn_wall_ms"] = wall_time(trun, reps)
    for name in ("old", "new"):
        g = row.get(f"gpulstm_{name}_device_ms")
        if g and row.get("cudnn_device_ms"):
            row[f"speedup_{name}"] = row["cudnn_device_ms"] / g
        if g:
            row[f"{name}_us_per_step"] = 1e3 * g / T
    ms = {k[8:-10]: v for k, v in row.items()
          if k.startswith("gpulstm_") and k.endswith("_device_ms") and "recurrence" not in k}
    if ms:
        row["best_variant"] = min(ms, key=ms.get)
    if row.get("gpulstm_new_recurrence_device_ms"):
        row["new_recurrence_us_per_step"] = 1e3 * row["gpulstm_new_recurrence_device_ms"] / T
    return row


CONFIGS = (
    [dict(U=256, T=150, B=b) for b in (1, 2, 4)]
    + [dict(U=512, T=25, B=b) for b in (1, 2, 4)]
    + [dict(U=1024, T=25, B=b) for b in (1, 2, 4)]
    + [dict(U=2048, T=25, B=b) for b in (1, 2, 4)]
    + [dict(U=512, T=100, B=4), dict(U=512, T=100, B=4, ract="hard_sigmoid_k3", mask="left"),
       dict(U=512, T=100, B=32)]
    + [dict(U=1536, T=50, B=b) for b in (1, 2, 4)]
)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.environ.get("OUT", "."))
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--skip-spike", action="store_true")
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--budget-s", type=float, default=1e9, help="stop starting configs after this")
    ap.add_argument("--only-u", type=int, default=0)
    ap.add_argument("--only-gru", action="store_true", help="the GRU section only")
    a = ap.parse_args()
    import torch

    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    RESULT["env"] = env_info()
    print(RESULT["env"], flush=True)
    save(a.out)
    if not a.skip_spike:
        try:
            RESULT["spike"] = spike()
        except Exception:
            RESULT["errors"].append("spike: " + traceback.format_exc())
            print(traceback.format_exc(), flush=True)
        save(a.out)
    rng = np.random.default_rng(1234)
    # quick: a spread (U=256 B=1, U=512 B=4, U=2048 B=1 where the graph driver is
    # the path, and B=32)
    configs = [CONFIGS[i] for i in (0, 5, 9, 14)] if a.quick else CONFIGS
    if a.only_u:
        configs = [c for c in CONFIGS if c["U"] == a.only_u]
    from gpu_check_gru import GRU_CONFIGS, GRU_QUICK, bench_gru

    gru_configs = [GRU_CONFIGS[i] for i in GRU_QUICK] if a.quick else GRU_CONFIGS
    start = time.time()
    for cfg in gru_configs if a.only_gru else ():
        if time.time() - start > a.budget_s:
            RESULT["errors"].append(f"skipped (time budget): gru {cfg}")
            continue
        try:
            RESULT["gru"] += bench_gru(cfg, a.reps, rng, device_time, wall_time)
        except Exception:
            RESULT["errors"].append(f"gru {cfg}: {traceback.format_exc()}")
        save(a.out)
        print(RESULT["gru"][-2:], flush=True)
    for cfg in () if a.only_gru else configs:
        if time.time() - start > a.budget_s:
            RESULT["errors"].append(f"skipped (time budget): {cfg}")
            continue
        t0 = time.time()
        try:
            row = bench_one(cfg, a.reps, rng)
        except Exception:
            tb = traceback.format_exc()
            RESULT["errors"].append(f"{cfg}: {tb}")
            print(cfg, tb[-1500:], flush=True)
            continue
        row["seconds"] = round(time.time() - t0, 1)
        RESULT["bench"].append(row)
        save(a.out)
        print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()},
              flush=True)
    print("\n   U    T   B | old ms   new ms  new us/step rec-only | cuDNN ms | old x  new x | best")
    nan = float("nan")
    for r in RESULT["bench"]:
        print(f"{r['U']:5d} {r['T']:4d} {r['B']:3d} | {r.get('gpulstm_old_device_ms', nan):6.3f}"
              f" {r.get('gpulstm_new_device_ms', nan):7.3f} {r.get('new_us_per_step', nan):8.2f}"
              f" {r.get('new_recurrence_us_per_step', nan):8.2f} | {r.get('cudnn_device_ms', nan):7.3f}"
              f" | {r.get('speedup_old', nan):5.2f} {r.get('speedup_new', nan):5.2f} |"
              f" {r.get('best_variant', '')} {r.get('ract', '')} {r.get('mask', '')}")
    print("errors:", len(RESULT["errors"]))


if __name__ == "__main__":
    main()
