"""Sub-models the Keras way: model.input/output, layer.input/output, Model(inputs, outputs)
over an existing model's tensors (tests/fixtures_submodel, scripts/make_submodel_fixtures.py)."""
import json
import os

import numpy as np
import pytest

import gpulstm
from gpulstm import Add, Dense, Input, LSTM, Model, Sequential

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures_submodel")


def _close(out, ref):
    assert np.max(np.abs(out - ref)) <= 1e-5 * max(1.0, float(np.max(np.abs(ref))))


@pytest.fixture(scope="module")
def ocr():
    return dict(np.load(os.path.join(HERE, "ocr.npz"), allow_pickle=False))


@pytest.mark.parametrize("fname", ["ocr.keras", "ocr.h5"])
def test_ocr_prediction_submodel_matches_keras(ocr, fname):
    meta = json.loads(str(ocr["meta_json"]))
    model = gpulstm.load_model(os.path.join(HERE, fname))
    assert isinstance(model.input, list) and meta["input_is_list"]
    assert [t._keras_history[0].name for t in model.inputs] == meta["input_names"]
    _close(model.predict([ocr["image"], ocr["label"]], verbose=0), ocr["y"])
    # as the OCR example builds it; Keras 3 spells it model.inputs[0] too
    sub = Model(model.input[0], model.get_layer("dense2").output)
    assert sub.input is model.inputs[0]
    assert [layer.name for layer in sub.layers] == meta["sub_layers"]
    assert sub.count_params() == meta["sub_count_params"]
    _close(sub.predict(ocr["image"], verbose=0), ocr["y_sub"])
    # the sub-model shares the model's layers: weights set on one are seen by the other
    lstm = sub.get_layer("bidirectional")
    assert lstm is model.get_layer("bidirectional")
    w = sub.get_weights()
    sub.set_weights([v * 0.5 for v in w])
    _close(model.get_layer("dense2").get_weights()[0], w[-2] * 0.5)
    model.set_weights(model.get_weights())  # and the other way round
    ref = sub.predict(ocr["image"], verbose=0)
    _close(model.predict([ocr["image"], ocr["label"]], verbose=0)[..., :-1], ref)
    # the sub-model's JSON rebuilds the sub-model alone
    again = gpulstm.model_from_json(sub.to_json())
    assert [layer.name for layer in again.layers] == meta["sub_layers"]


def test_tf_keras_ocr_prediction_submodel():
    ref = np.load(os.path.join(os.path.dirname(HERE), "fixtures_keras2", "ocr.tfk.npz"),
                  allow_pickle=False)
    model = gpulstm.load_model(os.path.join(os.path.dirname(HERE), "fixtures_keras2",
                                            "ocr.tfk.h5"))
    _close(model.predict([ref["image"], ref["label"]], verbose=0), ref["y"])
    sub = Model(model.input[0], model.get_layer("dense2").output)
    assert [layer.name for layer in sub.layers] == [str(n) for n in ref["sub_layers"]]
    assert sub.input is model.inputs[0]  # tf_keras: a list of one gives its tensor
    assert gpulstm.model_from_json(sub.to_json()).output.shape == (None, 8, 5)
    _close(sub.predict(ref["image"], verbose=0), ref["y_sub"])


def _two_input_model():
    a, b = Input((4, 3), name="image"), Input((2,), name="label")
    x = LSTM(5, name="l")(a)
    d = Dense(2, name="dense2")(x)
    return a, b, x, d, Add(name="add")([d, b])


def test_model_and_layer_input_output_structures():
    a, b, x, d, o = _two_input_model()
    m = Model([a, b], o)
    assert m.input == [a, b] and m.inputs == [a, b]
    assert m.output is o and m.outputs == [o]
    assert Model([a], [d]).output == [d]  # a list of one stays a list (Keras 3)
    lstm = m.get_layer("l")
    assert lstm.input is a and lstm.output is x
    assert m.get_layer("add").input == [d, b]
    assert m.get_layer("image").output is a and m.get_layer("image").input == []
    with pytest.raises(AttributeError, match="has never been called"):
        Dense(3).output
    # a layer called twice: .output is its first call's (Keras 3), get_output_at the others
    shared = Dense(3, name="shared")
    y1, y2 = shared(x), shared(x)
    assert shared.output is y1 and shared.get_output_at(1) is y2
    assert shared.get_input_at(1) is x
    with pytest.raises(ValueError, match="only 2 inbound nodes"):
        shared.get_output_at(2)


def test_dict_inputs_keep_their_structure():
    a, b, _, _, o = _two_input_model()
    m = Model({"label": b, "image": a}, o)
    assert set(m.input) == {"image", "label"} and m.input["image"] is a
    assert m.inputs == [a, b]  # flat, by sorted key (keras.tree.flatten's order)
    rng = np.random.default_rng(0)
    x, lab = rng.random((2, 4, 3), dtype=np.float32), rng.random((2, 2), dtype=np.float32)
    y = m.predict({"image": x, "label": lab}, verbose=0)
    again = gpulstm.model_from_json(m.to_json())
    assert set(again.input) == {"image", "label"}
    again.set_weights(m.get_weights())
    _close(again.predict({"image": x, "label": lab}, verbose=0), y)
    sub = Model(m.input["image"], m.get_layer("l").output)
    assert sub.predict(x, verbose=0).shape == (2, 5)


def test_sequential_input_output_once_built():
    s = Sequential([Dense(3)])
    with pytest.raises(AttributeError, match="never been called"):
        s.input
    s.predict(np.zeros((1, 4), np.float32), verbose=0)
    assert s.input is s.inputs[0] and s.input.shape == (None, 4)
    assert s.output is s.layers[0].output
    s2 = Sequential([Input((4,)), Dense(3, name="a"), Dense(2, name="b")])
    head = Model(s2.input, s2.get_layer("a").output)
    assert head.output_shape == (None, 3)


def test_keras3_skip_mismatch_keeps_the_layers_that_do_not_fit(ocr):
    model = gpulstm.load_model(os.path.join(HERE, "ocr.keras"))
    cfg = json.loads(model.to_json())
    for layer in cfg["config"]["layers"]:
        if layer["name"] == "dense2":
            layer["config"]["units"] = 4
    other = gpulstm.model_from_json(json.dumps(cfg))
    other.get_layer("dense2").set_weights([ocr["skip_dense2_0"], ocr["skip_dense2_1"]])
    with pytest.raises(ValueError):  # without skip_mismatch the file does not fit
        other.load_weights(os.path.join(HERE, "ocr.keras"))
    with pytest.warns(UserWarning, match=r"A total of 1 objects could not be loaded.*dense2"):
        other.load_weights(os.path.join(HERE, "ocr.keras"), skip_mismatch=True)
    _close(other.predict([ocr["image"], ocr["label"]], verbose=0), ocr["y_skip"])
    with pytest.raises(ValueError, match="`by_name` only supports loading legacy"):
        other.load_weights(os.path.join(HERE, "ocr.keras"), by_name=True)
