"""Masks next to ``initial_state``, and weight orders next to frozen layers, per dialect.

Keras 3 fills a layer's ``mask`` only when ``call`` gets one tensor argument, so an
LSTM (or Bidirectional) called with ``initial_state=`` runs unmasked there, while its
outputs still carry the input's mask on; tf_keras hands it the mask.

Frozen layers (``trainable=False``) change where Keras lists weights: tf_keras's
``get_weights`` puts a trainable Bidirectional's frozen direction last, and legacy
``.h5`` files (both Keras) store each top-level layer's trainable weights first.

Ground truth: tests/fixtures_io/state_*.{k3,tfk}.npz and frozen.{k3,tfk}.* written by
Keras 3.15 and tf_keras 2.21 (``python scripts/make_io_fixtures.py state frozen``):
the JSON, the weights, the inputs, Keras's predictions and the model files.
"""
import os

import numpy as np
import pytest

import gpulstm.io as gio
from gpulstm import Bidirectional, Dense, Input, LSTM, Masking, Model, model_from_json

FIX = os.path.join(os.path.dirname(__file__), "fixtures_io")
NAMES = ("state_encdec", "state_emb", "state_bidir")


def _npz(name, tag):
    z = np.load(os.path.join(FIX, f"{name}.{tag}.npz"))
    pick = [[z[k] for k in sorted(z.files) if k.startswith(p)] for p in ("w_", "y_")]
    return str(z["config_json"]), z["x_0"], *pick


def _close(outs, refs):
    outs = outs if isinstance(outs, list) else [outs]
    assert len(outs) == len(refs)
    for a, r in zip(outs, refs):
        assert a.shape == r.shape
        np.testing.assert_allclose(a, r, atol=1e-5, rtol=0)


@pytest.mark.parametrize("tag", ["k3", "tfk"])
@pytest.mark.parametrize("name", NAMES)
def test_keras_json_with_initial_state_reproduces_keras(name, tag):
    cfg, x, ws, ys = _npz(name, tag)
    model = model_from_json(cfg)
    model.set_weights(ws)
    _close(model.predict(x, verbose=0), ys)


def _encdec(bidirectional):
    inp = Input((6, 3), name="x")
    e = Masking(0.0, name="mask0")(inp)
    if bidirectional:
        _, hf, cf, hb, cb = Bidirectional(LSTM(4, return_state=True), name="bienc")(e)
        d = Bidirectional(LSTM(4, return_sequences=True), name="bidec")(
            e, initial_state=[hf, cf, hb, cb])
    else:
        _, h, c = LSTM(4, return_state=True, name="enc")(e)
        d = LSTM(4, return_sequences=True, name="dec")(e, initial_state=[h, c])
    return Model(inp, [d, LSTM(3, name="after")(d)])


@pytest.mark.parametrize("name", ["state_encdec", "state_bidir"])
def test_python_built_models_follow_keras3(name):
    _, x, ws, ys = _npz(name, "k3")
    model = _encdec(name == "state_bidir")
    model.set_weights(ws)
    _close(model.predict(x, verbose=0), ys)
    # its JSON keeps the Keras 3 rule when read back
    again = model_from_json(model.to_json())
    again.set_weights(ws)
    _close(again.predict(x, verbose=0), ys)


def test_dialects_differ_only_in_the_state_fed_lstm():
    # The tf_keras JSON read as Keras 3: the decoder loses its mask, the LSTM after it
    # (fed the decoder's output, which carries the mask on) keeps it.
    cfg, x, ws, ys = _npz("state_encdec", "tfk")
    as_k3 = model_from_json(cfg, keras_version="3.15.1")
    as_k3.set_weights(ws)
    dec, after = as_k3.predict(x, verbose=0)
    assert not np.allclose(dec, ys[0], atol=1e-3)
    # masked steps: Keras 3 computes them (no mask), tf_keras repeats the last output
    assert not np.allclose(dec[0, 4], dec[0, 3])
    np.testing.assert_allclose(ys[0][0, 4], ys[0][0, 3], atol=1e-6)
    assert after.shape == ys[1].shape


# -- frozen layers and weight orders -------------------------------------------------------
def _frozen(tag):
    z = np.load(os.path.join(FIX, f"frozen.{tag}.npz"))
    ws = [z[k] for k in sorted(z.files) if k.startswith("w_")]
    return str(z["config_json"]), z["x_0"], ws, z["y_0"], int(z["trainable_params"])


def _same_weights(model, ws):
    got = model.get_weights()
    assert len(got) == len(ws)
    for a, b in zip(got, ws):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("tag", ["k3", "tfk"])
def test_frozen_layers_get_weights_order_and_summary(tag):
    cfg, x, ws, y, trainable = _frozen(tag)
    model = model_from_json(cfg)
    model.set_weights(ws)
    _same_weights(model, ws)
    _close(model.predict(x, verbose=0), [y])
    lines = []
    model.summary(print_fn=lines.append, style="tf_keras")
    assert f"Trainable params: {trainable:,}" in lines
    lines = []
    model.summary(print_fn=lines.append, style="keras3")
    assert f" Trainable params: {trainable:,} (" in lines[0]
    bi = model.get_layer("bi")  # forward frozen: tf_keras lists the backward layer first
    n_fwd_first = [w.ndim for w in bi.get_weights()] == [2, 2, 1, 2, 2]
    assert n_fwd_first == (tag == "k3")


@pytest.mark.parametrize("tag", ["k3", "tfk"])
@pytest.mark.parametrize("ext", [".keras", ".h5", "weights"])
def test_frozen_layers_model_files(tag, ext):
    # legacy .h5 groups hold trainable weights first; .keras trees go layer by layer
    cfg, x, ws, y, _ = _frozen(tag)
    if ext == "weights":
        model = model_from_json(cfg)
        model.load_weights(os.path.join(
            FIX, f"frozen.{tag}" + (".weights.h5" if tag == "k3" else ".weights-only.h5")))
    else:
        model = gio.load_model(os.path.join(FIX, f"frozen.{tag}{ext}"))
    _same_weights(model, ws)
    _close(model.predict(x, verbose=0), [y])


def _bidi(keras_version=None):
    fw = LSTM(3, return_sequences=True, trainable=False)
    bw = LSTM(3, return_sequences=True, go_backwards=True, use_bias=False)
    inp = Input((6, 2))
    bi = Bidirectional(fw, backward_layer=bw, keras_version=keras_version)
    return Model(inp, Dense(1)(bi(inp))), bi


def test_bidirectional_frozen_direction_order_per_dialect():
    model, bi = _bidi()
    natural = bi.forward_layer.get_weights() + bi.backward_layer.get_weights()
    assert [w.shape for w in bi.get_weights()] == [w.shape for w in natural]
    tf_model, tf_bi = _bidi(keras_version="2.21.0")
    assert [w.shape for w in tf_bi.get_weights()] == [w.shape for w in natural[3:] + natural[:3]]
    tf_model.set_weights(model.get_weights()[3:5] + model.get_weights()[:3]
                         + model.get_weights()[5:])
    for a, b in zip(tf_bi.forward_layer.get_weights(), bi.forward_layer.get_weights()):
        assert np.array_equal(a, b)
    x = np.random.default_rng(0).standard_normal((2, 6, 2)).astype(np.float32)
    np.testing.assert_array_equal(tf_model.predict(x, verbose=0), model.predict(x, verbose=0))
    with pytest.raises(ValueError, match="expected 5 weights"):
        bi.set_weights(natural[:4])
