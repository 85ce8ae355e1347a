"""Keras 3 and tf_keras 2 models with SimpleRNN and RNN(cell) layers, loaded from
``.keras``, ``.h5`` and JSON files (tests/fixtures_rnn, scripts/make_rnn_fixtures.py)."""
import os

import numpy as np
import pytest

import gpulstm
from rnn_fixtures import HERE
from rnn_fixtures import close as _close

FILES = [(g, n, ext) for g in ("k3", "tf2") for n in ("simple", "cells")
         for ext in ((".keras", ".h5") if g == "k3" else (".h5",))]


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


SUMMARY_ROWS = {  # Keras 3's summary() of the same files
    "simple": ["│ bidirectional_2     │ (None, 7, 10)     │        100 │",
               "│ simple_rnn_9        │ (None, 5)         │         80 │",
               "│ (SimpleRNN)         │", "Total params: 192 (768.00 B)"],
    "cells": ["│ rnn_6 (RNN)         │ (None, 7, 5)      │        200 │",
              "│ bidirectional_3     │ (None, 7, 10)     │        360 │",
              "│ rnn_8 (RNN)         │ (None, 5)         │        310 │",
              "Total params: 882 (3.45 KB)"],
}


@pytest.mark.parametrize("name", sorted(SUMMARY_ROWS))
def test_summary_rows(capsys, name):
    gpulstm.load_model(os.path.join(HERE, f"k3_model_{name}.keras")).summary()
    text = capsys.readouterr().out
    for row in SUMMARY_ROWS[name]:
        assert row in text


def test_file_description_names_the_cells():
    """``gpulstm summary FILE``'s rows (no model built) name each RNN's cell."""
    import json

    from gpulstm.io.summary import _layer_rows

    with open(os.path.join(HERE, "tf2_model_cells.json")) as f:
        rows = {name: detail for name, detail, _ in _layer_rows(json.load(f), {})}
    assert rows["rnn_6 (RNN)"] == "cell=LSTMCell, return_sequences"
    assert rows["rnn_8 (RNN)"] == "cell=StackedRNNCells"
