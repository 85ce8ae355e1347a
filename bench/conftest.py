"""Options and fixtures of the benchmark suites.

    pytest bench --benchmark-only                     # the whole matrix (long)
    pytest bench --benchmark-only --quick             # the quick subset (also: -m quick)
    pytest bench --benchmark-only --peers torch --threads 1,all --groups targets,streaming
    pytest bench --benchmark-only --cell gru          # the same sizes on a GRU
    python bench/suite_race.py --groups issue13 --threads 1,2 --json bench/results/RUN.json
                                                      # one pinned process per contender
    pytest bench --benchmark-only --benchmark-json run.json && python bench/report.py run.json

Every benchmark first checks its output against the float64 reference in
``tests/naive.py`` and records case, contender, device, dtype, backend and threads
in ``extra_info`` (``bench/report.py`` reads them back).
"""
import functools
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))  # tests/naive.py, the float64 reference


def pytest_addoption(parser):
    g = parser.getgroup("gpulstm bench")
    g.addoption("--quick", action="store_true", help="run only the quick subset (same as -m quick)")
    g.addoption("--peers", default="torch,onnxruntime,openvino,jax,tf_keras,torch-cuda",
                help="peers to race, comma separated (missing ones are skipped)")
    g.addoption("--gpulstm-backends", default=None,
                help="gpulstm backends, comma separated (default: every available one)")
    g.addoption("--contenders", default=None,
                help="exactly these contenders (gpulstm-<backend> or peers), overriding --peers and "
                     "--gpulstm-backends; bench/suite_race.py runs one per process this way")
    g.addoption("--threads", default="1,all", help="thread counts, e.g. '1,all'")
    g.addoption("--cell", default="lstm", help="the recurrent layer raced: lstm or gru")
    g.addoption("--groups", default="all", help="case groups/tags (targets, streaming, nocudnn, "
                                                "long, deepbench, keras, issue2, issue7, all)")


def _split(text):
    return [t.strip() for t in text.split(",") if t.strip()]


def pytest_generate_tests(metafunc):
    import dataclasses

    from gpulstm import _race, dispatch

    cfg = metafunc.config
    if "case" in metafunc.fixturenames:
        cell = cfg.getoption("cell")
        cases = [dataclasses.replace(c, cell=cell) for c in _race.select(_split(cfg.getoption("groups")))]
        params = [pytest.param(c, id=c.name.replace(" ", "-"),
                               marks=[pytest.mark.quick] if "quick" in c.tags else [])
                  for c in cases]
        metafunc.parametrize("case", params)
    if "contender" in metafunc.fixturenames:
        backends = cfg.getoption("gpulstm_backends")
        backends = _split(backends) if backends else list(dispatch.BACKENDS)
        names = [f"gpulstm-{b}" for b in backends] + _split(cfg.getoption("peers"))
        if cfg.getoption("contenders"):
            names = _split(cfg.getoption("contenders"))
        metafunc.parametrize("contender", names)
    if "threads" in metafunc.fixturenames:
        threads = [os.cpu_count() if t == "all" else int(t) for t in _split(cfg.getoption("threads"))]
        metafunc.parametrize("threads", list(dict.fromkeys(threads)), ids=lambda n: f"{n}t")


def pytest_collection_modifyitems(config, items):
    if not config.getoption("quick"):
        return
    keep = [i for i in items if i.get_closest_marker("quick")]
    config.hook.pytest_deselected(items=[i for i in items if not i.get_closest_marker("quick")])
    items[:] = keep


def pytest_benchmark_update_machine_info(config, machine_info):
    from gpulstm._race import machine_info as race_machine_info

    machine_info["gpulstm"] = race_machine_info()


def naive_reference(cell):
    """tests/naive.py's LSTM or GRU (reset_after) with ``gpulstm._race.reference_lstm``'s signature."""
    import naive

    def reference(x, kernel, recurrent_kernel, bias=None, mask=None, activation="tanh",
                  recurrent_activation="sigmoid"):
        return getattr(naive, cell)(x, kernel, recurrent_kernel, bias, mask=mask, activation=activation,
                                    recurrent_activation=recurrent_activation)[0]

    return reference


@functools.lru_cache(maxsize=4)
def _prepared(case):
    from gpulstm import _race

    weights = case.weights()
    x, mask = case.inputs()
    expected = _race.expected_outputs(case, x, mask, weights, naive_reference(case.cell))
    return weights, x, mask, expected, _race.tolerance(expected)


@pytest.fixture
def prepared(case):
    """``(weights, x, mask, expected, tol)`` of a case, computed once per case."""
    return _prepared(case)
