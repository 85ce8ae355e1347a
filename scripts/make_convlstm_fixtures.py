"""Write issue 16's convolutional-recurrent fixtures in tests/fixtures_layers/ (the same
files and checks as scripts/make_layer_fixtures.py, whose helpers and writer it uses)::

    KERAS_BACKEND=jax python scripts/make_convlstm_fixtures.py [NAME...]
    /work/tfvenv/bin/python scripts/make_convlstm_fixtures.py --tf-keras [NAME...]

Part 1: next-frame video prediction (ConvLSTM2D x3 + BatchNormalization -> Conv3D, as
Keras's example) and the speech model with Bidirectional(GRU) x2.  Part 2: every argument of
ConvLSTM1D/2D/3D, and Conv3D, Cropping2D/3D, ZeroPadding2D/3D, UpSampling2D/3D.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_layer_fixtures as base  # noqa: E402

keras, L, _x, _randomise = base.keras, base.L, base._x, base._randomise


def next_frame_video():
    frames = keras.Input((None, 6, 6, 1), name="frames")
    h = L.ConvLSTM2D(3, (5, 5), padding="same", return_sequences=True, activation="relu")(frames)
    h = L.BatchNormalization()(h)
    h = L.ConvLSTM2D(3, (3, 3), padding="same", return_sequences=True, activation="relu")(h)
    h = L.BatchNormalization()(h)
    h = L.ConvLSTM2D(3, (1, 1), padding="same", return_sequences=True, activation="relu")(h)
    out = L.Conv3D(1, (3, 3, 3), activation="sigmoid", padding="same")(h)
    model = keras.Model(frames, out, name="next_frame")
    _randomise(model, 21)
    return {"next_frame_video": (model, [_x((2, 4, 6, 6, 1))])}


def speech_gru():
    inp = keras.Input((12, 6), name="spectrogram")
    h = L.Reshape((12, 6, 1))(inp)
    h = L.Conv2D(3, (5, 3), strides=(2, 2), padding="same", use_bias=False)(h)
    h = L.BatchNormalization()(h)
    h = L.ReLU()(h)
    h = L.Reshape((-1, h.shape[-2] * h.shape[-1]))(h)
    for i in range(2):
        h = L.Bidirectional(L.GRU(4, return_sequences=True, reset_after=True),
                            merge_mode="concat", name=f"bigru_{i + 1}")(h)
        h = L.Dropout(0.5)(h)
    model = keras.Model(inp, L.Dense(5, activation="softmax")(h), name="speech_gru")
    _randomise(model, 22)
    return {"speech_gru": (model, [_x((2, 12, 6))])}


def convlstm_zoo():
    a, acf = keras.Input((4, 7, 2)), keras.Input((4, 2, 7))
    b, bcf = keras.Input((3, 5, 6, 2)), keras.Input((3, 2, 5, 6))
    c = keras.Input((2, 4, 4, 3, 1))
    outs = [L.ConvLSTM1D(3, 3, padding="same", return_sequences=True)(a),
            *L.ConvLSTM1D(2, 2, strides=2, return_state=True, go_backwards=True,
                          activation="relu", recurrent_activation="hard_sigmoid")(a),
            L.ConvLSTM1D(2, 3, dilation_rate=2, use_bias=False, unit_forget_bias=False)(a),
            L.ConvLSTM1D(2, 2, data_format="channels_first", return_sequences=True)(acf),
            L.ConvLSTM2D(3, (2, 3), padding="same", return_sequences=True,
                         go_backwards=True)(b),
            L.ConvLSTM2D(2, 3, strides=(2, 1), dropout=0.3, recurrent_dropout=0.2)(b),
            *L.ConvLSTM2D(2, 2, data_format="channels_first", return_state=True)(bcf),
            L.ConvLSTM3D(2, 2, padding="same", return_sequences=True)(c)]
    _, h, cs = L.ConvLSTM2D(2, 3, padding="same", return_state=True)(b)
    outs.append(L.ConvLSTM2D(2, 3, padding="same", return_sequences=True)(
        b, initial_state=[h, cs]))
    model = keras.Model([a, acf, b, bcf, c], outs, name="convlstm_zoo")
    _randomise(model, 23)
    return {"convlstm_zoo": (model, [_x((2, 4, 7, 2)), _x((2, 4, 2, 7)), _x((2, 3, 5, 6, 2)),
                                     _x((2, 3, 2, 5, 6)), _x((2, 2, 4, 4, 3, 1))])}


def shape3d_zoo():
    v = keras.Input((5, 4, 6, 2))
    im = keras.Input((4, 5, 3))
    outs = [L.Conv3D(3, 2)(v), L.Conv3D(2, (3, 2, 3), strides=(2, 1, 2), padding="same",
                                        activation="relu")(v),
            L.Conv3D(2, 2, dilation_rate=(2, 1, 1), use_bias=False)(v),
            L.Conv3D(2, (2, 2, 3), padding="same", data_format="channels_first")(v),
            L.Cropping3D()(v), L.Cropping3D(((0, 1), (1, 0), (2, 1)))(v),
            L.Cropping3D(((1, 1), (1, 0), (0, 1)), data_format="channels_first")(v),
            L.ZeroPadding3D()(v), L.ZeroPadding3D((1, 0, 2))(v),
            L.ZeroPadding3D(((0, 1), (2, 0), (1, 1)), data_format="channels_first")(v),
            L.UpSampling3D()(v), L.UpSampling3D((1, 2, 3), data_format="channels_first")(v),
            L.Cropping2D()(im), L.Cropping2D(((1, 0), (2, 1)))(im), L.Cropping2D((1, 2))(im),
            L.Cropping2D(1, data_format="channels_first")(im),
            L.ZeroPadding2D()(im), L.ZeroPadding2D(((0, 2), (1, 0)))(im),
            L.ZeroPadding2D(2, data_format="channels_first")(im),
            L.UpSampling2D()(im), L.UpSampling2D((3, 2), interpolation="bilinear")(im),
            L.UpSampling2D(2, data_format="channels_first", interpolation="bilinear")(im),
            L.UpSampling2D((1, 3), data_format="channels_first")(im)]
    model = keras.Model([v, im], outs, name="shape3d_zoo")
    _randomise(model, 24)
    return {"shape3d_zoo": (model, [_x((2, 5, 4, 6, 2)), _x((2, 4, 5, 3))])}


def masked_layers():
    """Masks as tf_keras's RNN applies them to ConvLSTM layers called directly:
    ``convlstm_masked_tfk.npz`` holds, per case, the config, weights, input, mask and
    outputs.  (Keras 3.15 raises on a masked ConvLSTM: its RNN cannot broadcast the
    (batch, time) mask over the frames; gpulstm applies tf_keras's rule there too.)"""
    import json

    import numpy as np

    x, mask = _x((3, 5, 6, 2)), np.array([[1, 0, 1, 1, 0], [0, 0, 1, 1, 1], [1, 1, 1, 1, 1]], bool)
    cases = {"seq": dict(return_sequences=True),
             "back_state": dict(return_sequences=True, return_state=True, go_backwards=True),
             "last": dict(recurrent_activation="hard_sigmoid")}
    arrays = {"x": x, "mask": mask}
    for name, kw in cases.items():
        layer = L.ConvLSTM1D(3, 3, padding="same", **kw)
        layer(x)
        ws = [np.random.default_rng(9).uniform(-0.6, 0.6, w.shape).astype("float32")
              for w in layer.get_weights()]
        layer.set_weights(ws)
        out = layer(x, mask=mask)
        out = out if isinstance(out, (list, tuple)) else [out]
        arrays[f"{name}_config"] = json.dumps(layer.get_config())
        arrays.update({f"{name}_w{i}": w for i, w in enumerate(ws)})
        arrays.update({f"{name}_y{i}": np.asarray(y) for i, y in enumerate(out)})
    np.savez_compressed(os.path.join(base.OUT, f"convlstm_masked{base.SUFFIX}.npz"),
                        keras_version=keras.__version__, **arrays)
    print("convlstm_masked" + base.SUFFIX, list(cases))


if __name__ == "__main__":
    base.PART1 = [next_frame_video, speech_gru]
    base.PART2 = [convlstm_zoo, shape3d_zoo]
    base.main([a for a in sys.argv[1:] if a != "--tf-keras"])
    if base.TFK:  # Keras 3.15's RNN cannot broadcast a (batch, time) mask over frames
        masked_layers()
