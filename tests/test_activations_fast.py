"""The float32 rational tanh / sigmoid of the CPU kernel against float64.

scripts/tanh_sweep.py proved the bounds below over all 2**32 float32 inputs (its
result is committed as scripts/tanh_sweep_result.json); this test re-checks a dense
sample on every run, plus the special values, with the very loops the kernel runs.
"""
import json
import math
import os

import numpy as np
import pytest

from gpulstm.kernels import cpu_fast

TANH_BOUND = 3e-7
SIGMOID_BOUND = 1.7e-7
SWEEP = os.path.join(os.path.dirname(__file__), "..", "scripts", "tanh_sweep_result.json")


def _ref_sigmoid(x):
    x = x.astype(np.float64)
    with np.errstate(over="ignore"):
        return np.where(x >= 0, 1.0 / (1.0 + np.exp(-x)), np.exp(x) / (1.0 + np.exp(x)))


def _sample():
    # every 4093rd float32 bit pattern (all exponents, both signs, subnormals, NaNs)
    bits = np.arange(0, 1 << 32, 4093, dtype=np.uint64).astype(np.uint32)
    strided = bits.view(np.float32)
    dense = np.linspace(-12.0, 12.0, 1_000_001, dtype=np.float32)  # the curved part
    small = np.float32(10.0) ** np.linspace(-45, 1, 20001).astype(np.float32)
    return np.concatenate([strided, dense, small, -small])


@pytest.fixture(scope="module")
def sample():
    return _sample()


def test_tanh_error_bound(sample):
    x = sample[~np.isnan(sample)]
    y = x.copy()
    cpu_fast.tanh_vec(y, 0, y.shape[0])
    assert np.isfinite(y).all() and (np.abs(y) <= 1).all()
    err = np.abs(y.astype(np.float64) - np.tanh(x.astype(np.float64)))
    assert err.max() <= TANH_BOUND, (err.max(), x[np.argmax(err)])
    # odd function, exactly
    z = -x
    cpu_fast.tanh_vec(z, 0, z.shape[0])
    np.testing.assert_array_equal(z, -y)


def test_sigmoid_error_bound(sample):
    x = sample[~np.isnan(sample)]
    y = x.copy()
    cpu_fast.sigmoid_vec(y, 0, y.shape[0])
    assert np.isfinite(y).all() and (y >= 0).all() and (y <= 1).all()
    err = np.abs(y.astype(np.float64) - _ref_sigmoid(x))
    assert err.max() <= SIGMOID_BOUND, (err.max(), x[np.argmax(err)])


@pytest.mark.parametrize("fn", [cpu_fast.tanh_vec, cpu_fast.sigmoid_vec])
def test_specials(fn):
    x = np.array([np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-45, 3e38, -3e38], np.float32)
    y = x.copy()
    fn(y, 0, y.shape[0])
    assert np.isnan(y[:2]).all()  # NaN in, NaN out
    want = np.tanh(x[2:].astype(np.float64)) if fn is cpu_fast.tanh_vec else _ref_sigmoid(x[2:])
    np.testing.assert_allclose(y[2:], want, rtol=0, atol=TANH_BOUND)
    if fn is cpu_fast.tanh_vec:
        assert y[4] == 0.0 and math.copysign(1, y[5]) == -1  # tanh(-0) = -0
    # a NaN anywhere in a vector stays where it is
    v = np.linspace(-3, 3, 37).astype(np.float32)
    v[[0, 17, 36]] = np.nan
    w = v.copy()
    fn(w, 0, w.shape[0])
    np.testing.assert_array_equal(np.isnan(w), np.isnan(v))


def test_only_the_slice_is_touched():
    v = np.linspace(-2, 2, 20).astype(np.float32)
    w = v.copy()
    cpu_fast.tanh_vec(w, 5, 9)
    np.testing.assert_array_equal(w[:5], v[:5])
    np.testing.assert_array_equal(w[9:], v[9:])
    assert np.abs(w[5:9] - np.tanh(v[5:9].astype(np.float64))).max() <= TANH_BOUND


def test_committed_exhaustive_sweep_supports_the_bounds():
    with open(SWEEP) as fh:
        res = json.load(fh)
    assert res["inputs"] == "all 2**32 float32 bit patterns"
    assert res["bad_count"] == 0
    assert res["tanh_max_abs_err"] <= TANH_BOUND
    assert res["sigmoid_max_abs_err"] <= SIGMOID_BOUND
