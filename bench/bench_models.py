"""Whole models: ``gpulstm.load_model(file).predict`` against Keras 3 on JAX, same files.

The race (each contender in its own process per thread count, pinned with ``taskset``
to the same cores; OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE unset in those processes)::

    python bench/bench_models.py [--quick] [--threads 1,2] [--rounds 2] [--models a,b]

runs this file under pytest-benchmark once per (contender, threads, round), alternating
the contenders' order between rounds, then checks that the outputs agree within the
float32 tolerance, prints the ratio tables (gpulstm time / Keras-JAX time, best of the
rounds' medians) and the gpulstm per-layer profiles, and writes everything to
``bench/results/models-*.json``.  The models come from ``scripts/make_bench_models.py``.

Run directly, ``pytest bench/bench_models.py --benchmark-only`` times every contender
in one process (GPULSTM_BENCH_CONTENDER=gpulstm or keras-jax picks one).
"""
import argparse
import datetime
import functools
import json
import os
import platform
import subprocess
import sys
import tempfile

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import model_suite as ms  # noqa: E402
import model_profile  # noqa: E402

BATCHES = (32, 256)
N_FULL, N_QUICK = 4096, 512
QUICK_MODELS = ("emb256_lstm128_dense256", "lstm20_dense1", "emb1000_mask_bilstm64_dense5")


def _contenders():
    one = os.environ.get("GPULSTM_BENCH_CONTENDER")
    return [one] if one else list(ms.CONTENDERS)


def _models():
    names = os.environ.get("GPULSTM_BENCH_MODELS")
    return [s.strip() for s in names.split(",")] if names else [m.name for m in ms.MODELS]


@functools.lru_cache(maxsize=None)
def _loaded(contender, path):
    return ms.load(contender, path)


@functools.lru_cache(maxsize=4)
def _inputs(name, n):
    return ms.make_inputs(ms.BY_NAME[name], n)


@pytest.mark.parametrize("batch", BATCHES, ids=lambda b: f"b{b}")
@pytest.mark.parametrize("model_name", _models())
@pytest.mark.parametrize("model_contender", _contenders())
def bench_model(benchmark, model_contender, model_name, batch, request):
    spec = ms.BY_NAME[model_name]
    if not os.path.exists(spec.path):
        pytest.skip(f"{spec.path} missing: run KERAS_BACKEND=jax python scripts/make_bench_models.py")
    quick = request.config.getoption("quick", False) or os.environ.get("GPULSTM_BENCH_QUICK")
    n = int(os.environ.get("GPULSTM_BENCH_N", N_QUICK if quick else N_FULL))
    try:
        predict = _loaded(model_contender, spec.path)
    except ImportError as exc:
        pytest.skip(f"{model_contender}: {exc}")
    xs = _inputs(model_name, n)
    y = predict(xs, batch)  # the first call compiles (JIT stays out of the numbers)
    assert y.shape[0] == n and np.isfinite(y).all()
    threads = int(os.environ.get("GPULSTM_BENCH_THREADS", 0)) or None
    out_dir = os.environ.get("GPULSTM_BENCH_OUTPUTS")
    if out_dir:  # the race compares these across processes
        np.save(os.path.join(out_dir, f"{model_contender}-{threads}t-{model_name}-b{batch}.npy"),
                y[:512])
    benchmark.group = f"{model_name} b={batch}"
    benchmark.extra_info.update(model=model_name, batch=batch, n=n, contender=model_contender,
                                threads=threads, version=ms.version(model_contender))
    benchmark.pedantic(predict, args=(xs, batch), rounds=3, iterations=1, warmup_rounds=0)
    if model_contender == "gpulstm":  # after the timing: where predict spends its time
        benchmark.extra_info["profile"] = model_profile.run(predict, xs, batch)


# -- the race ------------------------------------------------------------------------
def _run_worker(contender, threads, rnd, args, tmp):
    out_json = os.path.join(tmp, f"{contender}-{threads}t-r{rnd}.json")
    cmd = ["taskset", "-c", ms.cores(threads), sys.executable, "-m", "pytest", __file__,
           "-q", "-p", "no:cacheprovider", "--benchmark-only", f"--benchmark-json={out_json}",
           "-c", os.path.join(HERE, "pytest.ini"), "--rootdir", HERE]
    env = ms.worker_env(contender, threads)
    env.update(GPULSTM_BENCH_OUTPUTS=tmp, GPULSTM_BENCH_MODELS=",".join(args.models),
               GPULSTM_BENCH_N=str(args.n))
    print(f"# round {rnd}: {contender}, {threads} thread(s), cores {ms.cores(threads)}",
          flush=True)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit(f"{contender} at {threads} thread(s) failed (rc {proc.returncode})")
    shown = {k: env[k] for k in ("NUMBA_NUM_THREADS", "OPENBLAS_NUM_THREADS", "GPULSTM_NUMPY_TIER",
                                 "KERAS_BACKEND", "XLA_FLAGS") if k in env}
    prefix = "env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE " + " ".join(
        f"{k}='{v}'" for k, v in shown.items())
    with open(out_json) as f:
        return json.load(f), f"{prefix} " + " ".join(cmd)


def race(args):
    """Run the workers, gather ``{(model, batch, threads, contender): entry}``."""
    best, profiles, commands = {}, {}, {}
    with tempfile.TemporaryDirectory(prefix="gpulstm-models-") as tmp:
        for rnd in range(args.rounds):
            order = ms.CONTENDERS if rnd % 2 == 0 else ms.CONTENDERS[::-1]
            for threads in args.threads:
                for contender in order:
                    run, cmd = _run_worker(contender, threads, rnd, args, tmp)
                    commands[f"{contender} {threads}t"] = cmd
                    for b in run["benchmarks"]:
                        info = b["extra_info"]
                        key = (info["model"], info["batch"], threads, contender)
                        med = b["stats"]["median"]
                        if key not in best or med < best[key]["median_s"]:
                            best[key] = {"median_s": med, "min_s": b["stats"]["min"],
                                         "version": info["version"], "n": info["n"]}
                        if "profile" in info:
                            profiles[f"{info['model']} b={info['batch']} {threads}t"] = \
                                info["profile"]
        for (model, batch, threads, contender), entry in best.items():
            if contender == "gpulstm":
                entry["max_abs_err_vs_keras"], entry["tolerance"] = _agreement(
                    tmp, model, batch, threads)
    return best, profiles, commands


def _agreement(tmp, model, batch, threads):
    paths = [os.path.join(tmp, f"{c}-{threads}t-{model}-b{batch}.npy") for c in ms.CONTENDERS]
    if not all(os.path.exists(p) for p in paths):
        return None, None
    g, k = (np.load(p) for p in paths)
    return float(np.max(np.abs(g.astype(np.float64) - k))), ms.tolerance(k)


def tables(best, profiles, args):
    lines = [f"gpulstm / Keras-JAX, predict of {args.n} sequences (best of {args.rounds} "
             "rounds' medians; ms in brackets: gpulstm / Keras-JAX)", ""]
    cols = [(b, t) for b in BATCHES for t in args.threads]
    lines.append("| model | " + " | ".join(f"b{b} {t}t" for b, t in cols) + " | max err / tol |")
    lines.append("|---" * (len(cols) + 2) + "|")
    for name in args.models:
        cells, errs = [], []
        for b, t in cols:
            g, k = best.get((name, b, t, "gpulstm")), best.get((name, b, t, "keras-jax"))
            if g is None or k is None:
                cells.append("-")
                continue
            cells.append(f"**{g['median_s'] / k['median_s']:.2f}** "
                         f"({1e3 * g['median_s']:.0f} / {1e3 * k['median_s']:.0f})")
            if g.get("max_abs_err_vs_keras") is not None:
                errs.append(g["max_abs_err_vs_keras"] / g["tolerance"])
        err = f"{max(errs):.2f}" if errs else "-"
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {err} |")
    lines += ["", "gpulstm per-layer profile (share of predict time; kernel path per LSTM):"]
    for key, rows in sorted(profiles.items()):
        lines.append(f"- {key}: " + model_profile.describe(rows))
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description="Whole-model race: gpulstm vs Keras 3 on JAX")
    ap.add_argument("--quick", action="store_true", help=f"{N_QUICK} sequences, 3 models")
    ap.add_argument("--models", default=None, help="comma-separated model names")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--n", type=int, default=None)
    ap.add_argument("--json", default=None, help="output path (default bench/results/...)")
    args = ap.parse_args(argv)
    args.models = (args.models.split(",") if args.models else
                   list(QUICK_MODELS) if args.quick else [m.name for m in ms.MODELS])
    args.threads = [int(t) for t in args.threads.split(",")]
    args.n = args.n or (N_QUICK if args.quick else N_FULL)
    best, profiles, commands = race(args)
    text = tables(best, profiles, args)
    print(text)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H%MZ")
    path = args.json or os.path.join(HERE, "results", f"models-{platform.node()}-{stamp}.json")
    avx512 = "avx512f" in open("/proc/cpuinfo").read() if os.path.exists("/proc/cpuinfo") else None
    doc = {"date": stamp, "host": platform.node(), "cpu_count": os.cpu_count(),
           "avx512f": avx512, "n": args.n, "rounds": args.rounds, "commands": commands,
           "note": "OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE unset in the workers",
           "results": [dict(zip(("model", "batch", "threads", "contender"), k), **v)
                       for k, v in sorted(best.items())],
           "profiles": profiles, "table": text}
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
