"""Shared pytest set-up: the float64 reference on the path, fixture locations, simulator tweaks."""
import os
import sys

import pytest

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
FIXTURES_DIR = os.path.join(TESTS_DIR, "fixtures")

# `import naive` works whatever pytest's import mode or the working directory.
if TESTS_DIR not in sys.path:
    sys.path.insert(0, TESTS_DIR)

import numpy as np  # noqa: E402

# The lent GPU image pairs numba-cuda 0.30.4 with NumPy 2.5, which dropped the
# np.row_stack that numba-cuda still references (the cuda extras pin numpy<2.5).
if not hasattr(np, "row_stack"):
    np.row_stack = np.vstack

# The CPU backend's first calls in a process may run on its NumPy tier until numba
# has loaded (gpulstm.kernels.cpu_entry).  Tests pick their tier explicitly: numba
# unless a test turns the tier on (tests/test_cpu_tier.py).
os.environ.setdefault("GPULSTM_NUMPY_TIER", "0")

if os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0"):
    # The simulator runs each CUDA thread as a Python thread; a short switch
    # interval keeps barrier-heavy kernels from crawling.
    sys.setswitchinterval(1e-4)


@pytest.fixture(scope="session")
def fixtures_dir():
    """Folder of the Keras golden fixtures written by scripts/make_fixtures.py."""
    return FIXTURES_DIR


def pytest_collection_modifyitems(config, items):
    # Every test of the simulator modules belongs to the CI simulator job (-m cudasim).
    for item in items:
        if os.path.basename(str(item.fspath)).startswith("test_cuda_sim"):
            item.add_marker(pytest.mark.cudasim)


@pytest.fixture
def fresh_tier(monkeypatch):
    """The CPU backend as in a fresh process: tier on, numba kernels not loaded, no
    tier time spent yet.  Returns ``cpu_entry``."""
    from gpulstm.kernels import cpu_entry

    monkeypatch.setenv(cpu_entry.ENV_VAR, "1")
    monkeypatch.setattr(cpu_entry, "numba_loaded", lambda: False)
    monkeypatch.setattr(cpu_entry, "_cpu", None)
    monkeypatch.setattr(cpu_entry, "_spent", 0.0)
    return cpu_entry


@pytest.fixture
def numpy_tier(fresh_tier, monkeypatch):
    """Every CPU-backend call of the test runs on the NumPy tier; ``.calls`` counts them."""
    from gpulstm.kernels import cpu_numpy

    class Spy:
        calls = 0

    real = cpu_numpy.lstm_forward

    def counted(*args, **kwargs):
        Spy.calls += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(fresh_tier, "LOAD_COST_S", float("inf"))
    monkeypatch.setattr(cpu_numpy, "lstm_forward", counted)
    return Spy
