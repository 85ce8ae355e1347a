"""Custom layers written on gpulstm.Layer, loaded from Keras-saved files (issue 17).

Fixtures: scripts/make_custom_fixtures.py (Keras 3 on JAX: ``k3_*``; tf_keras 2.21: ``tfk_*``).
"""
import json
import os
import zipfile

import numpy as np
import pytest

import gpulstm
from gpulstm import _custom_objects
from gpulstm.io import UnsupportedModelError, read_model_file, summary_text
from gpulstm.models import model_from_json

FIX = os.path.join(os.path.dirname(__file__), "fixtures_custom")


def _path(name):
    return os.path.join(FIX, name)


def _close(out, ref):
    ref = np.asarray(ref)
    assert out.shape == ref.shape
    assert np.max(np.abs(out - ref)) <= 1e-5 * max(1.0, float(np.max(np.abs(ref))))


class ChannelGain(gpulstm.Layer):
    """``(x + offset) * gain``: a frozen weight created before a trainable one."""

    def __init__(self, init_gain=1.0, **kwargs):
        super().__init__(**kwargs)
        self.init_gain = init_gain

    def build(self, input_shape):
        c = input_shape[-1]
        self.offset = self.add_weight(name="offset", shape=(c,), initializer="zeros",
                                      trainable=False)
        self.gain = self.add_weight(name="gain", shape=(c,), initializer="ones")
        super().build(input_shape)

    def call(self, inputs):
        return (inputs + self.offset) * self.gain

    def get_config(self):
        return {**super().get_config(), "init_gain": self.init_gain}


class ScaledDense(gpulstm.Layer):
    def __init__(self, units, scale=1.0, **kwargs):
        super().__init__(**kwargs)
        self.units, self.scale = units, scale

    def build(self, input_shape):
        self.kernel = self.add_weight(name="kernel", shape=(input_shape[-1], self.units))
        self.bias = self.add_weight(name="bias", shape=(self.units,), initializer="zeros")

    def call(self, inputs):
        return self.scale * (inputs @ self.kernel + self.bias)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "scale": self.scale}


class CTCLayer(gpulstm.Layer):
    """The OCR examples' endpoint, as they write it: no **kwargs, two call inputs."""

    def __init__(self, name=None):
        super().__init__(name=name)

    def call(self, y_true, y_pred):
        return y_pred


GAIN = {"ChannelGain": ChannelGain, "ScaledDense": ScaledDense}


@pytest.mark.parametrize("name", ["k3_gain.keras", "k3_gain.h5", "tfk_gain.keras",
                                  "tfk_gain.h5"])
def test_custom_layers_with_weights_match_keras(name):
    ref = np.load(_path(name.split(".")[0] + ".npz"), allow_pickle=False)
    model = gpulstm.load_model(_path(name), custom_objects=GAIN)
    _close(model.predict(ref["x"]), ref["y"])
    gain = model.get_layer("gain")
    assert isinstance(gain, ChannelGain) and gain.init_gain == 1.5
    # Keras's order: trainable weights first, each group in add_weight order
    for w, r in zip(gain.get_weights(), [ref["w_gain_0"], ref["w_gain_1"]]):
        np.testing.assert_array_equal(w, r)
    assert [w is v for w, v in zip(gain._weights, (gain.gain, gain.offset))] == [True, True]
    assert [len(gain.trainable_weights), len(gain.non_trainable_weights)] == [1, 1]
    scaled = model.get_layer("scaled")
    assert scaled.scale == 0.5 and scaled.count_params() == 3 * 2 + 2
    assert "Total params" in _summary(model)


def _summary(model):
    lines = []
    model.summary(print_fn=lines.append)
    return "\n".join(lines)


@pytest.mark.parametrize("name", ["k3_ctc.keras", "k3_ctc.h5", "tfk_ctc.keras",
                                  "tfk_ctc.h5"])
def test_ctc_endpoint_layer_returns_predictions(name):
    ref = np.load(_path(name.split(".")[0] + ".npz"), allow_pickle=False)
    # Keras 3 registered it as "ocr>CTCLayer"; the plain class name resolves too
    model = gpulstm.load_model(_path(name), custom_objects={"CTCLayer": CTCLayer})
    ctc = model.get_layer("ctc_loss")
    assert isinstance(ctc, CTCLayer) and ctc.trainable and ctc.get_weights() == []
    _close(model.predict([ref["image"], ref["label"]]), ref["y"])


def test_registered_names_scope_and_json_round_trip():
    with pytest.raises(UnsupportedModelError, match="CTCLayer"):
        gpulstm.load_model(_path("k3_ctc.keras"))
    with gpulstm.utils.custom_object_scope({"ocr>CTCLayer": CTCLayer}):
        model = gpulstm.load_model(_path("k3_ctc.keras"))
    # the scope is gone, and the call before left nothing behind
    with pytest.raises(UnsupportedModelError, match="custom_objects"):
        gpulstm.load_model(_path("k3_ctc.keras"))
    cfg = json.loads(model.to_json())
    entry = next(lyr for lyr in cfg["config"]["layers"] if lyr["name"] == "ctc_loss")
    assert entry["class_name"] == "CTCLayer" and entry["module"] == __name__
    again = model_from_json(model.to_json(), custom_objects={"CTCLayer": CTCLayer})
    again.set_weights(model.get_weights())
    ref = np.load(_path("k3_ctc.npz"), allow_pickle=False)
    _close(again.predict([ref["image"], ref["label"]]), ref["y"])
    # Keras 3's own config (registered name, module None) through model_from_json
    with zipfile.ZipFile(_path("k3_gain.keras")) as z:
        k3_json = z.read("config.json").decode()
    m = model_from_json(k3_json, custom_objects=GAIN)
    assert type(m.get_layer("scaled")) is ScaledDense


def test_register_keras_serializable():
    @gpulstm.utils.register_keras_serializable(package="ocr")
    class RegisteredCTC(gpulstm.Layer):
        def call(self, y_true, y_pred):
            return y_pred

    try:
        assert gpulstm.utils.get_custom_objects()["ocr>RegisteredCTC"] is RegisteredCTC
        cfg = _ctc_config("ocr>RegisteredCTC", "RegisteredCTC")
        model = model_from_json(json.dumps(cfg))
        assert type(model.get_layer("ctc_loss")) is RegisteredCTC
        # a registration wins over custom_objects, as in Keras
        model = model_from_json(json.dumps(cfg), custom_objects={"ocr>RegisteredCTC": CTCLayer})
        assert type(model.get_layer("ctc_loss")) is RegisteredCTC
    finally:
        gpulstm.utils.get_custom_objects().pop("ocr>RegisteredCTC")


def _ctc_config(registered, cls_name="CTCLayer"):
    with zipfile.ZipFile(_path("k3_ctc.keras")) as z:
        cfg = json.loads(z.read("config.json"))
    entry = next(lyr for lyr in cfg["config"]["layers"] if lyr["name"] == "ctc_loss")
    entry.update(registered_name=registered, class_name=cls_name)
    return cfg


def test_builtins_are_not_shadowed_unless_keras_allows():
    class NotAnLSTM(gpulstm.Layer):
        def call(self, inputs):
            raise AssertionError("must not run")

    # Keras 3 configs name built-ins with registered_name null: custom_objects cannot replace
    model = gpulstm.load_model(_path("k3_gain.keras"), custom_objects={**GAIN, "LSTM": NotAnLSTM})
    assert type(model.get_layer("lstm")) is gpulstm.LSTM
    # tf_keras configs have no registered_name: custom_objects come first (tf_keras's rule)
    model = gpulstm.load_model(_path("tfk_gain.h5"),
                               custom_objects={**GAIN, "Dense": ScaledDense})
    assert type(model.get_layer("lstm")) is gpulstm.LSTM


def test_error_paths_name_the_class_and_leave_nothing_behind():
    with pytest.raises(UnsupportedModelError) as e:
        gpulstm.load_model(_path("tfk_gain.h5"))
    msg = str(e.value)
    assert "Unknown layer class 'ChannelGain' (layer 'gain')" in msg
    assert "LSTM" in msg and "custom_objects={'ChannelGain': ChannelGain}" in msg

    class KerasStyle:  # not a gpulstm.Layer: a Keras class cannot run here
        pass

    with pytest.raises(UnsupportedModelError, match=r"custom_objects\['ChannelGain'\].*"
                                                   "must be a subclass of gpulstm.Layer"):
        gpulstm.load_model(_path("k3_gain.keras"), custom_objects={**GAIN,
                                                                   "ChannelGain": KerasStyle})
    with pytest.raises(TypeError, match="custom_objects"):
        gpulstm.load_model(_path("k3_gain.keras"), custom_objects=[ChannelGain])
    assert getattr(_custom_objects._local, "passed", None) is None
    assert _custom_objects._scopes() == []


@pytest.mark.parametrize("name", ["k3_deconv.keras", "k3_deconv.h5", "json"])
def test_unsupported_class_is_reported_before_weights(name):
    if name == "json":
        with zipfile.ZipFile(_path("k3_deconv.keras")) as z:
            text = z.read("config.json").decode()
        with pytest.raises(ValueError, match="Unknown layer class 'Conv2DTranspose'") as e:
            model_from_json(text)
    else:
        with pytest.raises(UnsupportedModelError, match="Unknown layer class 'Conv2DTranspose'") as e:
            gpulstm.load_model(_path(name))
        mf = read_model_file(_path(name))  # the weights are data: read, never refused
        assert sum(w.size for w in mf.weights) == 18
        text = summary_text(_path(name))
        # Keras 3 .keras configs say the class is Keras's (module keras.layers); .h5 ones cannot
        kind = "Keras layer classes gpulstm does not support" if name.endswith(".keras") \
            else "layer classes gpulstm does not have"
        assert f"Runs in gpulstm: no; {kind}" in text and "Conv2DTranspose (deconv)" in text
    assert "unexpected weights" not in str(e.value)


def test_summary_says_whether_the_model_runs():
    plain = os.path.join(os.path.dirname(__file__), "fixtures_io", "adam.k3.keras")
    assert "Runs in gpulstm: yes" in summary_text(plain)
    text = summary_text(_path("k3_ctc.keras"))
    assert "Runs in gpulstm: no; custom classes" in text and "ocr>CTCLayer (ctc_loss)" in text
    assert "command line cannot pass" in text
    text = summary_text(_path("tfk_gain.h5"))
    assert "ChannelGain (gain), ScaledDense (scaled)" in text


def test_layer_api_eager_config_and_weights():
    layer = ScaledDense(2, scale=2.0, name="sd")
    x = np.arange(6, dtype="float32").reshape(2, 3)
    y = layer(x)
    assert layer.built and y.shape == (2, 2)
    kernel = layer.kernel
    new = [np.ones((3, 2), "float32"), np.full((2,), 0.5, "float32")]
    layer.set_weights(new)
    assert layer.kernel is kernel  # filled in place: call sees the new values
    np.testing.assert_allclose(layer(x), 2.0 * (x @ new[0] + new[1]))
    with pytest.raises(ValueError, match="expected shape"):
        layer.set_weights([np.ones((4, 2)), np.ones(2)])
    np.testing.assert_array_equal(layer.get_weights()[0], new[0])  # unchanged
    cfg = layer.get_config()
    assert cfg["units"] == 2 and cfg["name"] == "sd" and cfg["trainable"] is True
    clone = ScaledDense.from_config(cfg)
    assert (clone.units, clone.scale, clone.name) == (2, 2.0, "sd")
    # a constructor without **kwargs still takes Keras's base keys
    ctc = CTCLayer.from_config({"name": "c", "trainable": False, "dtype": "float32"})
    assert (ctc.name, ctc.trainable) == ("c", False)


def test_symbolic_calls_trace_shapes_and_masks():
    image = gpulstm.Input((6, 3))
    label = gpulstm.Input((4,))
    y = gpulstm.Dense(5)(image)
    out = CTCLayer()(label, y)  # no compute_output_shape: traced
    assert out.shape == (None, 6, 5)
    assert ChannelGain().supports_masking is False

    class Keep(gpulstm.Layer):
        def call(self, inputs, mask=None):
            return inputs

        def compute_mask(self, inputs, mask=None):
            return mask

    class Plain(gpulstm.Layer):
        def call(self, inputs):
            return inputs

    assert Keep().supports_masking is True and Plain().supports_masking is False
    ids = gpulstm.Input((4,), dtype="int32")
    emb, lstm = gpulstm.Embedding(5, 3, mask_zero=True), gpulstm.LSTM(2)
    h = emb(ids)
    outs = [lstm(h), lstm(Keep()(h)), lstm(Plain()(h))]
    x = np.array([[1, 2, 0, 0], [3, 1, 2, 4]], "int32")
    direct, kept, plain = (gpulstm.Model(ids, o).predict(x) for o in outs)
    # (direct runs the LSTM on the Embedding's ids: same numbers to float32 rounding)
    np.testing.assert_allclose(kept, direct, atol=1e-6)  # the mask passes through Keep
    np.testing.assert_allclose(plain[1], direct[1], atol=1e-6)  # Plain drops it (Keras 3)
    assert not np.allclose(plain[0], direct[0])


def test_custom_activation_by_name():
    def scaled_tanh(x):
        return 2.0 * np.tanh(x)

    inp = gpulstm.Input((3,))
    model = gpulstm.Model(inp, gpulstm.Dense(2, activation=scaled_tanh)(inp))
    text = model.to_json()
    assert '"activation": "scaled_tanh"' in text
    with pytest.raises(ValueError, match="scaled_tanh"):
        model_from_json(text)
    again = model_from_json(text, custom_objects={"scaled_tanh": scaled_tanh})
    again.set_weights(model.get_weights())
    x = np.linspace(-1, 1, 6, dtype="float32").reshape(2, 3)
    np.testing.assert_allclose(again.predict(x), model.predict(x), rtol=1e-6)


@pytest.mark.parametrize("name", ["k3_gain.h5", "tfk_gain.keras"])
def test_load_weights_into_a_rebuilt_model(name):
    x = gpulstm.Input((5, 3))
    h = ChannelGain(name="gain")(gpulstm.LSTM(4, return_sequences=True)(x))
    model = gpulstm.Model(x, ScaledDense(2, scale=0.5)(gpulstm.LSTM(3)(h)))
    model.load_weights(_path(name))
    ref = np.load(_path(name.split(".")[0] + ".npz"), allow_pickle=False)
    _close(model.predict(ref["x"]), ref["y"])


@pytest.mark.parametrize("name", ["k3_ctc.keras", "tfk_ctc.h5"])
def test_ocr_prediction_submodel_of_a_custom_layer_model(name):
    """The OCR examples' inference model: ``Model(model.input[0],
    model.get_layer(<last dense>).output)`` cut out of a model whose endpoint is a custom
    CTC layer; it takes the image alone, shares the loaded weights, and gives the
    predictions Keras gave through the endpoint."""
    ref = np.load(_path(name.split(".")[0] + ".npz"), allow_pickle=False)
    model = gpulstm.load_model(_path(name), custom_objects={"CTCLayer": CTCLayer})
    pred = gpulstm.Model(model.input[0], model.get_layer("dense2").output)
    assert [lyr.name for lyr in pred.layers][-1] == "dense2"
    assert "ctc_loss" not in [lyr.name for lyr in pred.layers]
    _close(pred.predict(ref["image"]), ref["y"])
    # shared weights: a change through the sub-model is seen by the whole model
    w = pred.get_layer("dense2").get_weights()
    pred.get_layer("dense2").set_weights([a * 0 for a in w])
    assert np.all(model.predict([ref["image"], ref["label"]]) == np.float32(1 / ref["y"].shape[-1]))
