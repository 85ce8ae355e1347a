"""Models written by Keras 3 and by tf_keras 2 (``*_tfk``) around LSTMs (tests/fixtures_layers,
made by scripts/make_layer_fixtures.py): issue 16's architectures and one small model per
family of layers.  gpulstm loads each ``.keras`` (and ``.h5``) file and must give Keras's
outputs, layer parameter counts and trainable count, and Keras 3's layer configs (gpulstm
writes configs in Keras 3's dialect, so tf_keras's are not compared)."""
import glob
import json
import os
import zipfile

import numpy as np
import pytest

import gpulstm
from gpulstm.io.expected import floor_param_count
from gpulstm.layers.extra import EXTRA_LAYERS

HERE = os.path.join(os.path.dirname(__file__), "fixtures_layers")
FILES = sorted(glob.glob(os.path.join(HERE, "*.keras")) + glob.glob(os.path.join(HERE, "*.h5")))
NAMES = sorted({os.path.basename(p).split(".")[0] for p in FILES})
OURS = {c.__name__ for c in EXTRA_LAYERS}


def _fixture(name):
    z = np.load(os.path.join(HERE, name + ".npz"))
    n_x = sum(k.startswith("x_") for k in z.files)
    n_y = sum(k.startswith("y_") for k in z.files)
    rows = json.loads(str(z["layers_json"]))
    if str(z["keras_version"]).startswith("2."):
        rows = [r[:3] + [None] for r in rows]  # tf_keras's dialect: no config to compare
    return ([z[f"x_{i}"] for i in range(n_x)], [z[f"y_{i}"] for i in range(n_y)],
            rows, int(z["trainable_count"]))


def _assert_matches(model, xs, ys):
    out = model.predict(xs if len(xs) > 1 else xs[0], verbose=0)
    out = out if isinstance(out, list) else [out]
    assert len(out) == len(ys)
    for i, (a, r) in enumerate(zip(out, ys)):
        assert a.shape == r.shape, i
        err = np.max(np.abs(a - r))
        assert err <= 1e-5 * max(1.0, float(np.max(np.abs(r)))), (i, err)


# Issue 16's part-1 architectures: each saved by both Keras generations as .keras and .h5
ARCHITECTURES = ("crnn_ocr", "crnn_ocr_prediction", "addition_seq2seq", "speech_lstm",
                 "speech_gru", "next_frame_video", "text_pooling", "forecasting",
                 "flatten_after", "conv1d_bn_bilstm_permute")


def test_every_published_architecture_has_files():
    for name in ARCHITECTURES:
        for stem in (name, name + "_tfk"):
            assert {stem + ".keras", stem + ".h5"} <= {os.path.basename(p) for p in FILES}, stem


def test_fixtures_present():
    assert len(NAMES) >= 30 and any(p.endswith(".h5") for p in FILES)
    assert sum(n.endswith("_tfk") for n in NAMES) * 2 == len(NAMES)  # both generations


@pytest.mark.parametrize("path", FILES, ids=os.path.basename)
def test_saved_model_matches_keras(path):
    xs, ys, _, _ = _fixture(os.path.basename(path).split(".")[0])
    _assert_matches(gpulstm.load_model(path), xs, ys)


def _comparable(v):
    """Configs compare as JSON; initializers by class name (their own config keys vary
    across Keras 3 releases and are not this module's business)."""
    v = json.loads(json.dumps(v))
    if isinstance(v, dict) and v.get("module") == "keras.initializers":
        return v["class_name"]
    return v


@pytest.mark.parametrize("name", NAMES)
def test_layers_count_params_and_configs_as_keras(name):
    _, _, rows, trainable = _fixture(name)
    model = gpulstm.load_model(os.path.join(HERE, name + ".keras"))
    by_name = {layer.name: layer for layer in model.layers}
    for lname, cls, count, cfg in rows:
        layer = by_name[lname]
        assert type(layer).__name__ == cls
        assert layer.count_params() == count, lname
        if cls not in OURS or cfg is None:
            continue
        cfg, mine = json.loads(cfg), layer.get_config()
        assert set(mine) == set(cfg), (lname, set(mine) ^ set(cfg))
        for k in cfg:
            if k != "dtype":
                assert _comparable(mine[k]) == _comparable(cfg[k]), (lname, k)
    total = model.count_params()
    assert total == sum(r[2] for r in rows)
    # the loaders' cheap pre-build bound on a config's parameters never exceeds the truth
    with zipfile.ZipFile(os.path.join(HERE, name + ".keras")) as z:
        floor = floor_param_count(json.loads(z.read("config.json")))
    assert floor <= total and (floor > 0 or total == 0)
    text = []
    model.summary(print_fn=text.append)
    text = "\n".join(text)
    assert f"Trainable params: {trainable:,}" in text
    assert f"Non-trainable params: {total - trainable:,}" in text


@pytest.mark.parametrize("name", NAMES)
def test_json_round_trip_keeps_outputs(name):
    xs, ys, _, _ = _fixture(name)
    model = gpulstm.load_model(os.path.join(HERE, name + ".keras"))
    again = gpulstm.model_from_json(model.to_json())
    again.set_weights(model.get_weights())
    _assert_matches(again, xs, ys)
