"""The public ``gpulstm.LSTM`` layer: Keras's API, shapes, config, state and errors."""
import json

import numpy as np
import pytest

import gpulstm
import naive

SEQ72 = np.arange(72).reshape((3, 6, 4)).astype("float32")


def _constant_layer(**kw):
    return gpulstm.LSTM(3, kernel_initializer={"class_name": "Constant", "config": {"value": 0.01}},
                        recurrent_initializer={"class_name": "Constant", "config": {"value": 0.02}},
                        bias_initializer={"class_name": "Constant", "config": {"value": 0.03}}, **kw)


@pytest.mark.parametrize("kw, row", [
    ({}, [0.6288687, 0.86899155, 0.9460773]),
    ({"go_backwards": True}, [0.35622165, 0.74789524, 0.8872726]),
])
def test_keras_correctness_values(kw, row):
    # keras/src/layers/rnn/lstm_test.py::test_correctness, through the whole layer
    out = _constant_layer(**kw)(SEQ72)
    np.testing.assert_allclose(out, np.repeat(np.array(row)[:, None], 3, 1), atol=1e-5, rtol=1e-5)


def test_seed_counts_and_shapes():
    x = np.random.default_rng(0).random((2, 400, 3)).astype("float32")
    assert gpulstm.LSTM(50).__call__(x).shape == (2, 50)
    layer = gpulstm.LSTM(50)
    layer.build((None, 400, 3))
    assert layer.count_params() == 10800 == 4 * (3 + 50 + 1) * 50
    nb = gpulstm.LSTM(50, use_bias=False)
    nb.build((None, 400, 3))
    assert nb.count_params() == 10600
    seq, h, c = gpulstm.LSTM(50, return_sequences=True, return_state=True)(x)
    assert seq.shape == (2, 400, 50) and h.shape == c.shape == (2, 50)
    np.testing.assert_array_equal(seq[:, -1], h)
    out, h, c = gpulstm.LSTM(50, return_state=True)(x)
    np.testing.assert_array_equal(out, h)


def test_compute_output_shape_combinations():
    shape = (None, 10, 3)
    assert gpulstm.LSTM(50).compute_output_shape(shape) == (None, 50)
    assert gpulstm.LSTM(50, return_sequences=True).compute_output_shape(shape) == (None, 10, 50)
    assert gpulstm.LSTM(50, return_state=True).compute_output_shape(shape) == [(None, 50)] * 3
    assert gpulstm.LSTM(50, return_state=True, return_sequences=True).compute_output_shape(
        shape) == [(None, 10, 50), (None, 50), (None, 50)]
    assert gpulstm.LSTM(4, time_major=True, return_sequences=True).compute_output_shape(
        (10, None, 3)) == (10, None, 4)


def _random_layer(rng, D=3, U=4, **kw):
    layer = gpulstm.LSTM(U, **kw)
    w = [rng.normal(0, 0.5, (D, 4 * U)), rng.normal(0, 0.5, (U, 4 * U)), rng.normal(0, 0.5, 4 * U)]
    layer.set_weights(w[:3 if layer.use_bias else 2])
    return layer, w


def test_time_major_matches_batch_major():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 5, 3)).astype("float32")
    a, w = _random_layer(rng, return_sequences=True, return_state=True)
    b = gpulstm.LSTM(4, return_sequences=True, return_state=True, time_major=True)
    b.set_weights(w)
    mask = np.ones((3, 5), bool)
    mask[0, 3:] = False
    ra = a(x, mask=mask)
    rb = b(np.swapaxes(x, 0, 1), mask=mask.T)
    np.testing.assert_allclose(np.swapaxes(rb[0], 0, 1), ra[0], atol=1e-6)
    np.testing.assert_allclose(rb[1], ra[1], atol=1e-6)


def test_stateful_carries_and_resets():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 6, 3)).astype("float32")
    layer, w = _random_layer(rng, stateful=True, return_sequences=True)
    first = layer(x[:, :3])
    second = layer(x[:, 3:])
    _, _, h_ref, c_ref = naive.lstm(x, *w)
    seq_ref = naive.lstm(x, *w)[0]
    np.testing.assert_allclose(np.concatenate([first, second], 1), seq_ref, atol=1e-5)
    h, c = layer.states
    np.testing.assert_allclose(h, h_ref, atol=1e-5)
    np.testing.assert_allclose(c, c_ref, atol=1e-5)
    layer.reset_states()
    np.testing.assert_allclose(layer(x[:, :3]), first, atol=0)
    layer.reset_states(states=[h_ref, c_ref])
    np.testing.assert_allclose(layer.states[0], h_ref.astype("float32"))
    with pytest.raises(ValueError, match="batch size"):
        layer(x[:1])
    np.testing.assert_allclose(layer.states[0], h_ref.astype("float32"))  # unchanged


def test_unroll_and_inference_args_change_nothing():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 5, 3)).astype("float32")
    base, w = _random_layer(rng)
    other = gpulstm.LSTM(4, unroll=True, dropout=0.5, recurrent_dropout=0.3,
                         kernel_regularizer={"class_name": "L2", "config": {"l2": 0.1}},
                         implementation=1, use_cudnn="auto")
    other.set_weights(w)
    np.testing.assert_array_equal(base(x), other(x))
    np.testing.assert_array_equal(base(x), other(x, training=False))


def test_dropout_training_statistics():
    rng = np.random.default_rng(4)
    B, T, D = 4000, 3, 2
    x = np.ones((B, T, D), "float32")
    layer = gpulstm.LSTM(1, dropout=0.5, seed=1, return_sequences=True, activation="linear",
                         recurrent_activation="linear")
    # z_c = x @ K; with K only on the candidate gate and linear activations the first
    # output is i * g * o with i = o = 1: it shows the dropped inputs directly.
    kernel = np.zeros((D, 4), "float32")
    kernel[:, 2] = 1.0
    bias = np.array([1.0, 0.0, 0.0, 1.0], "float32")
    layer.set_weights([kernel, np.zeros((1, 4), "float32"), bias])
    y = layer(x, training=True)[:, :, 0]
    # inverted dropout: each feature kept with p=0.5 and scaled by 2
    assert set(np.unique(np.round(y[:, 0], 4))) <= {0.0, 2.0, 4.0}
    assert abs(y[:, 0].mean() - 2.0) < 0.1
    # one mask per call shared across timesteps: the pre-activation repeats per row
    z_steps = np.diff(y, axis=1)
    assert np.isfinite(z_steps).all()
    y2 = layer(x, training=True)[:, 0, 0]
    assert not np.array_equal(y[:, 0], y2)  # a new mask each call
    np.testing.assert_array_equal(layer(x)[:, 0, 0], np.full(B, 2.0, "float32"))


def test_recurrent_dropout_per_gate_statistics():
    B = 3000
    layer = gpulstm.LSTM(1, recurrent_dropout=0.5, seed=3, return_sequences=True,
                         activation="linear", recurrent_activation="linear")
    kernel = np.zeros((1, 4), "float32")
    rk = np.array([[0.0, 0.0, 1.0, 0.0]], "float32")
    layer.set_weights([kernel, rk, np.array([1.0, 0.0, 0.0, 1.0], "float32")])
    h0 = np.ones((B, 1), "float32")
    y = layer(np.zeros((B, 1, 1), "float32"), initial_state=[h0, np.zeros_like(h0)],
              training=True)[:, 0, 0]
    assert set(np.unique(y)) <= {0.0, 2.0}
    assert abs((y == 0).mean() - 0.5) < 0.05


def test_custom_callable_activation():
    import math

    def scaled_tanh(x):
        return 1.7159 * math.tanh(2.0 / 3.0 * x)

    rng = np.random.default_rng(5)
    x = rng.normal(size=(2, 4, 3)).astype("float32")
    layer, w = _random_layer(rng, activation=scaled_tanh)
    got = layer(x)
    ref = naive.lstm(x.astype(np.float64), *w, activation="tanh")  # differs: sanity only
    assert not np.allclose(got, ref[1])
    # the same through the float64 reference with a NumPy twin of the callable
    naive.ACTIVATIONS["_scaled_tanh"] = lambda v: 1.7159 * np.tanh(2.0 / 3.0 * v)
    try:
        ref = naive.lstm(x, *w, activation="_scaled_tanh")
    finally:
        del naive.ACTIVATIONS["_scaled_tanh"]
    np.testing.assert_allclose(got, ref[1], atol=1e-5)


def test_uncompilable_callable_is_a_clear_error():
    layer = gpulstm.LSTM(2, activation=lambda v: {"not": v})
    with pytest.raises(ValueError, match="numba"):
        layer(np.ones((1, 2, 1), "float32"))


def test_float64_dtype_and_int_inputs():
    rng = np.random.default_rng(6)
    layer, w = _random_layer(rng, dtype="float64")
    x = rng.integers(-2, 3, size=(2, 5, 3))
    out = layer(x)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, naive.lstm(x, *w)[1], atol=1e-12)
    l32, _ = _random_layer(np.random.default_rng(6))
    assert l32(x).dtype == np.float32


def test_config_round_trip_and_keras_version():
    layer = gpulstm.LSTM(7, recurrent_activation="hard_sigmoid", return_sequences=True,
                         name="enc", seed=5, keras_version="2.15.0")
    cfg = layer.get_config()
    assert "time_major" not in cfg and cfg["name"] == "enc" and cfg["seed"] == 5
    json.dumps(cfg)
    again = gpulstm.LSTM.from_config(cfg)
    assert again.get_config() == cfg
    assert again._ract[0] == layer._ract[0]  # Keras 2's hard_sigmoid survives the trip
    k3 = gpulstm.LSTM.from_config({**cfg, "keras_version": None})
    assert k3._ract[0] != layer._ract[0]
    tm = gpulstm.LSTM(3, time_major=True).get_config()
    assert tm["time_major"] is True


def test_from_config_reads_tf_keras_dialect():
    cfg = {"name": "lstm", "trainable": True, "dtype": "float32", "return_sequences": False,
           "return_state": False, "go_backwards": False, "stateful": False, "unroll": False,
           "time_major": False, "units": 4, "activation": "swish",
           "recurrent_activation": "hard_sigmoid", "use_bias": True,
           "kernel_initializer": {"class_name": "GlorotUniform", "config": {"seed": None}},
           "recurrent_initializer": {"class_name": "Orthogonal", "config": {"gain": 1.0, "seed": None}},
           "bias_initializer": {"class_name": "Zeros", "config": {}}, "unit_forget_bias": True,
           "kernel_regularizer": None, "recurrent_regularizer": None, "bias_regularizer": None,
           "activity_regularizer": None, "kernel_constraint": None, "recurrent_constraint": None,
           "bias_constraint": None, "dropout": 0.0, "recurrent_dropout": 0.0, "implementation": 2,
           "batch_input_shape": [None, 5, 3]}
    layer = gpulstm.LSTM.from_config(cfg, keras_version="2.21.0")
    assert layer.get_config()["activation"] == "silu"
    assert layer._ract[0] == gpulstm.activations.CODES["hard_sigmoid_k2"]


def test_unknown_argument_is_an_error():
    with pytest.raises(TypeError, match="foo"):
        gpulstm.LSTM(3, foo=1)
    with pytest.raises(ValueError, match="Received: activation='tanhh'"):
        gpulstm.LSTM(3, activation="tanhh")
    with pytest.raises(ValueError, match="units"):
        gpulstm.LSTM(0)
    with pytest.raises(ValueError, match="backend"):
        gpulstm.LSTM(3, backend="cdua")


def test_deterministic_initializers_and_unit_forget_bias():
    layer = gpulstm.LSTM(3, kernel_initializer="ones", recurrent_initializer="identity",
                         bias_initializer="ones", unit_forget_bias=True)
    layer.build((None, 2, 2))
    kernel, rk, bias = layer.get_weights()
    np.testing.assert_array_equal(kernel, np.ones((2, 12)))
    np.testing.assert_array_equal(rk, np.eye(3, 12))
    np.testing.assert_array_equal(bias, np.ones(12))  # the forget block is *set* to 1
    zb = gpulstm.LSTM(3, unit_forget_bias=True)
    zb.build((None, 2, 2))
    np.testing.assert_array_equal(zb.get_weights()[2], np.r_[np.zeros(3), np.ones(3), np.zeros(6)])
    nf = gpulstm.LSTM(3, unit_forget_bias=False)
    nf.build((None, 2, 2))
    np.testing.assert_array_equal(nf.get_weights()[2], np.zeros(12))


def test_random_initializer_statistics():
    layer = gpulstm.LSTM(64, seed=0)
    layer.build((None, 1, 200))
    kernel, rk, _ = layer.get_weights()
    limit = np.sqrt(6.0 / (200 + 256))  # glorot_uniform
    assert np.abs(kernel).max() <= limit and abs(kernel.std() - limit / np.sqrt(3)) < 0.01 * limit * 5
    q = rk.astype(np.float64)  # orthogonal (U, 4U): orthonormal rows
    np.testing.assert_allclose(q @ q.T, np.eye(64), atol=1e-5)
    he = gpulstm.LSTM(64, kernel_initializer="he_normal", seed=1)
    he.build((None, 1, 400))
    k = he.get_weights()[0]
    assert abs(k.std() - np.sqrt(2.0 / 400)) < 0.05 * np.sqrt(2.0 / 400)
    assert np.abs(k).max() <= 2 * np.sqrt(2.0 / 400) / 0.87962566103423978 + 1e-6
    seeded = gpulstm.LSTM(4, kernel_initializer={"class_name": "RandomNormal",
                                                 "config": {"seed": 3, "stddev": 1.0}})
    seeded.build((None, 1, 5))
    other = gpulstm.LSTM(4, kernel_initializer={"class_name": "RandomNormal",
                                                "config": {"seed": 3, "stddev": 1.0}})
    other.build((None, 1, 5))
    np.testing.assert_array_equal(seeded.get_weights()[0], other.get_weights()[0])


@pytest.mark.parametrize("bad, match", [
    (np.ones((2, 3)), "ndim=3"),
    (np.ones((2, 3, 4, 1)), "ndim=3"),
    (np.ones((2, 3, 5)), "axis -1"),
    (np.array([["a"]]), "numeric"),
    ("text", "numeric"),
])
def test_bad_inputs_leave_layer_unchanged(bad, match):
    rng = np.random.default_rng(7)
    layer, w = _random_layer(rng, D=4, stateful=True)
    x = rng.normal(size=(2, 3, 4)).astype("float32")
    layer(x)
    before = layer.states[0].copy()
    weights = layer.get_weights()
    with pytest.raises(ValueError, match=match):
        layer(bad)
    np.testing.assert_array_equal(layer.states[0], before)
    for a, b in zip(weights, layer.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_bad_mask_state_and_weights():
    rng = np.random.default_rng(8)
    layer, w = _random_layer(rng)
    x = rng.normal(size=(2, 3, 3)).astype("float32")
    with pytest.raises(ValueError, match="mask of shape"):
        layer(x, mask=np.ones((3, 2), bool))
    with pytest.raises(ValueError, match="initial_state"):
        layer(x, initial_state=[np.zeros((2, 4))])
    with pytest.raises(ValueError, match=r"Received: initial_state\[1\] with shape"):
        layer(x, initial_state=[np.zeros((2, 4)), np.zeros((2, 5))])
    with pytest.raises(ValueError, match="expected 3 weights"):
        layer.set_weights(w[:2])
    with pytest.raises(ValueError, match="expected shape"):
        layer.set_weights([w[0], w[1], np.zeros(15)])
    np.testing.assert_array_equal(layer.get_weights()[2], w[2].astype("float32"))
    fresh = gpulstm.LSTM(4)
    with pytest.raises(ValueError):
        fresh.set_weights([w[0], w[1]])
    assert not fresh.built


def test_nan_in_nan_out_and_masked_nan_ignored():
    rng = np.random.default_rng(9)
    layer, w = _random_layer(rng, return_sequences=True)
    x = rng.normal(size=(2, 4, 3)).astype("float32")
    mask = np.ones((2, 4), bool)
    mask[1, 2:] = False
    x[1, 2:] = np.nan
    y = layer(x, mask=mask)
    assert np.isfinite(y).all()
    x[0, 1, 0] = np.nan
    y = layer(x, mask=mask)
    assert np.isnan(y[0, 1:]).all() and np.isfinite(y[1]).all()


def test_backend_env_and_errors(monkeypatch):
    rng = np.random.default_rng(10)
    layer, _ = _random_layer(rng)
    x = rng.normal(size=(1, 2, 3)).astype("float32")
    monkeypatch.setenv("GPULSTM_BACKEND", "cpu")
    layer(x)
    assert layer.last_backend == "cpu"
    monkeypatch.setenv("GPULSTM_BACKEND", "nope")
    with pytest.raises(ValueError, match="GPULSTM_BACKEND='nope'"):
        layer(x)
    monkeypatch.delenv("GPULSTM_BACKEND")
    layer(x, backend="cpu")


def test_rejected_first_call_leaves_layer_unbuilt():
    layer = gpulstm.LSTM(4)
    x = np.ones((2, 3, 5), "float32")
    with pytest.raises(ValueError, match="mask of shape"):
        layer(x, mask=np.ones((2, 4), bool))
    with pytest.raises(ValueError, match="initial_state"):
        layer(x, initial_state=[np.zeros((2, 4)), np.zeros((2, 3))])
    assert not layer.built and layer.weights == []
    assert layer(x).shape == (2, 4) and layer.built
