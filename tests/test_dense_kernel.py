"""Dense on the CPU panel kernels (kernels/cpu_dense): x @ kernel + bias and softmax,
against float64 NumPy, serial and threaded, and the layer's use of it."""
import naive
import numba
import numpy as np
import pytest

from gpulstm.kernels import cpu, cpu_dense
from gpulstm.layers.core import Dense

pytestmark = pytest.mark.skipif(cpu.product_kernel() not in cpu._PANELS,
                                reason="no panel kernel kind on this host")


def _ref(x, w, b, softmax):
    return naive.dense(x, w, b, "softmax" if softmax else "linear")


def _close(got, ref):
    assert got.dtype == np.float32 and got.shape == ref.shape
    assert np.abs(got - ref).max() <= 1e-5 * max(1.0, np.abs(ref).max())


@numba.njit
def _exp_all(a):
    out = np.empty_like(a)
    for i in range(a.size):
        out[i] = cpu_dense.exp_nonpositive(a[i])
    return out


def test_exp_nonpositive():
    x = np.concatenate([np.linspace(-87.0, 0.0, 20001), [0.0, -1e-30, -87.5, -1e4, -np.inf]])
    x = x.astype(np.float32)
    got = _exp_all(x).astype(np.float64)
    ref = np.exp(x.astype(np.float64))
    assert np.all(np.abs(got - ref) <= 4e-7 * ref + 1e-38)  # a few ulp, relative
    assert got[-5] == 1.0 and got[-3] == 0.0 and got[-1] == 0.0
    assert np.isnan(_exp_all(np.array([np.nan], np.float32))[0])


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("rows, D, units, bias, softmax", [
    (300, 64, 61, True, True),    # rows past two blocks, a 13-column last panel
    (257, 40, 128, False, True),  # one row in the last block, no bias
    (200, 96, 80, True, False),   # linear
])
def test_dense_matches_float64(threads, rows, D, units, bias, softmax):
    rng = np.random.default_rng(rows + units)
    x = rng.standard_normal((rows, D)).astype(np.float32)
    w = (rng.standard_normal((D, units)) * 0.4).astype(np.float32)
    b = rng.standard_normal(units).astype(np.float32) if bias else None
    saved = numba.get_num_threads()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        got = cpu_dense.dense(x, cpu_dense.prepare(w), b, units, softmax)
    finally:
        numba.set_num_threads(saved)
    _close(got, _ref(x, w, b, softmax))


def test_softmax_nan_and_inf_rows():
    x = np.zeros((130, 4), np.float32)
    x[3, 1] = np.nan
    x[5, 0] = np.inf
    x[7, 2] = -np.inf  # every logit -inf: NaN, as exp(-inf - -inf) in Keras
    x[9, 2] = -1e30  # one logit far below: its probability 0, the rest 0.5
    w = np.array([[1, 0], [0, 1], [1, 1], [0, 0]], np.float32)
    y = cpu_dense.dense(x, cpu_dense.prepare(w), None, 2, True)
    assert np.isnan(y[[3, 5, 7]]).all()
    np.testing.assert_allclose(y[9], [0.5, 0.5])
    np.testing.assert_allclose(y[0], [0.5, 0.5])


@pytest.mark.parametrize("activation", ["softmax", "tanh", None])
def test_dense_layer_on_panels(activation):
    rng = np.random.default_rng(5)
    layer = Dense(61, activation=activation)
    x = rng.standard_normal((4, 80, 64)).astype(np.float32)
    got = layer(x)
    assert layer.__dict__.get("_panels") is not None  # the numba kernels are loaded here
    w, b = layer.get_weights()
    _close(got, naive.dense(x, w, b, activation))
    # new weights: new panels, new numbers
    layer.set_weights([w * 2, b])
    _close(layer(x), naive.dense(x, w * 2, b, activation))
