"""``model.summary()``: Keras 3's table by default, tf_keras's for tf_keras models, ``style=``.

The expected text under tests/fixtures_summary/ is Keras 3's own output
(scripts/make_summary_fixtures.py); these tests do not run Keras.
"""
import glob
import os

import pytest

import gpulstm
from gpulstm import model_from_json

TESTS = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(TESTS, "fixtures_summary")
TEXTS = sorted(os.path.basename(p) for p in glob.glob(os.path.join(FIXTURES, "*.txt")))


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch):
    # Keras 3 caps the table at the terminal width - 4; the fixtures were made at 200.
    monkeypatch.setenv("COLUMNS", "200")


def _model(name):
    with open(os.path.join(FIXTURES, name + ".json")) as fh:
        return model_from_json(fh.read())


def _captured(model, **kwargs):
    out = []
    model.summary(print_fn=out.append, **kwargs)
    return out


# The summary() arguments of each fixture suffix (scripts/make_summary_fixtures.py).
ARGS = {"w70": {"line_length": 70}, "trainable": {"show_trainable": True},
        "range": {"layer_range": ["bidir.*", "time_dist.*"]},
        "nested": {"expand_nested": True, "show_trainable": True}}


@pytest.mark.parametrize("text_file", TEXTS)
def test_keras3_table_matches_keras(text_file):
    name, *suffix = text_file[:-len(".txt")].split(".")
    kwargs = ARGS[suffix[0]] if suffix else {}
    with open(os.path.join(FIXTURES, text_file), encoding="utf-8") as fh:
        want = fh.read()
    assert _captured(_model(name), **kwargs) == [want]  # one call with the whole table


def test_printed_to_stdout_as_plain_text(capsys):
    assert len(TEXTS) >= 16
    _model("func_two_io").summary()
    with open(os.path.join(FIXTURES, "func_two_io.txt"), encoding="utf-8") as fh:
        assert capsys.readouterr().out == fh.read()


def test_style_follows_the_keras_that_wrote_the_model():
    fix = os.path.join(TESTS, "fixtures_io")
    tf_keras = gpulstm.load_model(os.path.join(fix, "seq_emb.tfk.keras"))
    keras3 = gpulstm.load_model(os.path.join(fix, "seq_emb.k3.keras"))
    built = gpulstm.Sequential([gpulstm.Input((5, 3)), gpulstm.LSTM(4)])
    for model, style in ((tf_keras, "tf_keras"), (keras3, "keras3"), (built, "keras3")):
        lines = _captured(model)
        if style == "keras3":
            assert len(lines) == 1 and lines[0].splitlines()[1].startswith("┏")
        else:
            assert lines[1] == "_" * 65 and lines[3] == "=" * 65  # tf_keras's rules
    assert _captured(tf_keras, style="keras3")[0].splitlines()[1].startswith("┏")
    seed = _captured(keras3, style="tf_keras")  # the seed notebook's layout stays available
    assert seed[2].startswith(" Layer (type)") and seed[-4].startswith("Total params: ")
    import numpy as np

    with np.load(os.path.join(fix, "nest_seq.tfk.npz")) as z:  # JSON with keras_version 2.21.0
        assert _captured(model_from_json(str(z["config_json"])))[1] == "_" * 65
    with pytest.raises(ValueError, match=r"Expected `style` to be one of \['keras3', "
                                         r"'tf_keras'\].*Received: style='keras2'"):
        built.summary(style="keras2")


def test_layer_range_errors_as_keras():
    model = _model("seq_td_emb")
    for bad, match in ((["bidir.*"], "length 2"), ([1, 2], "string type only"),
                       (["nothing", "dense.*"], "do not match")):
        with pytest.raises(ValueError, match=match):
            model.summary(print_fn=print, layer_range=bad)


def test_unbuilt_model_refused():
    with pytest.raises(ValueError, match="has not been built"):
        gpulstm.Sequential([gpulstm.LSTM(4)]).summary()


def test_summary_command_prints_the_files_keras_layout(monkeypatch):
    import gpulstm.io as gio

    fix = os.path.join(TESTS, "fixtures_io")
    k3 = gio.summary_text(os.path.join(fix, "seq_emb.k3.keras"))
    assert "keras_version=3" in k3 and "┏" in k3 and " Total params: 280 (" in k3
    tfk = gio.summary_text(os.path.join(fix, "seq_emb.tfk.h5"))
    assert "=" * 65 in tfk and "Total params: 280" in tfk

    def unbuildable(*args):
        raise NotImplementedError("GRU is not supported")
    monkeypatch.setattr(gio, "_model_from_json", unbuildable)  # the config-only table
    text = gio.summary_text(os.path.join(fix, "seq_emb.k3.keras"))
    assert "Details" in text and "units=4" in text and "Total params: 280" in text
