"""Write the Keras 3 GRU fixtures under tests/fixtures_gru (needs keras 3 and jax).

    KERAS_BACKEND=jax python scripts/make_gru_fixtures.py --out tests/fixtures_gru

Each case ``gru_<name>.npz`` holds a ``keras.layers.GRU`` (or ``Bidirectional(GRU)``)
built with seeded random weights and called on CPU:

==============  ==============================================================
config_json     ``layer.get_config()`` (Keras 3)
meta_json       keras_version, count_params, call arguments
w_0 .. w_n-1    ``layer.get_weights()``
x, mask, h0     the call's input, mask (or absent), initial state (or absent)
out_0 ..        what the layer returned (a stateful case: ``x`` and every
                ``out_*`` have a leading axis of calls, states kept between them)
==============  ==============================================================

Models: ``model_gru.keras`` (Embedding(mask_zero) -> GRU -> Dense) and
``model_bigru.keras`` (Input -> Bidirectional(GRU, return_sequences) -> GRU(reset_after=
False) -> Dense) and ``model_gru_encdec.keras`` (GRU return_state -> initial_state of a
go_backwards GRU -> Dense), with ``<name>.npz`` holding ``x`` (or ``x_0``, ``x_1``) and
``model.predict(x)`` as ``y``.
Tests read everything with NumPy only (``allow_pickle=False``).
"""
import argparse
import json
import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras  # noqa: E402
import numpy as np  # noqa: E402

B, T, D, U = 3, 7, 4, 6


def _randomise(layer, rng):
    layer.set_weights([rng.uniform(-0.6, 0.6, w.shape).astype("float32")
                       for w in layer.get_weights()])


def _mask(rng):
    m = rng.random((B, T)) > 0.3
    m[0, :] = True
    m[1, :2] = False  # left padding
    m[2, -3:] = False  # right padding
    return m


CASES = {
    # name: (layer kwargs, use mask, use initial state, bidirectional)
    "default": ({}, False, False, False),
    "reset_before": ({"reset_after": False, "return_sequences": True}, False, False, False),
    "backwards_mask": ({"go_backwards": True, "return_sequences": True}, True, False, False),
    # initial state without a mask: with both, Keras 3's JAX backend outputs h0 at the
    # masked steps before the first unmasked one, TensorFlow zeros (gpulstm: zeros)
    "return_state": ({"return_state": True, "return_sequences": True}, False, True, False),
    "hard_sigmoid": ({"recurrent_activation": "hard_sigmoid", "reset_after": False}, False,
                     False, False),
    "relu": ({"activation": "relu", "return_sequences": True}, False, False, False),
    "no_bias": ({"use_bias": False}, True, False, False),
    "bidirectional": ({"return_sequences": True}, True, False, True),
    "bidirectional_state": ({"return_state": True}, False, False, True),
}


def layer_case(name, kwargs, use_mask, use_h0, bidir, rng, out):
    gru = keras.layers.GRU(U, name="gru", **kwargs)
    layer = keras.layers.Bidirectional(gru, name="bidirectional") if bidir else gru
    x = rng.standard_normal((B, T, D)).astype("float32")
    layer.build((B, T, D))
    _randomise(layer, rng)
    call = {}
    data = {"x": x}
    if use_mask:
        data["mask"] = call["mask"] = _mask(rng)
    if use_h0:
        data["h0"] = rng.standard_normal((B, U)).astype("float32")
        call["initial_state"] = [data["h0"]]
    res = layer(x, **call)
    res = res if isinstance(res, (list, tuple)) else [res]
    for i, r in enumerate(res):
        data[f"out_{i}"] = np.asarray(r)
    _save(out, name, layer, data, kwargs, bidir)


def stateful_case(rng, out):
    layer = keras.layers.GRU(U, name="gru", stateful=True, return_sequences=True)
    layer.build((B, T, D))
    _randomise(layer, rng)
    xs = rng.standard_normal((2, B, T, D)).astype("float32")
    outs = [np.asarray(layer(x)) for x in xs]
    _save(out, "stateful", layer, {"x": xs, "out_0": np.stack(outs)},
          {"stateful": True, "return_sequences": True}, False)


def _save(out, name, layer, data, kwargs, bidir):
    meta = {"keras_version": keras.__version__, "count_params": int(layer.count_params()),
            "kwargs": kwargs, "bidirectional": bidir}
    for i, w in enumerate(layer.get_weights()):
        data[f"w_{i}"] = np.asarray(w)
    np.savez_compressed(os.path.join(out, f"gru_{name}.npz"),
                        config_json=json.dumps(layer.get_config()),
                        meta_json=json.dumps(meta), **data)


def models(rng, out):
    ids = keras.Input((T,), dtype="int32")
    h = keras.layers.Embedding(20, D, mask_zero=True)(ids)
    h = keras.layers.GRU(U)(h)
    m1 = keras.Model(ids, keras.layers.Dense(2)(h))
    x1 = rng.integers(1, 20, (B, T)).astype("int32")
    x1[1, :3] = 0
    x1[2, -2:] = 0
    inp = keras.Input((T, D))
    h = keras.layers.Bidirectional(keras.layers.GRU(U, return_sequences=True))(inp)
    h = keras.layers.GRU(U, reset_after=False)(h)
    m2 = keras.Model(inp, keras.layers.Dense(1)(h))
    x2 = rng.standard_normal((B, T, D)).astype("float32")
    enc_in, dec_in = keras.Input((T, D)), keras.Input((T - 2, D))
    _, state = keras.layers.GRU(U, return_state=True)(enc_in)
    h = keras.layers.GRU(U, return_sequences=True, go_backwards=True)(dec_in,
                                                                      initial_state=[state])
    m3 = keras.Model([enc_in, dec_in], keras.layers.Dense(2)(h))
    x3 = [rng.standard_normal((B, T, D)).astype("float32"),
          rng.standard_normal((B, T - 2, D)).astype("float32")]
    for name, model, x in (("model_gru", m1, x1), ("model_bigru", m2, x2),
                           ("model_gru_encdec", m3, x3)):
        for layer in model.layers:
            if layer.weights:
                _randomise(layer, rng)
        model.save(os.path.join(out, f"{name}.keras"))
        xs = {f"x_{i}": v for i, v in enumerate(x)} if isinstance(x, list) else {"x": x}
        np.savez_compressed(os.path.join(out, f"{name}.npz"), **xs,
                            y=np.asarray(model.predict(x, verbose=0)))


def video_model(rng, out):
    """The video-classification example (keras.io, CNN-RNN): frame features and a boolean
    mask input, ``GRU(16, return_sequences)(frames, mask=mask)`` -> GRU(8) -> Dropout ->
    Dense(8, relu) -> Dense(5, softmax); ``model_gru_video.keras`` / ``.h5`` and
    ``model_gru_video.npz`` (``x_0`` frames, ``x_1`` mask, ``y``)."""
    frames = keras.Input((T, 12))
    mask = keras.Input((T,), dtype="bool")
    h = keras.layers.GRU(16, return_sequences=True)(frames, mask=mask)
    h = keras.layers.GRU(8)(h)
    h = keras.layers.Dropout(0.4)(h)
    h = keras.layers.Dense(8, activation="relu")(h)
    model = keras.Model([frames, mask], keras.layers.Dense(5, activation="softmax")(h))
    for layer in model.layers:
        if layer.weights:
            _randomise(layer, rng)
    x = rng.standard_normal((B, T, 12)).astype("float32")
    m = np.ones((B, T), bool)
    m[0, -3:] = False  # padding at the end (as the example's frames), a hole, none
    m[1, 2] = False
    model.save(os.path.join(out, "model_gru_video.keras"))
    model.save(os.path.join(out, "model_gru_video.h5"))
    np.savez_compressed(os.path.join(out, "model_gru_video.npz"), x_0=x, x_1=m,
                        y=np.asarray(model.predict([x, m], verbose=0)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="tests/fixtures_gru")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rng = np.random.default_rng(15)
    for name, case in CASES.items():
        layer_case(name, *case, rng, args.out)
    stateful_case(rng, args.out)
    models(rng, args.out)
    video_model(np.random.default_rng(16), args.out)
    print("wrote", sorted(os.listdir(args.out)))


if __name__ == "__main__":
    main()
