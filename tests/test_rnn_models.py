"""Keras 3 and tf_keras 2 models with SimpleRNN and RNN(cell) layers, loaded from
``.keras``, ``.h5`` and JSON files (tests/fixtures_rnn, scripts/make_rnn_fixtures.py)."""
import os

import numpy as np
import pytest

import gpulstm

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures_rnn")
FILES = [(g, n, ext) for g in ("k3", "tf2") for n in ("simple", "cells")
         for ext in ((".keras", ".h5") if g == "k3" else (".h5",))]


def _close(got, ref):
    assert got.shape == ref.shape
    assert np.max(np.abs(got - ref)) <= 1e-5 * max(1.0, float(np.max(np.abs(ref))))


@pytest.mark.parametrize("gen,name,ext", FILES)
def test_saved_models_match_keras(gen, name, ext):
    base = os.path.join(HERE, f"{gen}_model_{name}")
    d = np.load(base + ".npz", allow_pickle=False)
    model = gpulstm.load_model(base + ext)
    _close(model.predict(d["x"]), d["y"])
    with open(base + ".json") as f:
        again = gpulstm.model_from_json(f.read())
    again.set_weights(model.get_weights())
    _close(again.predict(d["x"]), d["y"])
    assert again.count_params() == model.count_params()
    ours = gpulstm.model_from_json(model.to_json())  # our own JSON reads back
    ours.set_weights(model.get_weights())
    _close(ours.predict(d["x"]), d["y"])


def test_summary_rows(capsys):
    """The SimpleRNN and Bidirectional(SimpleRNN) rows as Keras 3 prints them."""
    gpulstm.load_model(os.path.join(HERE, "k3_model_simple.keras")).summary()
    text = capsys.readouterr().out
    assert "│ bidirectional_2     │ (None, 7, 10)     │        100 │" in text
    assert "│ simple_rnn_9        │ (None, 5)         │         80 │" in text
    assert "│ (SimpleRNN)         │" in text
    assert "Total params: 192 (768.00 B)" in text
