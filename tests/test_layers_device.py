"""Issue 16's layers on the CUDA backend's array-module path, checked without a GPU: the
fixture models (tests/fixtures_layers) run on test_device_resident's strict fake CuPy,
give the CPU backend's numbers exactly and copy each input to the device and each output
back exactly once (every layer computes on the device)."""
import glob
import os

import numpy as np
import pytest

import gpulstm
from test_device_resident import COUNTS, Dev, _fn, _method, fake_cuda, fake_cupy  # noqa: F401

HERE = os.path.join(os.path.dirname(__file__), "fixtures_layers")
NAMES = sorted(os.path.basename(p)[:-len(".keras")] for p in glob.glob(HERE + "/*.keras"))
# gpulstm's GRU runs on the CPU backend only so far (it refuses backend="cuda")
NAMES = [pytest.param(n, marks=pytest.mark.skip(reason="GRU: CPU backend only"))
         if n.startswith("speech_gru") else n for n in NAMES]

# CuPy functions and ndarray methods these layers use beyond the ones the fake has
# (each exists in CuPy with NumPy's semantics).
EXTRA_FUNCTIONS = ("pad", "stack", "repeat", "sqrt", "tri", "arange", "floor", "clip", "minimum",
                   "take", "zeros_like", "where", "swapaxes")
EXTRA_METHODS = ("transpose", "mean", "sum")


@pytest.fixture
def fake_device(fake_cuda, monkeypatch):
    for name in EXTRA_FUNCTIONS:
        monkeypatch.setattr(fake_cuda, name, _fn(getattr(np, name)), raising=False)
    for name in EXTRA_METHODS:
        monkeypatch.setattr(Dev, name, _method(name), raising=False)
    return fake_cuda


@pytest.mark.parametrize("name", NAMES)
def test_fixture_model_stays_on_the_device(fake_device, name):
    z = np.load(os.path.join(HERE, name + ".npz"))
    xs = [z[f"x_{i}"] for i in range(sum(k.startswith("x_") for k in z.files))]
    n_out = sum(k.startswith("y_") for k in z.files)
    model = gpulstm.load_model(os.path.join(HERE, name + ".keras"))
    arg = xs if len(xs) > 1 else xs[0]
    want = model.predict(arg, backend="cpu", verbose=0)
    model.predict(arg, backend="cuda", verbose=0)  # uploads the weights
    COUNTS.update(h2d=0, d2h=0)
    got = model.predict(arg, backend="cuda", verbose=0)
    assert COUNTS["h2d"] == len(xs) and COUNTS["d2h"] == n_out
    got, want = (v if isinstance(v, list) else [v] for v in (got, want))
    for g, w in zip(got, want):
        # an Embedding -> LSTM on the CPU gathers its input projection from a table
        # (gpulstm.layers.embedded): equal to the float32 tolerance, not bit for bit
        np.testing.assert_allclose(g, w, rtol=0, atol=1e-5 * max(1.0, np.abs(w).max()))
