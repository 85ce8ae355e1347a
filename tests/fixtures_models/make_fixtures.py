"""Regenerate the Keras 3 model fixtures (needs keras 3 + jax; not run by the tests).

    KERAS_BACKEND=jax python tests/fixtures_models/make_fixtures.py

Each ``<name>.npz`` holds ``config_json`` (``model.to_json()``), ``keras_version``,
the weights ``w_000``..., inputs ``x_0``... and Keras's ``model.predict`` outputs
``y_0``....  Weights are seeded random values so that every gate matters.
"""
import os

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import layers as L  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(1234)


def save(name, model, xs):
    ws = [rng.normal(0, 0.5, w.shape).astype("float32") for w in model.get_weights()]
    model.set_weights(ws)
    ys = model.predict(xs if len(xs) > 1 else xs[0], verbose=0)
    ys = ys if isinstance(ys, list) else [ys]
    arrays = {f"w_{i:03d}": w for i, w in enumerate(ws)}
    arrays.update({f"x_{i}": x for i, x in enumerate(xs)})
    arrays.update({f"y_{i}": np.asarray(y) for i, y in enumerate(ys)})
    np.savez_compressed(os.path.join(HERE, f"{name}.npz"), config_json=model.to_json(),
                        keras_version=keras.__version__, **arrays)


def tokens(b, t, vocab):
    x = rng.integers(1, vocab, (b, t)).astype("int32")
    x[0, 3:] = 0      # right padding
    x[1, :2] = 0      # left padding
    x[2, 1::2] = 0    # holes
    x[3, :] = 0       # fully masked
    return x


# Encoder-decoder: LSTM states as another LSTM's initial_state, two outputs.
enc_in = keras.Input((5, 3), name="enc_in")
dec_in = keras.Input((4, 2), name="dec_in")
_, h, c = L.LSTM(6, return_state=True, name="encoder_lstm")(enc_in)
d = L.LSTM(6, return_sequences=True, name="decoder_lstm")(dec_in, initial_state=[h, c])
y = L.TimeDistributed(L.Dense(2, activation="tanh"))(d)
s = L.add([h, c])
save("k3_encdec", keras.Model([enc_in, dec_in], [y, s]),
     [rng.normal(size=(3, 5, 3)).astype("float32"), rng.normal(size=(3, 4, 2)).astype("float32")])

# Embedding mask through Bidirectional (every merge mode), a custom backward layer.
i = keras.Input((7,), dtype="int32", name="tokens")
e = L.Embedding(10, 4, mask_zero=True)(i)
outs = [L.Bidirectional(L.LSTM(3, return_sequences=True), merge_mode=m)(e)
        for m in ("concat", "sum", "mul", "ave")]
b_none = L.Bidirectional(L.LSTM(3), merge_mode=None)(e)
b_bw = L.Bidirectional(L.LSTM(3, return_sequences=True),
                       backward_layer=L.LSTM(3, return_sequences=True, go_backwards=True,
                                             activation="relu"))(e)
cat = L.concatenate(outs)
last = L.LSTM(5)(cat)  # consumes the mask carried through Bidirectional + Concatenate
save("k3_bidir_mask", keras.Model(i, [last, L.concatenate(b_none), b_bw]), [tokens(5, 7, 10)])

# Masking + Dropout + Dense activations, return_state outputs.
m_in = keras.Input((6, 3))
x_m = rng.normal(size=(4, 6, 3)).astype("float32")
x_m[0, 4:] = 0.0
x_m[1, :2] = 0.0
x_m[2, :] = 0.0
mk = L.Masking(0.0)(m_in)
dr = L.Dropout(0.5)(mk)
seq, hh, cc = L.LSTM(4, return_sequences=True, return_state=True)(dr)
td = L.TimeDistributed(L.Dense(3, activation="softmax"))(seq)
l2 = L.LSTM(2, go_backwards=True)(td)
dn = L.Dense(3, activation="gelu")(hh)
save("k3_masking_state", keras.Model(m_in, [l2, dn, cc, td]), [x_m])
