"""Models used as layers of other models, and ``Sequential.pop``.

Ground truth: tests/fixtures_io/nest_{seq,func}.{k3,tfk}.* written by Keras 3.15 and
tf_keras 2.21 (scripts/make_io_fixtures.py nested): the JSON, the .keras / .h5 files,
the weights, the inputs, Keras's predictions and summaries.
"""
import json
import os

import numpy as np
import pytest

import gpulstm.io as gio
from gpulstm import (LSTM, Dense, Embedding, Input, Masking, Model, Sequential,
                     TimeDistributed, concatenate, model_from_json)

FIX = os.path.join(os.path.dirname(__file__), "fixtures_io")
CASES = [(name, tag) for name in ("nest_seq", "nest_func") for tag in ("k3", "tfk")]


def _npz(name, tag):
    z = np.load(os.path.join(FIX, f"{name}.{tag}.npz"))
    pick = [[z[k] for k in sorted(z.files) if k.startswith(p)] for p in ("w_", "x_", "y_")]
    return str(z["config_json"]), str(z["summary"]), *pick


def _predict(model, xs):
    out = model.predict(xs[0] if len(xs) == 1 else xs, verbose=0)
    return out if isinstance(out, list) else [out]


def _close(outs, refs):
    assert len(outs) == len(refs)
    for a, r in zip(outs, refs):
        assert a.shape == r.shape
        assert np.max(np.abs(a - r)) <= 1e-5 * max(1.0, float(np.max(np.abs(r))))


@pytest.mark.parametrize("name, tag", CASES)
def test_keras_json_reproduces_keras_predict(name, tag):
    cfg, _, ws, xs, ys = _npz(name, tag)
    model = model_from_json(cfg)
    model.set_weights(ws)
    _close(_predict(model, xs), ys)
    # get_weights: the nested model's weights where the nested model sits, in its order
    assert [w.shape for w in model.get_weights()] == [w.shape for w in ws]


@pytest.mark.parametrize("name, tag", CASES)
@pytest.mark.parametrize("ext", [".keras", ".h5"])
def test_load_model_files_with_nested_models(name, tag, ext):
    _, _, ws, xs, ys = _npz(name, tag)
    model = gio.load_model(os.path.join(FIX, f"{name}.{tag}{ext}"))
    for a, b in zip(model.get_weights(), ws):
        assert np.array_equal(a, b)
    _close(_predict(model, xs), ys)


def _rows(text_lines):
    """The layer rows of a tf_keras summary (between the '=' rules), and the totals."""
    rules = [i for i, s in enumerate(text_lines) if s.startswith("=")]
    rows = text_lines[rules[0] + 1:rules[1]]
    totals = [s.split(" (")[0] for s in text_lines[rules[1] + 1:rules[1] + 4]]
    return rows, totals


@pytest.mark.parametrize("name", ["nest_seq", "nest_func"])
def test_summary_matches_tf_keras(name):
    cfg, summary, *_ = _npz(name, "tfk")
    lines = []
    model_from_json(cfg).summary(print_fn=lines.append)
    assert _rows(lines) == _rows(summary.split("\n"))


def _first_cells(text):
    return {s.split("│")[1].strip() for s in text.splitlines() if s.startswith("│")} - {""}


@pytest.mark.parametrize("name", ["nest_seq", "nest_func"])
def test_summary_matches_keras3(name, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")  # the terminal width the fixture was captured at
    cfg, summary, *_ = _npz(name, "k3")
    out = []
    model = model_from_json(cfg)
    model.summary(print_fn=out.append)
    assert len(out) == 1  # Keras 3 hands print_fn the whole table
    if name == "nest_seq":
        assert out[0].rstrip("\n") == summary.rstrip("\n")
    else:
        # Keras 3 also lists the mask ops it traced (NotEqual, Any, ...): gpulstm's rows
        # name the same layers and classes ("inner (Functional)", "proj (Sequential)").
        assert _first_cells(out[0]) <= _first_cells(summary)
        assert f"Total params: {model.count_params():,} (" in out[0]
        assert f"Total params: {model.count_params():,} (" in summary


# -- the same models through gpulstm's API ------------------------------------------
def _nest_seq():
    enc = Sequential([Input((6, 3)), Masking(0.0, name="mask0"),
                      LSTM(4, return_sequences=True, name="enc_lstm")], name="enc")
    h_in = Input((3,), name="head_in")
    head = Model(h_in, Dense(2, activation="tanh", name="head_dense")(h_in), name="head")
    return Sequential([enc, LSTM(3, name="mid_lstm"), head], name="nest_seq")


def _nest_func():
    tok, aux = Input((6,), dtype="int32", name="tok"), Input((6, 2), name="aux")
    emb = Embedding(20, 4, mask_zero=True, name="emb")(tok)
    proj = Sequential([Input((6, 2)), Dense(2, activation="tanh", name="proj_dense")],
                      name="proj")
    p1 = proj(aux)
    p2 = proj(p1)
    ia, ib = Input((6, 4), name="ia"), Input((6, 2), name="ib")
    seq = LSTM(5, return_sequences=True, name="inner_lstm")(ia)
    inner = Model([ia, ib], [TimeDistributed(Dense(2), name="inner_td")(seq),
                             Dense(3, name="inner_dense")(ib)], name="inner")
    o1, o2 = inner([emb, p2])
    cat = LSTM(2, name="cat_lstm")(concatenate([o1, emb], name="concatenate"))
    return Model([tok, aux], [LSTM(3, name="outer_lstm")(o1), o2, p1, cat], name="nest_func")


@pytest.mark.parametrize("name, build", [("nest_seq", _nest_seq), ("nest_func", _nest_func)])
def test_api_models_match_keras3(name, build):
    _, _, ws, xs, ys = _npz(name, "k3")
    model = build()
    model.set_weights(ws)
    _close(_predict(model, xs), ys)
    # to_json -> model_from_json keeps everything, nested models included
    again = model_from_json(model.to_json())
    again.set_weights(model.get_weights())
    _close(_predict(again, xs), ys)


def test_nested_structure_params_and_weights():
    model = _nest_func()
    # the order tf_keras's summary lists them in (see nest_func.tfk.npz)
    assert [layer.name for layer in model.layers] == [
        "aux", "tok", "proj", "emb", "inner", "concatenate", "outer_lstm", "cat_lstm"]
    inner = model.get_layer("inner")
    assert isinstance(inner, Model) and inner.count_params() == 221
    assert model.count_params() == 451
    assert isinstance(model.get_layer("proj"), Sequential)
    ws = [np.full(w.shape, i, np.float32) for i, w in enumerate(model.get_weights())]
    model.set_weights(ws)
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), ws))
    # the nested model's own weights, in its own order
    k = [layer.name for layer in model.layers].index("inner")
    before = sum(len(layer.get_weights()) for layer in model.layers[:k])
    assert all(np.array_equal(a, b) for a, b in zip(inner.get_weights(),
                                                    ws[before:before + 5]))


def test_to_json_writes_keras3_nested_layout():
    d = json.loads(_nest_func().to_json())
    cfg = d["config"]
    by_name = {layer["name"]: layer for layer in cfg["layers"]}
    assert by_name["inner"]["class_name"] == "Functional"
    assert by_name["inner"]["config"]["layers"][0]["class_name"] == "InputLayer"
    assert by_name["proj"]["class_name"] == "Sequential"
    # Keras 3 numbers a nested functional model's nodes from 1 in output_layers only
    assert ["inner", 1, 1] in cfg["output_layers"] and ["proj", 0, 0] in cfg["output_layers"]
    hist = by_name["outer_lstm"]["inbound_nodes"][0]["args"][0]["config"]["keras_history"]
    assert hist == ["inner", 0, 0]
    # a masked Concatenate is not called "concatenate" (Keras 3's mask op takes that name)
    assert "concatenate" not in by_name and "concatenate_layer" in by_name


def test_nested_call_errors_name_the_model():
    inner = Sequential([Input((5, 3)), LSTM(2)], name="inner_s")
    with pytest.raises(ValueError, match="inner_s.*expected shape=\\(None, 5, 3\\)"):
        inner(Input((5, 4)))
    with pytest.raises(ValueError, match="expects 1 input"):
        inner([Input((5, 3)), Input((5, 3))])
    lazy = Sequential([LSTM(2, return_sequences=True)], name="lazy")
    out = lazy(Input((4, 3)))  # built by its first symbolic call, like Keras
    assert out.shape == (None, 4, 2) and lazy.count_params() == 4 * 2 * 6


def test_pop_removes_the_last_layer():
    model = Sequential([Input((5, 3)), LSTM(4, return_sequences=True), LSTM(2), Dense(1)])
    last = model.pop()
    assert isinstance(last, Dense) and model.output_shape == (None, 2)
    assert [type(layer).__name__ for layer in model.layers] == ["LSTM", "LSTM"]
    x = np.random.default_rng(0).normal(size=(2, 5, 3)).astype("float32")
    assert model.predict(x, verbose=0).shape == (2, 2)
    model.add(Dense(3))
    assert model.output_shape == (None, 3)
    model.pop(), model.pop(), model.pop()
    assert model.layers == [] and not model.built
    with pytest.raises(ValueError, match="There are no layers in the model."):
        model.pop()
    with pytest.raises(TypeError, match="There are no layers in the model."):
        model.pop()  # tf_keras's exception type works too
    model.add(LSTM(3))
    assert model.output_shape == (None, 3)


@pytest.mark.parametrize("name, build", [("nest_seq", _nest_seq), ("nest_func", _nest_func)])
def test_load_weights_into_api_built_nested_models(name, build):
    _, _, ws, xs, ys = _npz(name, "k3")
    model = build()
    model.load_weights(os.path.join(FIX, f"{name}.k3.keras"))
    _close(_predict(model, xs), ys)
    model = build()
    model.load_weights(os.path.join(FIX, f"{name}.tfk.h5"))  # by layer name, tf_keras
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), ws))
