"""Check the float64 reference itself against values published in Keras's own tests.

The expected numbers come from keras-team/keras ``keras/src/layers/rnn/lstm_test.py``
(constant initializers 0.01 / 0.02 / 0.03, so every unit gives the same value).
"""
import math

import numpy as np
import pytest

import naive

ATOL = 1e-5


def _weights(D, U, unit_forget_bias=True, use_bias=True):
    # Constant(0.01) kernel, Constant(0.02) recurrent kernel, Constant(0.03) bias;
    # unit_forget_bias replaces the forget block with ones (not "+1").
    kernel = np.full((D, 4 * U), 0.01)
    recurrent_kernel = np.full((U, 4 * U), 0.02)
    if not use_bias:
        return kernel, recurrent_kernel, None
    bias = np.full(4 * U, 0.03)
    if unit_forget_bias:
        bias[U:2 * U] = 1.0
    return kernel, recurrent_kernel, bias


def _last(x, U, **kw):
    flags = {k: kw.pop(k) for k in ("unit_forget_bias", "use_bias") if k in kw}
    _, last, _, _ = naive.lstm(x, *_weights(x.shape[-1], U, **flags), **kw)
    return last


def _rows(values, U):
    return np.repeat(np.asarray(values)[:, None], U, axis=1)


SEQ72 = np.arange(72).reshape((3, 6, 4)).astype("float32")
SEQ24 = np.arange(24).reshape((2, 4, 3)).astype("float32")
MASK = np.array([[True, True, True, False], [True, True, False, False]])


@pytest.mark.parametrize(
    "kw, expected",
    [
        ({}, [0.6288687, 0.86899155, 0.9460773]),
        ({"go_backwards": True}, [0.35622165, 0.74789524, 0.8872726]),
        ({"unit_forget_bias": False}, [0.57019705, 0.8661914, 0.9459622]),
        ({"use_bias": False}, [0.54986924, 0.86226785, 0.9443936]),
    ],
    ids=["default", "go_backwards", "no_unit_forget_bias", "no_bias"],
)
def test_keras_correctness(kw, expected):
    np.testing.assert_allclose(_last(SEQ72, 3, **kw), _rows(expected, 3), atol=ATOL, rtol=ATOL)


def test_keras_statefulness():
    # Two calls carrying state; the second call's output is the published one.
    seq = np.arange(24).reshape((2, 3, 4)).astype("float32")
    w = _weights(4, 4)
    _, _, h, c = naive.lstm(seq, *w)
    _, last, _, _ = naive.lstm(seq, *w, h0=h, c0=c)
    np.testing.assert_allclose(last, _rows([0.3124785, 0.6863672], 4), atol=ATOL, rtol=ATOL)


def test_keras_initial_state():
    init = np.arange(4).reshape((2, 2)).astype("float32")
    w = _weights(3, 2)
    seq = np.arange(24).reshape((2, 4, 3)).astype("float32")
    _, last, _, _ = naive.lstm(seq, *w, h0=init, c0=init)
    np.testing.assert_allclose(last, [[0.20574439, 0.3558822], [0.64930826, 0.66276]], atol=ATOL)
    _, last, _, _ = naive.lstm(seq, *w, h0=init, c0=init, go_backwards=True)
    np.testing.assert_allclose(last, [[0.13281618, 0.2790356], [0.5839337, 0.5992567]], atol=ATOL)


def test_keras_masking():
    w = _weights(3, 2)
    seq, last, _, _ = naive.lstm(SEQ24, *w, mask=MASK)
    np.testing.assert_allclose(last, _rows([0.11755939, 0.28556206], 2), atol=ATOL)
    np.testing.assert_allclose(seq[0], _rows([0.0158891, 0.05552048, 0.11755939, 0.11755939], 2), atol=ATOL)
    np.testing.assert_allclose(seq[1], _rows([0.14185596, 0.28556206, 0.28556206, 0.28556206], 2), atol=ATOL)

    seq, _, _, _ = naive.lstm(SEQ24, *w, mask=MASK, zero_output_for_mask=True)
    np.testing.assert_allclose(seq[0], _rows([0.0158891, 0.05552048, 0.11755939, 0.0], 2), atol=ATOL)
    np.testing.assert_allclose(seq[1], _rows([0.14185596, 0.28556206, 0.0, 0.0], 2), atol=ATOL)

    back_mask = np.array([[False, True, True, True], [False, False, True, True]])
    _, last, _, _ = naive.lstm(SEQ24, *w, mask=back_mask, go_backwards=True)
    np.testing.assert_allclose(last, _rows([0.15341201, 0.3844719], 2), atol=ATOL)


def test_mask_semantics_and_nan_isolation():
    rng = np.random.default_rng(0)
    B, T, D, U = 3, 5, 2, 4
    x = rng.normal(size=(B, T, D))
    w = (rng.normal(size=(D, 4 * U)), rng.normal(size=(U, 4 * U)), rng.normal(size=4 * U))
    h0, c0 = rng.normal(size=(B, U)), rng.normal(size=(B, U))
    mask = np.array([[False, True, False, True, False]] + [[False] * T] + [[True] * T])
    x_nan = np.where(mask[..., None], x, np.nan)
    seq, last, h, c = naive.lstm(x_nan, *w, h0=h0, c0=c0, mask=mask)
    assert np.isfinite(seq).all() and np.isfinite(h).all() and np.isfinite(c).all()
    # Output before the first unmasked step is zeros, not h0; fully masked row keeps h0, c0.
    np.testing.assert_array_equal(seq[0, 0], 0.0)
    np.testing.assert_array_equal(seq[0, 2], seq[0, 1])
    np.testing.assert_array_equal(last[1], 0.0)
    np.testing.assert_array_equal(h[1], h0[1])
    np.testing.assert_array_equal(c[1], c0[1])
    np.testing.assert_array_equal(last[0], seq[0, 3])
    # Removing the masked steps of row 0 gives the same final state.
    _, _, h_sub, c_sub = naive.lstm(x[:1, [1, 3]], *w, h0=h0[:1], c0=c0[:1])
    np.testing.assert_allclose(h[0], h_sub[0], rtol=1e-12)
    np.testing.assert_allclose(c[0], c_sub[0], rtol=1e-12)


def test_go_backwards_is_processing_order():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 4, 3))
    w = (rng.normal(size=(3, 8)), rng.normal(size=(2, 8)), rng.normal(size=8))
    seq_b, last_b, h_b, _ = naive.lstm(x, *w, go_backwards=True)
    seq_r, last_r, h_r, _ = naive.lstm(x[:, ::-1], *w)
    np.testing.assert_array_equal(seq_b, seq_r)
    np.testing.assert_array_equal(last_b, seq_b[:, -1])
    np.testing.assert_array_equal(h_b, h_r)


_POINTS = np.array([-30.0, -3.5, -1.0, -0.2, 0.0, 0.3, 1.0, 2.9, 7.0, 30.0])


def _scalar(name, v):
    # Written independently, scalar by scalar, from the Keras formulas.
    sig = lambda u: 1.0 / (1.0 + math.exp(-u)) if u >= 0 else math.exp(u) / (1.0 + math.exp(u))
    sp = lambda u: max(u, 0.0) + math.log1p(math.exp(-abs(u)))
    elu = lambda u, a=1.0: u if u > 0 else a * (math.exp(u) - 1.0)
    return {
        "linear": v, "tanh": math.tanh(v), "sigmoid": sig(v),
        "hard_sigmoid_k3": min(max(v / 6 + 0.5, 0.0), 1.0),
        "hard_sigmoid_k2": min(max(0.2 * v + 0.5, 0.0), 1.0),
        "relu": max(v, 0.0), "softsign": v / (1 + abs(v)), "softplus": sp(v), "elu": elu(v),
        "selu": 1.0507009873554805 * elu(v, 1.6732632423543772), "silu": v * sig(v),
        "gelu": 0.5 * v * (1 + math.erf(v / math.sqrt(2))), "exponential": math.exp(v),
        "relu6": min(max(v, 0.0), 6.0), "hard_silu": v * min(max(v + 3, 0.0), 6.0) / 6,
        "leaky_relu": v if v >= 0 else 0.2 * v, "log_sigmoid": -sp(-v),
        "mish": v * math.tanh(sp(v)), "hard_tanh": min(max(v, -1.0), 1.0),
        "celu": max(v, 0.0) + min(0.0, math.exp(v) - 1.0),
    }[name]


@pytest.mark.parametrize("name", sorted(naive.ACTIVATIONS))
def test_activations(name):
    got = naive.ACTIVATIONS[name](_POINTS.copy())
    want = np.array([_scalar(name, v) for v in _POINTS])
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-300)


def test_softmax():
    x = np.array([[1.0, 2.0, 3.0], [-1e30, 0.0, 0.0], [0.0, np.nan, 1.0]])
    want0 = [math.exp(v - 3.0) / sum(math.exp(u - 3.0) for u in (1.0, 2.0, 3.0))
             for v in (1.0, 2.0, 3.0)]
    got = naive.get_activation("softmax")(x)
    np.testing.assert_allclose(got[0], want0, rtol=1e-12)
    np.testing.assert_allclose(got[1], [0.0, 0.5, 0.5])
    assert np.isnan(got[2]).all()


def test_activation_aliases_and_flavours():
    x = np.array([-4.0, 1.0, 3.0])
    np.testing.assert_allclose(naive.get_activation("hard_sigmoid")(x), [0.0, 1 / 6 + 0.5, 1.0])
    np.testing.assert_allclose(naive.get_activation("hard_sigmoid", "keras2")(x), [0.0, 0.7, 1.0])
    assert naive.get_activation("swish") is naive.ACTIVATIONS["silu"]
    assert naive.get_activation(None)(x) is x
    assert naive.flavour_from_version("2.21.0") == "keras2"
    assert naive.flavour_from_version("3.15.1") == "keras3"


def test_bidirectional_matches_two_lstms():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 5, 3))
    mask = np.array([[True] * 5, [True, True, True, False, False]])
    fw = (rng.normal(size=(3, 8)), rng.normal(size=(2, 8)), rng.normal(size=8))
    bw = (rng.normal(size=(3, 8)), rng.normal(size=(2, 8)), rng.normal(size=8))
    y = naive.bidirectional(x, fw, bw, mask=mask, return_sequences=True)
    assert y.shape == (2, 5, 4)
    seq_b, _, _, _ = naive.lstm(x, *bw, mask=mask, go_backwards=True, zero_output_for_mask=True)
    np.testing.assert_array_equal(y[..., 2:], seq_b[:, ::-1])
    np.testing.assert_array_equal(y[1, 3:], 0.0)


def _model_files():
    import glob
    import os

    here = os.path.dirname(os.path.abspath(__file__))
    return sorted(glob.glob(os.path.join(here, "fixtures", "models", "*.npz")))


@pytest.mark.parametrize("path", _model_files(), ids=lambda p: p.rsplit("/", 1)[-1][:-4])
def test_naive_reproduces_model_fixtures(path):
    """Embedding/LSTM/Dense chains of the model fixtures, layer by layer from to_json()."""
    import json

    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays["meta_json"]))
    layers = json.loads(str(arrays["config_json"]))["config"]["layers"]
    flavour = naive.flavour_from_version(meta["keras_version"])
    weights = iter(arrays[k] for k in sorted(arrays) if k.startswith("w_"))
    y, mask = arrays["x_0"], None
    for layer in layers:
        cls, cfg = layer["class_name"], layer["config"]
        if cls == "Embedding":
            y, mask = naive.embedding(y, next(weights), cfg.get("mask_zero", False))
        elif cls == "LSTM":
            w = [next(weights), next(weights)] + ([next(weights)] if cfg["use_bias"] else [None])
            seq, last, _, _ = naive.lstm(y, *w, mask=mask, activation=cfg["activation"],
                                         recurrent_activation=cfg["recurrent_activation"],
                                         hard_sigmoid=flavour)
            y, mask = (seq, mask) if cfg["return_sequences"] else (last, None)
        elif cls == "Dense":
            y = naive.dense(y, next(weights), next(weights) if cfg["use_bias"] else None,
                            cfg["activation"])
        else:
            assert cls == "InputLayer", cls
    ref = arrays["y_0"]
    np.testing.assert_allclose(y, ref, rtol=0, atol=1e-5 * max(1.0, np.abs(ref).max()))
