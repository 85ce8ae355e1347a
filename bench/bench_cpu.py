"""gpulstm against torch, onnxruntime, OpenVINO, JAX and tf_keras, one benchmark per (case, contender, threads).

``--cell gru`` races the same sizes on a GRU (Keras's reset_after=True) instead of an LSTM.

Race it one contender per pinned process (what ratios need)::

    python bench/suite_race.py --groups issue13 --threads 1,2 --json bench/results/RUN.json

which runs ``pytest bench/bench_cpu.py --benchmark-only --contenders C --threads N`` per
contender, thread count and pass.  ``pytest bench --benchmark-only`` alone runs every
contender in one process, one after the other (their thread pools and caches then
disturb each other's numbers).

Sizes come from ``gpulstm._race.matrix()`` (issue 6's matrix: DeepBench inference
sizes, Keras-typical models, long sequences, streaming T=1 calls, configurations
cuDNN cannot run, and the issue-2/7/13 target sizes), with the same runners as
``gpulstm bench``.
"""
import math
import time

import pytest

from gpulstm import _race
from peers import Unavailable, Unsupported, make_runner, set_threads


def bench_lstm(benchmark, case, contender, threads, prepared, request):
    weights, x, mask, expected, tol = prepared
    with set_threads(threads):
        try:
            runner = make_runner(contender, case, *weights, threads)
        except (Unavailable, Unsupported) as exc:
            pytest.skip(f"{contender}: {exc}")
        # Validate before timing: the first call also compiles (JIT stays out of the numbers).
        err = _race.validate(runner, case, x, mask, expected)
        limit = tol if contender.startswith("gpulstm-") else 10 * tol
        assert err <= limit, f"{contender} max abs error {err:.3g} > {limit:.3g} on {case.name}"
        x_call = x[:, :1].copy() if case.stateful else x
        runner.reset()
        runner.call(x_call, mask)  # first calls warm caches and thread pools
        t0 = time.perf_counter()
        runner.call(x_call, mask)
        per = time.perf_counter() - t0
        quick = request.config.getoption("quick")
        iterations = max(1, math.ceil((0.01 if quick else 0.03) / max(per, 1e-7)))
        benchmark.group = f"{case.name} threads={threads}"
        benchmark.extra_info.update(
            case=case.name, group=case.group, B=case.B, T=case.T, D=case.D, U=case.U, cell=case.cell,
            flags=case.flags, threads=threads, contender=contender, backend=contender,
            kind=runner.kind, device=runner.device, dtype="float32", version=runner.version,
            max_abs_err=err, tolerance=tol)
        benchmark.pedantic(runner.call, args=(x_call, mask), rounds=5 if quick else 7,
                           iterations=iterations, warmup_rounds=1)
