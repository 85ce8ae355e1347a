"""load_weights(by_name, skip_mismatch) with Keras 2's semantics, and the file's keras_version
for the layers it fills (tests/fixtures_keras2, scripts/make_keras2_fixtures.py: the
expected outputs are tf_keras 2.21's after the same load_weights call)."""
import os
import re
import warnings

import numpy as np
import pytest

import gpulstm
from gpulstm import GRU, LSTM, Bidirectional, Dense, Input, Model, Sequential

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures_keras2")
FILE = os.path.join(HERE, "encoder.h5")


@pytest.fixture(scope="module")
def ref():
    return dict(np.load(os.path.join(HERE, "encoder.npz"), allow_pickle=False))


def _close(out, want):
    assert np.max(np.abs(out - want)) <= 1e-5 * max(1.0, float(np.max(np.abs(want))))


def _trunk(inp, keras_version=None):
    x = LSTM(4, name="encoder", recurrent_activation="hard_sigmoid", return_sequences=True,
             keras_version=keras_version)(inp)
    return LSTM(3, name="summary", recurrent_activation="hard_sigmoid",
                keras_version=keras_version)(x)


def _model_a(keras_version=None):
    inp = Input((5, 3))
    return Model(inp, Dense(2, name="extra")(Dense(3, name="head")(_trunk(inp, keras_version))))


def _model_b(ref, head_bias=True):
    inp = Input((5, 3))
    mid = Dense(6, name="mid")(_trunk(inp))
    out = Dense(1, name="new_out")(Dense(3, name="head", use_bias=head_bias)(mid))
    model = Model(inp, out)
    if head_bias:
        model.set_weights([ref[f"b_init_{i}"] for i in range(len(model.get_weights()))])
    return model


def test_topological_load_takes_the_files_hard_sigmoid(ref):
    model = _model_a()
    model.load_weights(FILE)
    assert model.get_layer("encoder").keras_version == "2.21.0"
    _close(model.predict(ref["x"], verbose=0), ref["y_a"])


def test_a_layer_built_for_keras3_keeps_its_formula_with_a_warning(ref):
    model = _model_a(keras_version="3.0")
    with pytest.warns(UserWarning) as got:
        model.load_weights(FILE)
    assert [w.filename for w in got] == [__file__] * 2  # one per layer, at the caller's line
    assert re.search(r"Layer 'encoder' uses hard_sigmoid as Keras 3\.0.*written by Keras "
                     r"2\.21\.0.*keeps its own formula", str(got[0].message))
    assert model.get_layer("encoder").keras_version == "3.0"
    y = model.predict(ref["x"], verbose=0)
    assert np.max(np.abs(y - ref["y_a"])) > 1e-3  # the two formulas differ on this input


def test_by_name_skip_mismatch_matches_tf_keras(ref):
    model = _model_b(ref)
    with pytest.warns(UserWarning, match=r"Skipping loading weights for layer #3 \(named head\) "
                                         r"due to mismatch in shape.*expects shape \(6, 3\)"):
        model.load_weights(FILE, by_name=True, skip_mismatch=True)
    _close(model.predict(ref["x"], verbose=0), ref["y_b"])
    # the layers the file lacks keep their weights; head took its bias alone (as tf_keras)
    np.testing.assert_array_equal(model.get_layer("mid").get_weights()[0], ref["b_init_6"])
    np.testing.assert_array_equal(model.get_layer("head").get_weights()[0], ref["b_init_8"])
    assert not np.array_equal(model.get_layer("head").get_weights()[1], ref["b_init_9"])


def test_by_name_into_a_model_from_tf_keras_json(ref):
    model = gpulstm.model_from_json(str(ref["b_json"]))
    model.set_weights([ref[f"b_init_{i}"] for i in range(len(model.get_weights()))])
    with pytest.warns(UserWarning, match="named head"):
        model.load_weights(FILE, by_name=True, skip_mismatch=True)
    _close(model.predict(ref["x"], verbose=0), ref["y_b"])


def test_by_name_mismatch_is_an_error_and_changes_nothing(ref):
    model = _model_b(ref)
    before = model.get_weights()
    with pytest.raises(ValueError, match=r"Shape mismatch in layer #3 \(named head\)"):
        model.load_weights(FILE, by_name=True)
    for a, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(a, b)
    assert model.get_layer("encoder").keras_version is None


def test_by_name_weight_count_mismatch_skips_the_layer(ref):
    model = _model_b(ref, head_bias=False)
    with pytest.warns(UserWarning, match=r"named head\) due to mismatch in number of weights"):
        model.load_weights(FILE, by_name=True, skip_mismatch=True)
    with pytest.raises(ValueError, match=r"Weight count mismatch for layer #3 \(named head\)"):
        model.load_weights(FILE, by_name=True)


def test_argument_combinations_keras_refuses(tmp_path):
    model = _model_a()
    with pytest.raises(ValueError, match="skip_mismatch can only be set to True when by_name"):
        model.load_weights(FILE, skip_mismatch=True)
    k3 = tmp_path / "m.weights.h5"
    k3.write_bytes(b"\x89HDF\r\n\x1a\n")
    with pytest.raises(ValueError, match="`by_name` only supports loading legacy '.h5'"):
        model.load_weights(str(k3), by_name=True)
    with pytest.raises(FileNotFoundError):
        model.load_weights(str(tmp_path / "missing.h5"), by_name=True)


def test_by_name_converts_cudnn_weights():
    ref = np.load(os.path.join(HERE, "cudnn_k215.npz"), allow_pickle=False)
    model = Sequential([Input((5, 3)),
                        Bidirectional(LSTM(4, return_sequences=True), name="bidirectional_1"),
                        GRU(3, name="cu_dnngru_1"), Dense(2, name="dense_1")])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.load_weights(os.path.join(HERE, "cudnn_k215.weights-only.h5"), by_name=True)
    _close(model.predict(ref["x"], verbose=0), ref["y"])


def test_keras3_weights_h5_with_skip_mismatch_loads_what_fits():
    fix = os.path.join(os.path.dirname(HERE), "fixtures_io")
    model = gpulstm.load_model(os.path.join(fix, "seq_emb.k3.keras"))
    want = model.get_weights()
    model.set_weights([np.zeros_like(w) for w in want])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.load_weights(os.path.join(fix, "seq_emb.k3.weights.h5"), skip_mismatch=True)
    for a, b in zip(model.get_weights(), want):
        np.testing.assert_array_equal(a, b)


def _k22_model(keras_version=None):
    return Sequential([Input((5, 3)),
                       LSTM(5, recurrent_activation="hard_sigmoid", return_sequences=True,
                            keras_version=keras_version),
                       LSTM(3, recurrent_activation="hard_sigmoid", keras_version=keras_version)])


def test_keras22_weights_file_into_hard_sigmoid_lstms():
    ref = np.load(os.path.join(HERE, "lstm_k22.npz"), allow_pickle=False)
    path = os.path.join(HERE, "lstm_k22.weights-only.h5")
    model = _k22_model()
    model.load_weights(path)
    assert [layer.keras_version for layer in model.layers] == ["2.2.0", "2.2.0"]
    _close(model.predict(ref["x"], verbose=0), ref["y"])
    again = gpulstm.model_from_json(model.to_json())  # the JSON keeps Keras 2's formula
    again.set_weights(model.get_weights())
    _close(again.predict(ref["x"], verbose=0), ref["y"])
    keras3 = _k22_model(keras_version="3.15.1")
    with pytest.warns(UserWarning, match=r"written by Keras 2\.2\.0, whose hard_sigmoid is "
                                         r"clip\(0\.2 \* x \+ 0\.5, 0, 1\)"):
        keras3.load_weights(path)
