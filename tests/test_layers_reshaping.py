"""gpulstm.layers.reshaping.Reshape: Keras's Reshape (used by from_torch's state outputs)."""
import numpy as np
import pytest

import gpulstm
from gpulstm.layers.reshaping import Reshape
from gpulstm.models.serialization import deserialize_layer, serialize_layer


def test_reshape_numbers_shapes_and_minus_one():
    x = np.arange(24, dtype=np.float32).reshape(2, 12)
    np.testing.assert_array_equal(Reshape((3, 4))(x), x.reshape(2, 3, 4))
    np.testing.assert_array_equal(Reshape((-1, 2))(x), x.reshape(2, 6, 2))
    assert Reshape((-1, 2)).compute_output_shape((None, 12)) == (None, 6, 2)
    assert Reshape((-1, 2)).compute_output_shape((None, None)) == (None, None, 2)


def test_reshape_refuses_bad_targets_and_sizes():
    with pytest.raises(ValueError, match="target_shape"):
        Reshape((-1, -1))
    with pytest.raises(ValueError, match="target_shape"):
        Reshape("ab")
    inputs = gpulstm.Input(shape=(5,))
    with pytest.raises(ValueError, match="total size"):
        Reshape((2, 3))(inputs)


def test_reshape_in_a_model_round_trips_through_json():
    inputs = gpulstm.Input(shape=(6,))
    model = gpulstm.Model(inputs, Reshape((3, 2), name="r")(gpulstm.Dense(6)(inputs)))
    assert model.output_shape == (None, 3, 2)
    again = gpulstm.model_from_json(model.to_json())
    again.set_weights(model.get_weights())
    x = np.random.default_rng(0).standard_normal((5, 6)).astype(np.float32)
    # batch sizes differ, so BLAS may round the Dense matmul differently
    np.testing.assert_allclose(again.predict(x, batch_size=2), model.predict(x), atol=1e-6)
    cfg = serialize_layer(model.get_layer("r"))
    assert cfg["class_name"] == "Reshape" and cfg["config"]["target_shape"] == [3, 2]
    assert deserialize_layer(cfg).target_shape == (3, 2)
