"""Exhaustive proof of the float32 rational tanh / sigmoid error (manual, ~minutes).

Runs the very loops the CPU kernel uses (``cpu_fast.tanh_vec`` / ``sigmoid_vec``)
over all 2**32 float32 bit patterns and compares each result with float64
``math.tanh`` / a float64 logistic.  Checks, for every input: NaN in -> NaN out;
no NaN or inf out of a non-NaN input; outputs within [-1, 1] / [0, 1]; and the max
absolute error.  Writes scripts/tanh_sweep_result.json (committed): the CI test
tests/test_activations_fast.py checks a dense sample against these bounds.

Usage: python scripts/tanh_sweep.py [--chunk-bits 24]
"""
import argparse
import json
import math
import os
import platform
import time

import numba
import numpy as np

from gpulstm.kernels import cpu_fast


@numba.njit(parallel=True, error_model="numpy")
def _errors(x, t, s):
    """Per-chunk (max tanh err, argmax, max sigmoid err, argmax, bad count)."""
    n = x.shape[0]
    et = np.zeros(n)
    es = np.zeros(n)
    bad = np.zeros(n, np.int64)
    for i in numba.prange(n):
        xi = np.float64(x[i])
        if math.isnan(xi):
            bad[i] = 0 if (math.isnan(t[i]) and math.isnan(s[i])) else 1
            continue
        rt = math.tanh(xi)
        rs = 1.0 / (1.0 + math.exp(-xi)) if xi >= 0 else math.exp(xi) / (1.0 + math.exp(xi))
        ti, si = np.float64(t[i]), np.float64(s[i])
        if not (math.isfinite(ti) and math.isfinite(si)) or abs(ti) > 1.0 or si < 0.0 or si > 1.0:
            bad[i] = 1
        et[i] = abs(ti - rt)
        es[i] = abs(si - rs)
    jt = np.argmax(et)
    js = np.argmax(es)
    return et[jt], jt, es[js], js, bad.sum()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--chunk-bits", type=int, default=24)
    a = p.parse_args(argv)
    step = 1 << a.chunk_bits
    worst = {"tanh": (0.0, None), "sigmoid": (0.0, None)}
    bad = 0
    t0 = time.time()
    for start in range(0, 1 << 32, step):
        bits = np.arange(start, start + step, dtype=np.uint64).astype(np.uint32)
        x = bits.view(np.float32)
        t = x.copy()
        s = x.copy()
        cpu_fast.tanh_vec(t, 0, t.shape[0])
        cpu_fast.sigmoid_vec(s, 0, s.shape[0])
        et, jt, es, js, nbad = _errors(x, t, s)
        bad += int(nbad)
        if et > worst["tanh"][0]:
            worst["tanh"] = (float(et), float(x[jt]))
        if es > worst["sigmoid"][0]:
            worst["sigmoid"] = (float(es), float(x[js]))
    # the specials, spelled out
    sp = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0], np.float32)
    t, s = sp.copy(), sp.copy()
    cpu_fast.tanh_vec(t, 0, 5)
    cpu_fast.sigmoid_vec(s, 0, 5)
    result = {
        "inputs": "all 2**32 float32 bit patterns",
        "tanh_max_abs_err": worst["tanh"][0], "tanh_worst_x": worst["tanh"][1],
        "sigmoid_max_abs_err": worst["sigmoid"][0], "sigmoid_worst_x": worst["sigmoid"][1],
        "bad_count": bad,
        "specials": {"x": ["nan", "inf", "-inf", "0", "-0"],
                     "tanh": [repr(float(v)) for v in t], "sigmoid": [repr(float(v)) for v in s]},
        "machine": platform.processor() or platform.machine(),
        "llvm_cpu": numba.config.CPU_NAME or __import__("llvmlite.binding").binding.get_host_cpu_name(),
        "numba": numba.__version__,
        "seconds": round(time.time() - t0, 1),
    }
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tanh_sweep_result.json")
    with open(out, "w") as fh:
        json.dump(result, fh, indent=1)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
