"""The GPU groups of the benchmark suites, driven through numba's CUDA simulator.

Timings mean nothing here (the simulator runs on the CPU): this checks the path a
GPU run of ``pytest bench`` / ``gpulstm bench`` takes for the ``gpulstm-cuda``
contender at tiny sizes: the runner validates against tests/naive.py, streaming
calls carry h and c, masks and hard_sigmoid go through, and ``bench_lstm`` records
``device="cuda"`` in extra_info.  ``torch-cuda`` reports itself unavailable on a
machine without a CUDA torch.  Runs only when ``NUMBA_ENABLE_CUDASIM=1``.
"""
import os
import sys
import types

import numpy as np
import pytest

if os.environ.get("NUMBA_ENABLE_CUDASIM", "0") in ("", "0"):
    pytest.skip("needs NUMBA_ENABLE_CUDASIM=1 at interpreter start", allow_module_level=True)

import naive  # noqa: E402
from gpulstm import _peers, _race  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "bench"))
sys.setswitchinterval(1e-4)  # simulated threads hand over the GIL far more often

CASES = [
    _race.Case("sim", 2, 3, 2, 4),
    _race.Case("sim", 2, 3, 3, 4, recurrent_activation="hard_sigmoid", mask="left"),
    _race.Case("sim", 1, 1, 2, 4, stateful=True),
]


def _reference(x, kernel, recurrent_kernel, bias=None, mask=None, activation="tanh",
               recurrent_activation="sigmoid"):
    return naive.lstm(x, kernel, recurrent_kernel, bias, mask=mask, activation=activation,
                      recurrent_activation=recurrent_activation)[0]


def _prepared(case):
    weights = case.weights()
    x, mask = case.inputs()
    if case.stateful:
        x = x[:, :3]  # three streaming calls are enough in the simulator
    expected = _race.expected_outputs(case, x, mask, weights, _reference)
    return weights, x, mask, expected, _race.tolerance(expected)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name.replace(" ", "-"))
def test_gpulstm_cuda_runner_validates(case):
    weights, x, mask, expected, tol = _prepared(case)
    runner = _peers.make_runner("gpulstm-cuda", case, *weights, 1)
    assert runner.device == "cuda" and runner.kind == "gpulstm"
    assert _race.validate(runner, case, x, mask, expected) <= tol


def test_bench_lstm_records_the_cuda_device():
    bench_cpu = pytest.importorskip("bench_cpu")  # bench/bench_cpu.py (needs pytest-benchmark's API only)
    case = CASES[0]

    class FakeBenchmark:
        group = None
        extra_info = {}

        def pedantic(self, fn, args=(), rounds=1, iterations=1, warmup_rounds=0):
            self.calls = rounds * iterations + warmup_rounds
            for _ in range(min(self.calls, 2)):
                fn(*args)

    bench = FakeBenchmark()
    request = types.SimpleNamespace(config=types.SimpleNamespace(getoption=lambda name: True))
    bench_cpu.bench_lstm(bench, case, "gpulstm-cuda", 1, _prepared(case), request)
    info = bench.extra_info
    assert info["device"] == "cuda" and info["backend"] == "gpulstm-cuda"
    assert info["max_abs_err"] <= info["tolerance"] and bench.group.endswith("threads=1")


def test_torch_cuda_is_reported_unavailable_without_a_cuda_torch():
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():  # pragma: no cover - a real GPU
        pytest.skip("a CUDA torch is present")
    with pytest.raises((_peers.Unavailable, _peers.Unsupported)):
        _peers.make_runner("torch-cuda", CASES[0], *CASES[0].weights(), 1)
