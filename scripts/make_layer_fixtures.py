"""Write the Keras 3 fixtures of issue 16 (the layers around LSTMs) in tests/fixtures_layers/.

Needs Keras 3 on any backend, or TensorFlow + tf_keras 2 for ``--tf-keras`` (developer
machine only, never in CI)::

    KERAS_BACKEND=jax python scripts/make_layer_fixtures.py [NAME...]
    pip install tensorflow-cpu==2.21.0 tf-keras==2.21.0   # in a separate environment
    python scripts/make_layer_fixtures.py --tf-keras [NAME...]   # files named NAME_tfk.*

For each model: ``NAME.keras``, ``NAME.h5`` (Keras 3's legacy HDF5; part 1 only), ``NAME.npz``
with the inputs (``x_0``...), Keras's outputs (``y_0``...), each layer's
``count_params`` and config (``layers_json``: ``[[name, class, count, config]]``) and the
model's trainable parameter count.
Part 1 are the published architectures of issue 16 (GRU swapped for LSTM, no
ConvLSTM2D/Conv3D); part 2 small "zoo" models covering each layer's arguments.
Shapes are tiny so that each file stays a few KB.
"""
import json
import os
import sys

import numpy as np

TFK = "--tf-keras" in sys.argv  # tf_keras 2 writes the files instead of Keras 3
if TFK:
    import tf_keras as keras  # noqa: E402
else:
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import keras  # noqa: E402
L = keras.layers
SUFFIX = "_tfk" if TFK else ""

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures_layers")
rng = np.random.default_rng(16)


def _x(shape):
    return rng.standard_normal(shape).astype(np.float32)


def _tokens(shape, vocab):
    t = rng.integers(1, vocab, size=shape).astype(np.int32)
    t[0, shape[1] // 2:] = 0  # right padded
    t[1, :2] = 0              # left padded
    return t


def _randomise(model, seed):
    """Random weights; variances (BatchNormalization's moving_variance) kept positive."""
    r = np.random.default_rng(seed)
    ws = []
    for v in model.weights:
        w = r.uniform(-0.6, 0.6, v.shape).astype("float32")
        if "variance" in getattr(v, "path", v.name):
            w = np.abs(w) + 0.3
        ws.append(w)
    model.set_weights(ws)


# -- part 1: the published architectures ------------------------------------------------
def crnn_ocr():
    img = keras.Input((16, 8, 1), name="image")
    h = L.Conv2D(4, 3, activation="relu", padding="same", name="conv1")(img)
    h = L.MaxPooling2D(2, name="pool1")(h)
    h = L.Conv2D(4, (3, 3), activation="relu", padding="same", name="conv2")(h)
    h = L.MaxPooling2D((2, 2), name="pool2")(h)
    h = L.Reshape((4, 2 * 4), name="reshape")(h)
    h = L.Dense(8, activation="relu", name="dense1")(h)
    h = L.Dropout(0.2)(h)
    h = L.Bidirectional(L.LSTM(4, return_sequences=True, dropout=0.25))(h)
    h = L.Bidirectional(L.LSTM(3, return_sequences=True, dropout=0.25))(h)
    out = L.Dense(6, activation="softmax", name="dense2")(h)
    aux = L.Dense(2, name="aux")(L.GlobalAveragePooling1D()(h))
    model = keras.Model(img, [out, aux], name="ocr_model_v1")
    _randomise(model, 1)
    pred = keras.Model(model.get_layer("image").output, model.get_layer("dense2").output,
                       name="prediction_model")
    x = _x((2, 16, 8, 1))
    return {"crnn_ocr": (model, [x]), "crnn_ocr_prediction": (pred, [x])}


def addition_seq2seq():
    model = keras.Sequential([keras.Input((7, 12)), L.LSTM(8), L.RepeatVector(4),
                              L.LSTM(8, return_sequences=True),
                              L.Dense(12, activation="softmax")], name="seq2seq")
    _randomise(model, 2)
    return {"addition_seq2seq": (model, [_x((3, 7, 12))])}


def text_pooling():
    tok = keras.Input((8,), dtype="int32", name="tokens")
    e = L.Embedding(30, 6, mask_zero=True)(tok)
    h = L.Bidirectional(L.LSTM(4, return_sequences=True))(e)
    pooled = L.concatenate([L.GlobalMaxPooling1D()(h), L.GlobalAveragePooling1D()(h)])
    out = L.Dense(1, activation="sigmoid")(pooled)
    model = keras.Model(tok, out, name="text_pool")
    _randomise(model, 3)
    return {"text_pooling": (model, [_tokens((3, 8), 30)])}


def forecasting():
    model = keras.Sequential([keras.Input((6, 3)), L.LSTM(5), L.LeakyReLU(**{"alpha" if TFK else "negative_slope": 0.2}),
                              L.Dropout(0.2), L.Dense(1)], name="forecast")
    _randomise(model, 4)
    return {"forecasting": (model, [_x((3, 6, 3))])}


def flatten_after():
    tok = keras.Input((5,), dtype="int32")
    h = L.Flatten()(L.Embedding(20, 3)(tok))
    h = L.Flatten()(L.RepeatVector(3)(L.Dense(4, activation="tanh")(h)))
    model = keras.Model(tok, L.Dense(2)(h), name="flatten_after")
    _randomise(model, 5)
    return {"flatten_after": (model, [_tokens((3, 5), 20)])}


def conv1d_bn_bilstm_permute():
    inp = keras.Input((12, 4))
    h = L.Conv1D(6, 3, padding="same", activation="relu")(inp)
    h = L.BatchNormalization()(h)
    h = L.MaxPooling1D(2)(h)
    h = L.Bidirectional(L.LSTM(4, return_sequences=True))(h)
    h = L.Permute((2, 1))(h)
    model = keras.Model(inp, L.Dense(3)(h), name="conv1d_bn_bilstm")
    _randomise(model, 6)
    return {"conv1d_bn_bilstm_permute": (model, [_x((2, 12, 4))])}


def speech_lstm():
    inp = keras.Input((10, 6), name="spectrogram")
    h = L.Reshape((10, 6, 1))(inp)
    h = L.Conv2D(3, (3, 5), strides=(2, 2), padding="same", use_bias=False)(h)
    h = L.BatchNormalization()(h)
    h = L.ReLU()(h)
    h = L.Reshape((-1, h.shape[-2] * h.shape[-1]))(h)
    h = L.Bidirectional(L.LSTM(4, return_sequences=True), merge_mode="concat")(h)
    h = L.Dropout(0.5)(h)
    model = keras.Model(inp, L.Dense(5, activation="softmax")(h), name="speech")
    _randomise(model, 7)
    return {"speech_lstm": (model, [_x((2, 10, 6))])}


# -- part 2: every layer's arguments --------------------------------------------------------
def conv_zoo():
    a = keras.Input((9, 4))
    c1 = [L.Conv1D(4, 3, padding="causal", dilation_rate=2)(a),
          L.Conv1D(2, 2, strides=2, padding="valid", activation="tanh")(a),
          L.Conv1D(4, 3, padding="same", groups=2, use_bias=False)(a),
          L.Conv1D(3, 3, padding="same", strides=3)(a)]
    cf = L.Conv1D(3, 2, data_format="channels_first")(a)  # channels = 9 axis
    b = keras.Input((7, 6, 4))
    c2 = [L.Conv2D(4, (3, 2), strides=(2, 1), padding="same")(b),
          L.Conv2D(2, 3, dilation_rate=(2, 1))(b),
          L.Conv2D(4, 2, groups=4, activation="relu")(b),
          L.Conv2D(2, (2, 3), padding="same", data_format="channels_first")(b)]
    model = keras.Model([a, b], c1 + [cf] + c2, name="conv_zoo")
    _randomise(model, 11)
    return {"conv_zoo": (model, [_x((2, 9, 4)), _x((2, 7, 6, 4))])}


def pool_zoo():
    a = keras.Input((9, 3))
    p1 = [L.MaxPooling1D(3, strides=2, padding="same")(a), L.AveragePooling1D(2)(a),
          L.AveragePooling1D(4, strides=3, padding="same")(a),
          L.MaxPooling1D(2, data_format="channels_first")(a),
          L.GlobalMaxPooling1D(keepdims=True)(a),
          L.GlobalAveragePooling1D(data_format="channels_first")(a)]
    b = keras.Input((7, 5, 2))
    p2 = [L.MaxPooling2D((2, 3), padding="same")(b), L.AveragePooling2D(3, strides=(2, 1))(b),
          L.AveragePooling2D((2, 2), padding="same", strides=1)(b),
          L.MaxPooling2D(2, data_format="channels_first", padding="same")(b),
          L.GlobalMaxPooling2D()(b), L.GlobalAveragePooling2D(keepdims=True)(b),
          L.GlobalAveragePooling2D(data_format="channels_first")(b)]
    model = keras.Model([a, b], p1 + p2, name="pool_zoo")
    return {"pool_zoo": (model, [_x((2, 9, 3)), _x((2, 7, 5, 2))])}


def activation_zoo():
    a = keras.Input((5, 4))
    outs = [L.Activation("tanh")(a), L.Activation("softmax")(a), L.ReLU()(a),
            L.ReLU(max_value=0.8, negative_slope=0.1, threshold=0.2)(a), L.ReLU(max_value=6.0)(a),
            L.LeakyReLU()(a), L.ELU(alpha=0.5)(a), L.ELU()(a), L.PReLU()(a),
            L.PReLU(shared_axes=[1])(a), L.Softmax()(a), L.Softmax(axis=1)(a),
            L.LayerNormalization()(a), L.LayerNormalization(axis=[1, 2], center=False)(a),
            L.LayerNormalization(epsilon=0.1, scale=False)(a),
            L.BatchNormalization(axis=1, scale=False)(a),
            L.BatchNormalization(center=False, epsilon=0.01)(a)]
    model = keras.Model(a, outs, name="activation_zoo")
    _randomise(model, 12)
    return {"activation_zoo": (model, [_x((3, 5, 4)) * 2])}


def shape_noise_zoo():
    a = keras.Input((6, 3))
    b = keras.Input((4, 5, 2))
    outs = [L.Cropping1D((1, 2))(a), L.Cropping1D(2)(a), L.ZeroPadding1D(2)(a),
            L.ZeroPadding1D((0, 3))(a), L.UpSampling1D(3)(a), L.Permute((2, 1))(a),
            L.Flatten(data_format="channels_first")(b), L.Permute((3, 1, 2))(b),
            L.SpatialDropout1D(0.3)(a), L.SpatialDropout2D(0.3)(b), L.GaussianNoise(0.5)(a),
            L.GaussianDropout(0.4)(a), L.AlphaDropout(0.3)(a)]
    model = keras.Model([a, b], outs, name="shape_noise_zoo")
    return {"shape_noise_zoo": (model, [_x((2, 6, 3)), _x((2, 4, 5, 2))])}


def merge_zoo():
    """Merges of unmasked tensors and of masked LSTM sequences (Keras 3's mask rules)."""
    a, b, c = keras.Input((4, 3)), keras.Input((4, 3)), keras.Input((3,))
    plain = [L.subtract([a, b]), L.multiply([a, b, a]), L.average([a, b]),
             L.maximum([a, b]), L.minimum([a, b, a]), L.multiply([c, c])]
    t1, t2 = keras.Input((6,), dtype="int32"), keras.Input((6,), dtype="int32")
    s1 = L.LSTM(3, return_sequences=True)(L.Embedding(10, 3, mask_zero=True)(t1))
    s2 = L.LSTM(3, return_sequences=True)(L.Embedding(10, 3, mask_zero=True)(t2))
    dense = L.Dense(3)(L.Embedding(10, 3)(t2))  # no mask
    masked = []
    for merge in (L.Multiply, L.Maximum, L.Minimum, L.Subtract, L.Average):
        m = merge()([s1, s2])
        masked += [m, L.LSTM(2)(m)]  # the LSTM sees the merged mask
    masked += [L.Maximum()([s1, dense]), L.Multiply()([dense, s2]),
               L.LSTM(2)(L.Minimum()([s1, dense]))]
    # masks through activation / normalization layers into a consuming pooling and LSTM
    e = L.Embedding(10, 4, mask_zero=True)(t1)
    h = L.LayerNormalization()(L.BatchNormalization()(L.Activation("tanh")(L.LeakyReLU()(e))))
    masked += [L.GlobalAveragePooling1D()(h), L.LSTM(2)(L.Dropout(0.1)(h)),
               L.LSTM(2)(L.Conv1D(2, 2, padding="same")(e))]  # Conv1D drops the mask
    model = keras.Model([a, b, c, t1, t2], plain + masked, name="merge_zoo")
    _randomise(model, 13)
    tok2 = _tokens((3, 6), 10)
    tok2[2, 3:] = 0
    return {"merge_zoo": (model, [_x((3, 4, 3)), _x((3, 4, 3)), _x((3, 3)),
                                  _tokens((3, 6), 10), tok2])}


def nested_bn():
    """BatchNormalization inside a nested model, before a layer with trainable weights
    (legacy .h5 stores a nested model's trainable weights first), and a frozen one."""
    inner = keras.Sequential([keras.Input((7, 3)), L.Conv1D(4, 3), L.BatchNormalization(),
                              L.ReLU(), L.Dense(3)], name="inner")
    frozen = L.BatchNormalization(name="frozen_bn")
    frozen.trainable = False
    model = keras.Sequential([keras.Input((7, 3)), inner, frozen, L.LSTM(2)], name="nested_bn")
    _randomise(model, 8)
    return {"nested_bn": (model, [_x((2, 7, 3))])}


def attention_zoo():
    """Dot and the attention layers, with masks, causal masks, keys and scores."""
    a, b = keras.Input((4, 3)), keras.Input((5, 3))
    c, d = keras.Input((3,)), keras.Input((3,))
    dots = [L.Dot(axes=2)([a, b]), L.Dot(axes=(1, 1))([a, L.Dense(3)(a)]),
            L.dot([c, d], axes=1, normalize=True), L.Dot(axes=(2, 1))([b, L.Permute((2, 1))(a)]),
            L.Dot(axes=-1)([c, a])]
    tq, tv = keras.Input((5,), dtype="int32"), keras.Input((6,), dtype="int32")
    q = L.Embedding(10, 4, mask_zero=True)(tq)
    v = L.Embedding(10, 4, mask_zero=True)(tv)
    k = L.Dense(4)(v)
    att = [L.Attention()([q, v]), L.Attention(use_scale=True)([q, v, k], use_causal_mask=True),
           L.Attention(score_mode="concat", use_scale=True)([q, v])]
    out, scores = L.Attention(use_scale=True)([q, v], return_attention_scores=True)
    att += [out, scores, L.AdditiveAttention()([q, v, k]),
            L.AdditiveAttention(use_scale=False)([q, v]),
            L.LSTM(2)(L.Attention()([q, v]))]  # the query's mask goes on to the LSTM
    model = keras.Model([a, b, c, d, tq, tv], dots + att, name="attention_zoo")
    _randomise(model, 14)
    return {"attention_zoo": (model, [_x((2, 4, 3)), _x((2, 5, 3)), _x((2, 3)), _x((2, 3)),
                                      _tokens((2, 5), 10), _tokens((2, 6), 10)])}


PART1 = [crnn_ocr, addition_seq2seq, text_pooling, forecasting, flatten_after,
         conv1d_bn_bilstm_permute, speech_lstm, nested_bn]
PART2 = [conv_zoo, pool_zoo, activation_zoo, shape_noise_zoo, merge_zoo, attention_zoo]


def _layer_rows(model):
    return [[lyr.name, type(lyr).__name__, int(lyr.count_params()),
             json.dumps(lyr.get_config(), default=str)] for lyr in model.layers]


def main(names):
    os.makedirs(OUT, exist_ok=True)
    for build in PART1 + PART2:
        try:
            built = build()
        except Exception as e:  # a model tf_keras cannot build (said, not hidden)
            if not TFK:
                raise
            print("tf_keras cannot build", build.__name__, "-", type(e).__name__, str(e)[:300])
            continue
        for name, (model, xs) in built.items():
            if names and name not in names:
                continue
            name += SUFFIX
            ys = model.predict(xs if len(xs) > 1 else xs[0], verbose=0)
            ys = ys if isinstance(ys, list) else [ys]
            model.save(os.path.join(OUT, f"{name}.keras"))
            if build in PART1:  # the legacy format for the architectures (files stay few)
                model.save(os.path.join(OUT, f"{name}.h5"))
            arrays = {f"x_{i}": x for i, x in enumerate(xs)}
            arrays.update({f"y_{i}": np.asarray(y) for i, y in enumerate(ys)})
            np.savez_compressed(os.path.join(OUT, f"{name}.npz"),
                                layers_json=json.dumps(_layer_rows(model)),
                                keras_version=keras.__version__,
                                trainable_count=sum(int(np.prod(w.shape))
                                                    for w in model.trainable_weights),
                                **arrays)
            print(name, [tuple(y.shape) for y in ys])


if __name__ == "__main__":
    main([a for a in sys.argv[1:] if a != "--tf-keras"])
