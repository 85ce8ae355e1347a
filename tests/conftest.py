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
