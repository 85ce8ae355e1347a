"""GRU section of ``scripts/gpu_check.py``: validate, then time, beside cuDNN's GRU.

Each config runs ``kernels.cuda.gru_forward`` with both ``reset_after`` settings
under the default plan and its variants (flag / cg barrier, CUDA graph, and the tag
exchange for the one-product ``reset_after=True``), each validated against the
float64 reference (``tests/naive.py``) before it is timed, and torch ``nn.GRU``
(cuDNN, fp32, TF32 off, same weights; torch's gates r, z, n and its
``r * (W_hn h + b_hn)`` are Keras's ``reset_after=True``) on the same stream.
"""
import dataclasses

import numpy as np

GRU_CONFIGS = ([dict(U=256, T=150, B=b) for b in (1, 4)]
               + [dict(U=512, T=25, B=b) for b in (1, 4)]
               + [dict(U=1024, T=25, B=1), dict(U=512, T=100, B=32)])
GRU_QUICK = (0, 3, 4)


def _case(rng, B, T, D, U, reset_after):
    s = 1.0 / np.sqrt(U)
    x = rng.standard_normal((B, T, D)).astype(np.float32)
    W = rng.uniform(-s, s, (D, 3 * U)).astype(np.float32)
    R = rng.uniform(-s, s, (U, 3 * U)).astype(np.float32)
    b = rng.uniform(-s, s, (2, 3 * U) if reset_after else 3 * U).astype(np.float32)
    h0 = (0.5 * rng.standard_normal((B, U))).astype(np.float32)
    return x, W, R, b, h0


def _torch_gru(W, R, b, D, U):
    """torch nn.GRU with Keras weights (z, r, h -> r, z, n)."""
    import torch

    def reorder(a):  # last axis z, r, h -> r, z, h
        z, r, h = np.split(a, 3, axis=-1)
        return np.concatenate([r, z, h], axis=-1)

    gru = torch.nn.GRU(D, U, batch_first=True).cuda()
    with torch.no_grad():
        gru.weight_ih_l0.copy_(torch.from_numpy(reorder(W).T.copy()))
        gru.weight_hh_l0.copy_(torch.from_numpy(reorder(R).T.copy()))
        gru.bias_ih_l0.copy_(torch.from_numpy(reorder(b[0]).copy()))
        gru.bias_hh_l0.copy_(torch.from_numpy(reorder(b[1]).copy()))
    return gru


def bench_gru(cfg, reps, rng, device_time, wall_time):
    """One GRU config: a row per ``reset_after`` setting (validated, then timed)."""
    import cupy
    import torch

    from gpulstm.activations import CODES
    from gpulstm.kernels import cuda as kc
    from gpulstm.kernels import cuda_device
    from naive import gru as naive_gru

    B, T, U = cfg["B"], cfg["T"], cfg["U"]
    D = cfg.get("D", U)
    codes = dict(activation=CODES["tanh"], recurrent_activation=CODES["sigmoid"])
    n_sm, optin = cuda_device._facts()
    tstream = torch.cuda.current_stream()
    ext = cupy.cuda.ExternalStream(tstream.cuda_stream)
    rows = []
    for reset_after in (True, False):
        x, W, R, b, h0 = _case(rng, B, T, D, U, reset_after)
        ref_seq, _, ref_h = naive_gru(x, W, R, b, h0, reset_after=reset_after)
        tol = 1e-5 * max(1.0, float(np.abs(ref_seq).max()))
        row = dict(cfg, cell="gru", reset_after=reset_after)
        d = {k: cupy.asarray(v) for k, v in dict(x=x, W=W, R=R, b=b, h0=h0).items()}
        new = kc.make_warp_plan(B, U, n_sm=n_sm, smem_optin=optin, gates=3)
        plans = {"new": new, "new_cg": dataclasses.replace(new, barrier="cg"),
                 "new_graph": dataclasses.replace(new, driver="graph", w_units=0)}
        if reset_after:
            plans["new_tag"] = dataclasses.replace(new, barrier="tag")
        row["plans"] = {k: repr(v) for k, v in plans.items()}
        prep = kc.gru_prepare(d["W"], d["R"], d["b"])
        with ext:
            for name, plan in plans.items():
                def run(plan=plan):
                    return kc.gru_forward(d["x"], d["W"], d["R"], d["b"], d["h0"], None,
                                          reset_after=reset_after, return_sequences=True,
                                          plan=plan, prepared=prep, **codes)
                try:
                    seq, h = run()
                    err = max(float(np.abs(seq.get() - ref_seq).max()),
                              float(np.abs(h.get() - ref_h).max()))
                except Exception as exc:
                    row[f"gpulstm_{name}_ERROR"] = f"{type(exc).__name__}: {exc}"[:300]
                    print(f"  ERROR gru {name}: {exc}"[:300], flush=True)
                    continue
                row[f"gpulstm_{name}_maxerr"] = err
                if not err <= tol:
                    row[f"gpulstm_{name}_INVALID"] = True
                    print(f"  INVALID gru {name}: err {err:.3g} > tol {tol:.3g}", flush=True)
                    continue
                row[f"gpulstm_{name}_device_ms"] = device_time(run, tstream.cuda_stream, reps)
                if name == "new":
                    row["gpulstm_new_wall_ms"] = wall_time(run, reps)
                    row["new_us_per_step"] = 1e3 * row["gpulstm_new_device_ms"] / T
            if reset_after:
                gru = _torch_gru(W, R, b, D, U)
                tx = torch.from_numpy(x).cuda()
                th = torch.from_numpy(h0).cuda()[None]
                with torch.inference_mode():
                    def trun():
                        return gru(tx, th)
                    y, hn = trun()
                    row["cudnn_maxerr"] = float(np.abs(y.cpu().numpy() - ref_seq).max())
                    row["cudnn_device_ms"] = device_time(trun, tstream.cuda_stream, reps)
                    row["cudnn_wall_ms"] = wall_time(trun, reps)
                if row.get("gpulstm_new_device_ms"):
                    row["speedup_new"] = row["cudnn_device_ms"] / row["gpulstm_new_device_ms"]
        rows.append(row)
    return rows
