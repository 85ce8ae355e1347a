"""Write Keras 3's plain-text ``model.summary()`` for small models into tests/fixtures_summary/.

Needs Keras 3 (any backend; JAX is enough: ``pip install "keras>=3" "jax[cpu]"``)::

    KERAS_BACKEND=jax python scripts/make_summary_fixtures.py

For each model NAME it writes ``NAME.json`` (``model.to_json()``, which gpulstm
rebuilds with ``model_from_json``) and ``NAME.txt`` (what ``summary(print_fn=...)``
captured, at the terminal width below and, for ``*.w70``, at ``line_length=70``; the
other suffixes are the arguments in ``EXTRA``).
The tests compare gpulstm's ``summary(style="keras3")`` with the text; they never
run Keras.
"""
import os

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ["COLUMNS"] = "200"  # Keras caps the table at the terminal width - 4

import keras  # noqa: E402
from keras import layers as L  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures_summary")


def models():
    """Small Sequential and functional models of the layers gpulstm supports."""
    out = {}
    out["seed_seq"] = keras.Sequential([keras.Input((400, 3)), L.LSTM(50, activation="relu"),
                                        L.Dense(1)], name="seed_seq")
    x = keras.Input((400, 3), name="series")
    out["seed_func"] = keras.Model(x, L.Dense(1)(L.LSTM(50, activation="relu")(x)),
                                   name="seed_func")
    out["seq_td_emb"] = keras.Sequential([
        keras.Input((6,), dtype="int32"), L.Embedding(20, 4, mask_zero=True),
        L.Bidirectional(L.LSTM(3, return_sequences=True)),
        L.TimeDistributed(L.Dense(2)), L.LSTM(5, name="a_rather_long_layer_name_for_wrapping"),
        L.Dense(2, trainable=False)], name="seq_td_emb")
    a, b = keras.Input((5, 3), name="seqs"), keras.Input((4,), name="feats")
    seq, h, c = L.LSTM(4, return_sequences=True, return_state=True, name="enc")(a)
    dec = L.LSTM(4, name="dec")(seq, initial_state=[h, c])
    z = L.Concatenate(name="cat")([dec, L.Dense(4, name="feat_proj")(b)])
    out["func_two_io"] = keras.Model([a, b], [L.Dense(2, name="head")(z), h], name="func_two_io")
    x = keras.Input((7, 2), name="x")
    out["func_states"] = keras.Model(
        x, L.Bidirectional(L.LSTM(3, return_state=True), name="bi")(x), name="func_states")
    inner = keras.Sequential([keras.Input((5, 3)), L.LSTM(4, return_sequences=True)],
                             name="encoder")
    out["nested_seq"] = keras.Sequential([keras.Input((5, 3)), inner, L.LSTM(2), L.Dense(1)],
                                         name="nested_seq")
    v = keras.Input((None, 6, 6, 1), name="frames")
    seq, h, c = L.ConvLSTM2D(3, 3, padding="same", return_sequences=True, return_state=True)(v)
    out["conv_lstm_video"] = keras.Model(
        v, [L.Conv3D(1, 3, padding="same")(L.BatchNormalization()(seq)),
            L.UpSampling2D()(L.Cropping2D(1)(h)), c], name="conv_lstm_video")
    return out


# Keras 3's other summary arguments, on the models where they show something.
EXTRA = {
    "seq_td_emb": ((".trainable", {"show_trainable": True}),
                   (".range", {"layer_range": ["bidir.*", "time_dist.*"]})),
    "nested_seq": ((".nested", {"expand_nested": True, "show_trainable": True}),),
    "func_two_io": ((".nested", {"expand_nested": True, "show_trainable": True}),),
}


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, model in models().items():
        with open(os.path.join(OUT, name + ".json"), "w") as fh:
            fh.write(model.to_json(indent=1) + "\n")
        for suffix, kwargs in (("", {}), (".w70", {"line_length": 70})) + EXTRA.get(name, ()):
            text = []
            model.summary(print_fn=text.append, **kwargs)
            assert len(text) == 1  # Keras 3 hands print_fn the whole table at once
            with open(os.path.join(OUT, name + suffix + ".txt"), "w") as fh:
                fh.write(text[0])
        print("wrote", name)
    with open(os.path.join(OUT, "VERSION"), "w") as fh:
        fh.write(f"keras {keras.__version__}\n")


if __name__ == "__main__":
    main()
