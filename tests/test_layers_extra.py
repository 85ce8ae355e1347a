"""Issue 16's layers one by one: arguments refused as Keras refuses them, eager calls,
mask rules, inference-only behaviour and tf_keras 2 configs (written from tf_keras's
``get_config``; no TensorFlow here).  The numbers themselves are checked against Keras in
test_layers_fixtures.py."""
import json

import numpy as np
import pytest

import gpulstm
from gpulstm import layers as _  # noqa: F401
from gpulstm.layers import extra as X
from gpulstm.models.serialization import deserialize_layer, serialize_layer

rng = np.random.default_rng(7)


def _x(*shape):
    return rng.standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("make, shape", [
    (lambda: X.Conv1D(4, 3, padding="causal", dilation_rate=2), (2, 9, 3)),
    (lambda: X.Conv2D(4, (3, 2), strides=2, padding="same", groups=2), (2, 7, 5, 2)),
    (lambda: X.Conv2D(2, 3, data_format="channels_first"), (2, 3, 6, 5)),
    (lambda: X.MaxPooling2D((2, 3), padding="same"), (2, 7, 5, 2)),
    (lambda: X.AveragePooling1D(3, strides=2, padding="same"), (2, 9, 3)),
    (lambda: X.GlobalAveragePooling2D(keepdims=True), (2, 4, 3, 2)),
    (lambda: X.RepeatVector(3), (2, 4)),
    (lambda: X.Flatten(), (2, 3, 4, 2)),
    (lambda: X.Permute((3, 1, 2)), (2, 3, 4, 2)),
    (lambda: X.Cropping1D((1, 2)), (2, 6, 3)),
    (lambda: X.ZeroPadding1D(2), (2, 6, 3)),
    (lambda: X.UpSampling1D(3), (2, 6, 3)),
    (lambda: X.PReLU(shared_axes=[1]), (2, 6, 3)),
    (lambda: X.LayerNormalization(axis=[1, 2]), (2, 6, 3)),
    (lambda: X.BatchNormalization(axis=1), (2, 6, 3)),
])
def test_eager_call_builds_and_matches_compute_output_shape(make, shape):
    layer = make()
    y = layer(_x(*shape))
    assert layer.built and y.dtype == np.float32
    assert layer.compute_output_shape((None,) + shape[1:]) == (None,) + y.shape[1:]
    again = deserialize_layer(json.loads(json.dumps(serialize_layer(layer))))
    again.build((None,) + shape[1:])
    again.set_weights(layer.get_weights())
    np.testing.assert_array_equal(again(_x(*shape) * 0 + 1), layer(_x(*shape) * 0 + 1))


def _conv1d_reference(x, w, b, stride, dilation, pad_before, groups):
    """float64 direct loops: y[n, t, f] = sum_k,c x[n, t*s + k*d - pad, c] w[k, c, f]."""
    n, t_in, c_in = x.shape
    k_size, cg, filters = w.shape
    fg = filters // groups
    t_out = (t_in + pad_before - dilation * (k_size - 1) - 1) // stride + 1
    y = np.zeros((n, t_out, filters))
    for t in range(t_out):
        for f in range(filters):
            g = f // fg
            for k in range(k_size):
                src = t * stride + k * dilation - pad_before
                if 0 <= src < t_in:
                    y[:, t, f] += x[:, src, g * cg:(g + 1) * cg].astype(np.float64) @ w[k, :, f]
    return y + b


@pytest.mark.parametrize("kw, pad", [({"strides": 2}, 0), ({"dilation_rate": 2,
                                      "padding": "causal"}, 4), ({"groups": 2}, 0)])
def test_conv1d_against_direct_loops(kw, pad):
    layer = X.Conv1D(4, 3, **kw)
    x = _x(2, 10, 4)
    y = layer(x)
    w, b = layer.get_weights()
    b = rng.standard_normal(4).astype(np.float32)
    layer.set_weights([w, b])
    ref = _conv1d_reference(x, w, b, kw.get("strides", 1), kw.get("dilation_rate", 1), pad,
                            kw.get("groups", 1))
    y = layer(x)
    assert np.max(np.abs(y - ref)) <= 1e-5 * max(1.0, np.max(np.abs(ref)))


@pytest.mark.parametrize("make, match", [
    (lambda: X.Conv1D(0, 3), "filters"),
    (lambda: X.Conv1D(4, 3, groups=3), "divisible"),
    (lambda: X.Conv2D(4, (3, 0)), "kernel_size"),
    (lambda: X.Conv2D(4, 3, strides=2, dilation_rate=2), "dilation_rate"),
    (lambda: X.Conv2D(4, 3, padding="causal"), "padding"),
    (lambda: X.Conv1D(4, 3, data_format="NHWC"), "data_format"),
    (lambda: X.MaxPooling1D(2, padding="full"), "padding"),
    (lambda: X.RepeatVector(0), "n"),
    (lambda: X.UpSampling1D(1.5), "size"),
    (lambda: X.Permute((1, 3)), "dims"),
    (lambda: X.Cropping1D((1, -1)), "cropping"),
    (lambda: X.ReLU(max_value=-1.0), "max_value"),
    (lambda: X.LeakyReLU(negative_slope=-0.1), "negative_slope"),
    (lambda: X.GaussianNoise(2.0), "stddev"),
    (lambda: X.BatchNormalization(renorm=True), "renorm"),
    (lambda: X.LayerNormalization(axis="last"), "axis"),
    (lambda: X.PReLU(shared_axes=[0]), "shared_axes"),
    (lambda: X.Activation("no_such_activation"), "activation"),
    (lambda: X.Dot("last"), "axes"),
    (lambda: X.Dot((1, 2, 3)), "axes"),
    (lambda: X.Attention(score_mode="general"), "score_mode"),
    (lambda: X.AdditiveAttention(dropout=1.5), "dropout"),
])
def test_bad_arguments_are_refused_keras_style(make, match):
    with pytest.raises((ValueError, TypeError), match=match) as info:
        make()
    assert "Received" in str(info.value)


@pytest.mark.parametrize("layer, shape, match", [
    (X.Conv1D(2, 3), (None, 4, 5, 3), "ndim=3"),
    (X.Conv1D(2, 3, groups=2), (None, 4, 3), "groups"),
    (X.Conv2D(2, 5), (None, 4, 6, 1), "negative"),
    (X.MaxPooling1D(4), (None, 3, 2), "negative"),
    (X.RepeatVector(2), (None, 3, 2), "ndim=2"),
    (X.Cropping1D(2), (None, 4, 2), "smaller"),
    (X.BatchNormalization(axis=3), (None, 4, 2), "axis"),
])
def test_incompatible_inputs_leave_the_layer_unbuilt(layer, shape, match):
    with pytest.raises(ValueError, match=match):
        layer(gpulstm.Input(batch_shape=shape))
    assert not layer.built and layer.get_weights() == []


def test_a_built_conv_refuses_other_channels_and_stays_as_it_was():
    layer = X.Conv1D(2, 3)
    layer(_x(1, 5, 3))
    ws = layer.get_weights()
    with pytest.raises(ValueError, match="channel"):
        layer(gpulstm.Input((5, 4)))
    assert all(np.array_equal(a, b) for a, b in zip(ws, layer.get_weights()))


def test_batch_normalization_inference_formula_and_training_refused():
    layer = X.BatchNormalization(epsilon=0.01)
    x = _x(3, 4, 5)
    layer.build((None, 4, 5))
    gamma, beta, mean, var = (rng.uniform(0.5, 1.5, 5).astype(np.float32) for _ in range(4))
    layer.set_weights([gamma, beta, mean, var])
    ref = (x - mean) / np.sqrt(var + 0.01) * gamma + beta
    np.testing.assert_allclose(layer(x), ref, rtol=1e-5, atol=1e-6)
    assert layer.weight_trainable == [True, True, False, False]
    with pytest.raises(ValueError, match="training=True"):
        layer(x, training=True)


def test_frozen_stats_count_as_non_trainable_in_summary():
    model = gpulstm.Sequential([gpulstm.Input((6, 3)), X.Conv1D(4, 3),
                                X.BatchNormalization(), X.GlobalMaxPooling1D()])
    text = []
    model.summary(print_fn=text.append)
    text = "\n".join(text)
    assert "Total params: 56" in text  # 3*3*4 + 4 = 40; BN 4 * 4 = 16
    assert "Trainable params: 48" in text and "Non-trainable params: 8" in text


def test_mask_rules_follow_keras3():
    tok = np.array([[3, 4, 0, 0], [5, 0, 6, 7]])
    mask = tok != 0
    x = _x(2, 4, 3)
    # layers that support masking pass it on; convolution, pooling and shaping drop it
    for layer in (X.Activation("tanh"), X.ReLU(), X.BatchNormalization(), X.SpatialDropout1D(0.1),
                  X.LayerNormalization(), X.GaussianNoise(0.1)):
        assert layer.compute_mask(x, mask) is mask
    for layer in (X.Conv1D(2, 2), X.MaxPooling1D(), X.Flatten(), X.Permute((2, 1)),
                  X.GlobalAveragePooling1D(), X.GlobalMaxPooling1D(), X.UpSampling1D()):
        assert layer.compute_mask(x, mask) is None
    # GlobalAveragePooling1D averages the unmasked steps; GlobalMaxPooling1D ignores the mask
    avg = X.GlobalAveragePooling1D()(x, mask=mask)
    np.testing.assert_allclose(avg[0], x[0, :2].mean(0), rtol=1e-6)
    np.testing.assert_allclose(avg[1], x[1, [0, 2, 3]].mean(0), rtol=1e-6)
    np.testing.assert_array_equal(X.GlobalMaxPooling1D()(x, mask=mask), x.max(1))
    # Softmax gives masked entries probability 0
    p = X.Softmax()(x, mask=np.array([True, False, True]))
    assert np.all(p[..., 1] == 0) and np.allclose(p.sum(-1), 1)


def test_noise_layers_are_identity_at_inference_and_noisy_in_training():
    x = _x(4, 6, 3)
    for layer in (X.SpatialDropout1D(0.5, seed=1), X.GaussianNoise(0.5, seed=1),
                  X.GaussianDropout(0.5, seed=1), X.AlphaDropout(0.5, seed=1)):
        np.testing.assert_array_equal(layer(x), x)
        assert not np.array_equal(layer(x, training=True), x)
    y = X.SpatialDropout1D(0.5, seed=3)(x, training=True)
    dropped = np.all(y == 0, axis=1)  # whole channels go
    assert dropped.any() and np.all((y == 0) == dropped[:, None, :])


# -- tf_keras 2 configs (keys as tf_keras 2.15's get_config writes them) -------------------
def _tfk(cls, name, **config):
    return {"class_name": cls, "config": {"name": name, "trainable": True,
                                          "dtype": "float32", **config}}


_INIT = {"class_name": "Zeros", "config": {}}
_ONES = {"class_name": "Ones", "config": {}}
_GLOROT = {"class_name": "GlorotUniform", "config": {"seed": None}}
TFK_LAYERS = [
    _tfk("Conv1D", "conv1d", filters=4, kernel_size=[3], strides=[1], padding="same",
         data_format="channels_last", dilation_rate=[1], groups=1, activation="relu",
         use_bias=True, kernel_initializer=_GLOROT, bias_initializer=_INIT,
         kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
         kernel_constraint=None, bias_constraint=None),
    _tfk("BatchNormalization", "bn", axis=[2], momentum=0.99, epsilon=0.001, center=True,
         scale=True, beta_initializer=_INIT, gamma_initializer=_ONES,
         moving_mean_initializer=_INIT, moving_variance_initializer=_ONES,
         beta_regularizer=None, gamma_regularizer=None, beta_constraint=None,
         gamma_constraint=None),
    _tfk("LeakyReLU", "leaky", alpha=0.3),
    _tfk("MaxPooling1D", "pool", strides=[2], pool_size=[2], padding="valid",
         data_format="channels_last"),
    _tfk("SpatialDropout1D", "sdrop", rate=0.2, noise_shape=None, seed=None),
    _tfk("ReLU", "relu", max_value=6.0, negative_slope=0.0, threshold=0.0),
    _tfk("Permute", "perm", dims=[2, 1]),
    _tfk("Flatten", "flat", data_format="channels_last"),
    _tfk("RepeatVector", "rep", n=2),
    _tfk("LSTM", "lstm", units=3, return_sequences=True),
    _tfk("GlobalAveragePooling1D", "gap", data_format="channels_last", keepdims=False),
]


def test_tf_keras2_sequential_config_loads_and_runs_like_the_api_model():
    cfg = {"class_name": "Sequential", "keras_version": "2.15.0", "backend": "tensorflow",
           "config": {"name": "tfk", "layers": [
               {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 8, 2],
                                                       "dtype": "float32", "name": "in"}}]
               + TFK_LAYERS}}
    model = gpulstm.model_from_json(json.dumps(cfg))
    assert model.output_shape == (None, 3)
    assert model.get_layer("leaky").negative_slope == pytest.approx(0.3)
    assert model.get_layer("bn").axis == 2
    api = gpulstm.Sequential([
        gpulstm.Input((8, 2)), X.Conv1D(4, 3, padding="same", activation="relu"),
        X.BatchNormalization(), X.LeakyReLU(0.3), X.MaxPooling1D(2), X.SpatialDropout1D(0.2),
        X.ReLU(max_value=6.0), X.Permute((2, 1)), X.Flatten(), X.RepeatVector(2),
        gpulstm.LSTM(3, return_sequences=True), X.GlobalAveragePooling1D()])
    ws = [rng.uniform(0.2, 1.0, w.shape).astype(np.float32) for w in api.get_weights()]
    api.set_weights(ws)
    model.set_weights(ws)
    x = _x(3, 8, 2)
    np.testing.assert_array_equal(model.predict(x), api.predict(x))


def test_attention_eager_scores_causal_and_masks():
    q, v = _x(2, 4, 3), _x(2, 5, 3)
    layer = X.Attention()
    out, w = layer([q, v], return_attention_scores=True, use_causal_mask=True)
    assert out.shape == (2, 4, 3) and w.shape == (2, 4, 5)
    assert np.all(np.triu(w[0], 1) < 1e-6) and np.allclose(w.sum(-1), 1)
    ref = np.exp(q @ v.transpose(0, 2, 1))
    ref = np.where(np.tri(4, 5, dtype=bool), ref, 0)
    np.testing.assert_allclose(out, (ref / ref.sum(-1, keepdims=True)) @ v, rtol=1e-5)
    qm, vm = np.array([[1, 1, 0, 1]] * 2, bool), np.array([[1, 0, 1, 1, 1]] * 2, bool)
    out, w = layer([q, v], mask=[qm, vm], return_attention_scores=True)
    assert np.all(w[..., 1] < 1e-6) and np.all(out[:, 2] == 0)
    assert layer.compute_mask([q, v], [qm, vm]) is qm
    assert X.Dot(axes=2)([q, v]).shape == (2, 4, 5)
    assert X.AdditiveAttention()([q, v]).shape == (2, 4, 3)


def test_tf_keras2_attention_causal_flag_means_use_causal_mask():
    cfg = _tfk("Attention", "att", use_scale=False, score_mode="dot", dropout=0.0, causal=True)
    layer = deserialize_layer(cfg, keras_version="2.15.0")
    q, v = _x(2, 4, 3), _x(2, 4, 3)
    np.testing.assert_array_equal(layer([q, v]), X.Attention()([q, v], use_causal_mask=True))
    assert layer.get_config()["causal"] is True and "causal" not in X.Attention().get_config()
    leaky = deserialize_layer(_tfk("LeakyReLU", "l", alpha=0.1))
    assert leaky.get_config()["negative_slope"] == pytest.approx(0.1)


def test_merge_masks_keras3_or_and_tf_keras2_and():
    a, b = _x(2, 3, 2), _x(2, 3, 2)
    ma, mb = np.array([[1, 1, 0]] * 2, bool), np.array([[1, 0, 0]] * 2, bool)
    k3 = X.Maximum()
    np.testing.assert_array_equal(k3.compute_mask([a, b], [ma, mb]), ma | mb)
    assert k3.compute_mask([a, b], [ma, None]) is None
    # Keras 3: a masked entry does not take part in the maximum
    np.testing.assert_array_equal(k3([a, b], mask=[ma, mb])[:, 1], a[:, 1])
    k2 = deserialize_layer(_tfk("Maximum", "m"), keras_version="2.15.0")
    np.testing.assert_array_equal(k2.compute_mask([a, b], [ma, mb]), ma & mb)
    np.testing.assert_array_equal(k2.compute_mask([a, b], [ma, None]), ma)
    np.testing.assert_array_equal(k2([a, b], mask=[ma, mb]), np.maximum(a, b))
    add2 = deserialize_layer(_tfk("Add", "a"), keras_version="2.15.0")
    np.testing.assert_array_equal(add2.compute_mask([a, b], [None, mb]), mb)
    cat2 = deserialize_layer(_tfk("Concatenate", "c", axis=-1), keras_version="2.15.0")
    a3, b3 = _x(2, 3, 2), _x(2, 3, 2)
    m_all = np.ones((2, 3, 4), bool)
    m_all[0, 0, 3] = False  # one feature of one step masked: all() masks the step
    np.testing.assert_array_equal(cat2.compute_mask([a3, b3], [m_all[..., :2], m_all[..., 2:]]),
                                  m_all.all(-1))
    np.testing.assert_array_equal(gpulstm.Concatenate().compute_mask(
        [a3, b3], [m_all[..., :2], m_all[..., 2:]]), m_all.any(-1))


def test_a_file_declaring_a_huge_convolution_is_refused_before_building(tmp_path):
    """A small .keras whose config claims a 10^10-weight Conv2D: refused from the config
    (gpulstm.io.expected's floor count), no weight is allocated."""
    import os
    import time
    import zipfile

    from gpulstm.io import ModelFileError

    src = os.path.join(os.path.dirname(__file__), "fixtures_layers", "crnn_ocr.keras")
    path = tmp_path / "huge_conv.keras"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(path, "w") as zout:
        for n in zin.namelist():
            data = zin.read(n)
            if n == "config.json":
                cfg = json.loads(data)
                conv = next(lyr for lyr in cfg["config"]["layers"] if lyr["class_name"] == "Conv2D")
                conv["config"].update(filters=100_000, kernel_size=[300, 300])
                data = json.dumps(cfg)
            zout.writestr(n, data)
    t0 = time.perf_counter()
    with pytest.raises(ModelFileError, match=r"declares at least 9000000\d\d\d parameters"):
        gpulstm.load_model(path)
    assert time.perf_counter() - t0 < 2.0


def test_gpulstm_exports_every_layer_of_this_issue():
    assert sorted(X.__all__) == sorted(gpulstm._EXTRA)
    for name in X.__all__:
        assert getattr(gpulstm, name) is getattr(X, name)
    with pytest.raises(AttributeError):
        gpulstm.NoSuchLayer  # noqa: B018
