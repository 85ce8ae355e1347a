"""Build and save the whole-model benchmark suite (issue 13) as Keras 3 ``.keras`` files.

    KERAS_BACKEND=jax python scripts/make_bench_models.py [--out bench/models]

Needs keras 3 and jax.  Weights are random (seeded per model).  The first seven models
are issue 13's, with exactly its shapes; the rest are ours.  ``bench/bench_models.py``
times ``gpulstm.load_model(file).predict`` against Keras 3 on JAX loading the same file;
``MODELS`` below is the one list both read (name -> builder, input kind, T).
"""
import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "bench"))
from model_suite import MODELS  # noqa: E402  (names, shapes and input kinds)


def build(spec):
    """The Keras model for one ``model_suite.ModelSpec``."""
    import keras
    from keras import layers as L

    keras.utils.set_random_seed(spec.seed)
    n = spec.name
    if n == "emb256_lstm128_dense256":
        inp = keras.Input((100,), dtype="int32")
        y = L.Dense(256, activation="softmax")(L.LSTM(128)(L.Embedding(256, 128)(inp)))
        return keras.Model(inp, y, name=n)
    if n == "seq2seq_lstm256":
        enc_in = keras.Input((16, 71))
        _, h, c = L.LSTM(256, return_state=True)(enc_in)
        dec_in = keras.Input((59, 93))
        seq, _, _ = L.LSTM(256, return_sequences=True, return_state=True)(
            dec_in, initial_state=[h, c])
        return keras.Model([enc_in, dec_in], L.Dense(93, activation="softmax")(seq), name=n)
    if n == "emb5000_lstm128_dense1":
        inp = keras.Input((200,), dtype="int32")
        y = L.LSTM(128, dropout=0.2)(L.Embedding(5000, 128)(inp))
        return keras.Model(inp, L.Dense(1, activation="sigmoid")(y), name=n)
    if n == "lstm128_dense56":
        inp = keras.Input((40, 56))
        return keras.Model(inp, L.Dense(56, activation="softmax")(L.LSTM(128)(inp)), name=n)
    if n == "lstm32_dense1":
        inp = keras.Input((120, 7))
        return keras.Model(inp, L.Dense(1)(L.LSTM(32)(inp)), name=n)
    if n == "lstm64_lstm32_dense16_dense2":
        inp = keras.Input((500, 1))
        y = L.LSTM(64, return_sequences=True, dropout=0.3, recurrent_dropout=0.3)(inp)
        y = L.LSTM(32, dropout=0.3, recurrent_dropout=0.3)(y)
        y = L.Dense(2, activation="softmax")(L.Dense(16, activation="relu")(y))
        return keras.Model(inp, y, name=n)
    if n == "lstm20_dense1":
        inp = keras.Input((10, 3))
        return keras.Model(inp, L.Dense(1)(L.LSTM(20)(inp)), name=n)
    # -- ours ------------------------------------------------------------------------
    if n == "emb1000_mask_bilstm64_dense5":
        inp = keras.Input((80,), dtype="int32")
        y = L.Embedding(1000, 64, mask_zero=True)(inp)
        y = L.Bidirectional(L.LSTM(64))(y)
        return keras.Model(inp, L.Dense(5, activation="softmax")(y), name=n)
    if n == "lstm64_seq_timedist_dense8":
        inp = keras.Input((50, 16))
        y = L.LSTM(64, return_sequences=True)(inp)
        return keras.Model(inp, L.TimeDistributed(L.Dense(8))(y), name=n)
    if n == "emb2000_mask_lstm64_lstm32_dense1":
        inp = keras.Input((60,), dtype="int32")
        y = L.Embedding(2000, 32, mask_zero=True)(inp)
        y = L.LSTM(32)(L.LSTM(64, return_sequences=True)(y))
        return keras.Model(inp, L.Dense(1, activation="sigmoid")(y), name=n)
    raise KeyError(n)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(HERE, "..", "bench", "models"))
    args = ap.parse_args(argv)
    os.environ.setdefault("KERAS_BACKEND", "jax")
    os.makedirs(args.out, exist_ok=True)
    for spec in MODELS:
        model = build(spec)
        path = os.path.join(args.out, spec.name + ".keras")
        model.save(path)
        print(f"{path}: {model.count_params()} params, {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
