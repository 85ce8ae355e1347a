"""Dense, Embedding, Masking, Dropout, Input and merge layers against float64 NumPy."""
import numpy as np
import pytest

import gpulstm
from gpulstm import Add, Concatenate, Dense, Dropout, Embedding, Input, Masking
from gpulstm.utils import to_categorical
from tests import naive

rng = np.random.default_rng(7)


def tol(ref):
    return 1e-5 * max(1.0, float(np.max(np.abs(ref))))


@pytest.mark.parametrize("activation", ["linear", "relu", "tanh", "sigmoid", "gelu", "selu",
                                        "softplus", "hard_sigmoid", "silu", None])
@pytest.mark.parametrize("use_bias", [True, False])
def test_dense_matches_float64(activation, use_bias):
    layer = Dense(5, activation=activation, use_bias=use_bias)
    x = rng.normal(size=(3, 4, 6)).astype("float32")
    y = layer(x)
    w = layer.get_weights()
    ref = naive.dense(x, w[0], w[1] if use_bias else None, activation or "linear")
    assert y.shape == (3, 4, 5) and y.dtype == np.float32
    assert np.max(np.abs(y - ref)) <= tol(ref)
    assert layer.count_params() == 6 * 5 + 5 * use_bias


def test_dense_hard_sigmoid_follows_keras_version():
    x = np.full((1, 1), 2.0, "float32")
    k2 = Dense(1, activation="hard_sigmoid", kernel_initializer="ones", keras_version="2.15")
    k3 = Dense(1, activation="hard_sigmoid", kernel_initializer="ones")
    assert k2(x)[0, 0] == pytest.approx(0.9)          # clip(0.2 x + 0.5)
    assert k3(x)[0, 0] == pytest.approx(2 / 6 + 0.5)  # clip(x / 6 + 0.5)


def test_dense_softmax_rows_sum_to_one():
    y = Dense(4, activation="softmax")(rng.normal(size=(5, 3)).astype("float32"))
    np.testing.assert_allclose(y.sum(-1), 1.0, rtol=1e-6)


def test_dense_rejects_bad_units_and_activation():
    with pytest.raises(ValueError, match="units"):
        Dense(0)
    with pytest.raises(ValueError, match="Unknown `activation`"):
        Dense(2, activation="nope")


def test_embedding_lookup_and_mask():
    layer = Embedding(6, 3, mask_zero=True)
    ids = np.array([[1, 0, 5], [0, 0, 2]])
    y = layer(ids)
    emb = layer.get_weights()[0]
    ref, mask = naive.embedding(ids, emb, mask_zero=True)
    np.testing.assert_array_equal(y, ref.astype("float32"))
    np.testing.assert_array_equal(layer.compute_mask(ids), mask)
    assert Embedding(6, 3).compute_mask(ids) is None
    with pytest.raises(ValueError, match=r"token ids in \[0, 6\)"):
        layer(np.array([[6]]))


def test_masking_zeroes_and_masks():
    x = rng.normal(size=(2, 4, 3)).astype("float32")
    x[0, 1] = 7.0
    layer = Masking(mask_value=7.0)
    y = layer(x)
    assert np.all(y[0, 1] == 0) and np.array_equal(y[1], x[1])
    np.testing.assert_array_equal(layer.compute_mask(x), [[1, 0, 1, 1], [1, 1, 1, 1]])


def test_dropout_identity_at_inference_and_scaled_in_training():
    x = np.ones((200, 50), "float32")
    layer = Dropout(0.5, seed=1)
    assert np.array_equal(layer(x), x)
    y = layer(x, training=True)
    assert set(np.unique(y)) <= {0.0, 2.0}
    assert 0.4 < np.mean(y == 0) < 0.6
    with pytest.raises(ValueError, match="rate"):
        Dropout(1.5)


def test_add_and_concatenate_values_and_masks():
    a, b = rng.normal(size=(2, 3, 4)), rng.normal(size=(2, 3, 2))
    np.testing.assert_allclose(Add()([a, a]), 2 * a)
    np.testing.assert_allclose(Concatenate()([a, b]), np.concatenate([a, b], -1))
    m1 = np.array([[1, 0, 1], [0, 0, 1]], bool)
    m2 = np.array([[0, 0, 1], [1, 0, 1]], bool)
    # Keras 3: Add ORs masks, none if any input has none; Concatenate fills ones.
    np.testing.assert_array_equal(Add().compute_mask([a, a], [m1, m2]), m1 | m2)
    assert Add().compute_mask([a, a], [m1, None]) is None
    np.testing.assert_array_equal(Concatenate().compute_mask([a, b], [m1, None]),
                                  np.ones((2, 3), bool))
    np.testing.assert_array_equal(Concatenate().compute_mask([a, b], [m1, m2]), m1 | m2)


def test_merge_shape_mismatch_names_both_layers():
    x1 = Dense(4, name="left")(Input((3,)))
    x2 = Dense(5, name="right")(Input((3,)))
    with pytest.raises(ValueError, match="'left'.*'right'"):
        gpulstm.add([x1, x2])


def test_input_layer_shapes_and_errors():
    t = Input(shape=(10, 3), batch_size=4)
    assert t.shape == (4, 10, 3)
    assert Input(batch_shape=(None, 7), dtype="int32").dtype == "int32"
    with pytest.raises(ValueError, match="shape"):
        Input()
    with pytest.raises(TypeError, match="no values"):
        np.asarray(t)


def test_to_categorical():
    y = to_categorical([[1], [0], [2]])
    np.testing.assert_array_equal(y, np.eye(3, dtype="float32")[[1, 0, 2]])
    assert to_categorical(np.array([[0, 3]]), num_classes=5).shape == (1, 2, 5)
    with pytest.raises(ValueError, match="out of range"):
        to_categorical([4], num_classes=3)
