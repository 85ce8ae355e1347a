"""Keras model files (.keras / .h5 / .weights.h5 of Keras 3 and tf_keras) without TensorFlow."""
import json
import os
import shutil
import zipfile

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")

import gpulstm.io as gio  # noqa: E402
from gpulstm.io import ModelFileError, UnsupportedModelError, common  # noqa: E402
from gpulstm.io.keras_zip import read_keras_zip  # noqa: E402
from gpulstm.io.legacy_h5 import read_legacy_h5  # noqa: E402
from gpulstm.io.weights_h5 import read_weights_h5  # noqa: E402

FIX = os.path.join(os.path.dirname(__file__), "fixtures_io")
MODELS = ["func_bidir", "seq_emb"]
FILES = [(m, tag, ext) for m in MODELS for tag in ("k3", "tfk") for ext in (".keras", ".h5")]
VERSION = {"k3": "3.15.1", "tfk": "2.21.0"}


def _npz(model, tag):
    return np.load(os.path.join(FIX, f"{model}.{tag}.npz"))


def _ref_weights(z):
    return [z[k] for k in sorted(k for k in z.files if k.startswith("w_"))]


def _same(weights, ref):
    assert len(weights) == len(ref)
    for a, b in zip(weights, ref):
        assert a.shape == b.shape and np.array_equal(a, b)


def _model_api():
    try:
        from gpulstm.models import model_from_json  # noqa: F401
    except ImportError:
        pytest.skip("gpulstm.models.model_from_json not available yet")


@pytest.mark.parametrize("model,tag,ext", FILES)
def test_reader_recovers_every_weight_in_order(model, tag, ext):
    mf = gio.read_model_file(os.path.join(FIX, f"{model}.{tag}{ext}"))
    assert mf.keras_version == VERSION[tag]
    _same(mf.weights, _ref_weights(_npz(model, tag)))
    assert mf.config["class_name"] in ("Sequential", "Functional", "Model")


@pytest.mark.parametrize("model", MODELS)
def test_weights_only_files(model):
    cfg = json.loads(str(_npz(model, "k3")["config_json"]))
    mf = read_weights_h5(os.path.join(FIX, f"{model}.k3.weights.h5"), cfg)
    _same(mf.weights, _ref_weights(_npz(model, "k3")))
    mf = read_legacy_h5(os.path.join(FIX, f"{model}.tfk.weights-only.h5"))
    assert mf.config is None and mf.format == "legacy_weights_h5"
    _same(mf.weights, _ref_weights(_npz(model, "tfk")))


def test_key_rule_not_layer_names():
    # func_bidir names its layers feats/bienc/decoder/head; the groups are keyed by class.
    mf = read_keras_zip(os.path.join(FIX, "func_bidir.k3.keras"))
    assert [n for n, _ in mf.layer_weights] == ["feats", "bienc", "decoder", "head"]
    assert mf.weight_paths[0] == "layers/bidirectional/forward_layer/cell/vars/0"
    assert mf.weight_paths[6] == "layers/lstm/cell/vars/0"


@pytest.mark.parametrize("model,tag,ext", FILES)
def test_load_model_predicts_like_keras(model, tag, ext):
    _model_api()
    z = _npz(model, tag)
    m = gio.load_model(os.path.join(FIX, f"{model}.{tag}{ext}"))
    y = m.predict(z["x_0"], verbose=0)
    ref = z["y_0"]
    np.testing.assert_allclose(y, ref, rtol=0, atol=1e-5 * max(1.0, float(np.abs(ref).max())))


@pytest.mark.parametrize("model,tag,ext", FILES)
def test_load_model_predicts_like_keras_on_the_numpy_tier(model, tag, ext, numpy_tier):
    # a fresh process's first predictions run on the CPU backend's NumPy tier
    test_load_model_predicts_like_keras(model, tag, ext)
    assert numpy_tier.calls >= 1


def test_hard_sigmoid_follows_the_writer():
    # func_bidir uses hard_sigmoid: the k3 and tfk twins share weights, not outputs.
    _model_api()
    x = _npz("func_bidir", "k3")["x_0"]
    y3 = gio.load_model(os.path.join(FIX, "func_bidir.k3.keras")).predict(x, verbose=0)
    y2 = gio.load_model(os.path.join(FIX, "func_bidir.tfk.keras")).predict(x, verbose=0)
    assert np.abs(y3 - y2).max() > 1e-3


def test_load_weights_roundtrip():
    _model_api()
    z = _npz("seq_emb", "k3")
    m = gio.load_model(os.path.join(FIX, "seq_emb.k3.keras"))
    m.set_weights([np.zeros_like(w) for w in m.get_weights()])
    m.load_weights(os.path.join(FIX, "seq_emb.k3.weights.h5"))
    _same(m.get_weights(), _ref_weights(z))


# --- bad input -----------------------------------------------------------------------
def _copy(tmp_path, name):
    dst = tmp_path / name
    shutil.copy(os.path.join(FIX, name), dst)
    return str(dst)


def _rewrite_zip(src, dst, **members):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            if info.filename in members:
                if members[info.filename] is not None:
                    zout.writestr(info.filename, members[info.filename])
            else:
                zout.writestr(info, zin.read(info.filename))
    return str(dst)


def _mutate_weights_in_zip(src, dst, fn):
    with zipfile.ZipFile(src) as z:
        raw = z.read("model.weights.h5")
    tmp = str(dst) + ".h5"
    open(tmp, "wb").write(raw)
    with h5py.File(tmp, "r+") as f:
        fn(f)
    return _rewrite_zip(src, dst, **{"model.weights.h5": open(tmp, "rb").read()})


def test_missing_and_nonfinite_weights(tmp_path):
    src = os.path.join(FIX, "seq_emb.k3.keras")
    p = _mutate_weights_in_zip(src, tmp_path / "a.keras", lambda f: f.__delitem__("layers/lstm_1/cell/vars/1"))
    with pytest.raises(ModelFileError, match=r"a\.keras.*layers/lstm_1.*needs 2 weights"):
        read_keras_zip(p)

    def nan(f):
        f["layers/lstm/cell/vars/0"][0, 0] = np.nan
    p = _mutate_weights_in_zip(src, tmp_path / "b.keras", nan)
    with pytest.raises(ModelFileError, match=r"layers/lstm/cell/vars/0.*NaN"):
        read_keras_zip(p)

    def extra(f):
        f["layers/mystery/vars/0"] = np.zeros(3)
    p = _mutate_weights_in_zip(src, tmp_path / "c.keras", extra)
    with pytest.raises(ModelFileError, match="layers/mystery"):
        read_keras_zip(p)


def test_external_link_refused(tmp_path):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = np.zeros((3, 8))

    def link(f):
        del f["layers/lstm/cell/vars/0"]
        f["layers/lstm/cell/vars/0"] = h5py.ExternalLink(str(other), "x")
    p = _mutate_weights_in_zip(os.path.join(FIX, "seq_emb.k3.keras"), tmp_path / "l.keras", link)
    with pytest.raises(ModelFileError, match="ExternalLink"):
        read_keras_zip(p)


def test_legacy_h5_mutations(tmp_path):
    p = _copy(tmp_path, "func_bidir.tfk.h5")
    with h5py.File(p, "r+") as f:
        names = list(f["model_weights/decoder"].attrs["weight_names"])
        f["model_weights/decoder"].attrs["weight_names"] = np.array(
            names[:2] + ["decoder/lstm_cell/nope:0"], dtype=h5py.string_dtype())
    with pytest.raises(ModelFileError, match="nope"):
        read_legacy_h5(p)
    p = _copy(tmp_path, "seq_emb.tfk.h5")
    with h5py.File(p, "r+") as f:
        del f.attrs["model_config"]
    with pytest.raises(ModelFileError, match="model_config"):
        gio.load_model(p)


def test_chunked_layer_names(tmp_path):
    p = _copy(tmp_path, "func_bidir.k3.h5")
    with h5py.File(p, "r+") as f:
        names = f["model_weights"].attrs["layer_names"]
        del f["model_weights"].attrs["layer_names"]
        f["model_weights"].attrs["layer_names0"] = names[:2]
        f["model_weights"].attrs["layer_names1"] = names[2:]
    _same(read_legacy_h5(p).weights, _ref_weights(_npz("func_bidir", "k3")))


def test_lambda_and_custom_objects_refused(tmp_path):
    src = os.path.join(FIX, "seq_emb.k3.keras")
    with zipfile.ZipFile(src) as z:
        cfg = json.loads(z.read("config.json"))
    lam = json.loads(json.dumps(cfg))
    lam["config"]["layers"].insert(2, {"module": "keras.layers", "class_name": "Lambda",
                                       "config": {"name": "evil", "function": "gASV..."}})
    with pytest.raises(UnsupportedModelError, match="'evil' is a Lambda"):
        read_keras_zip(_rewrite_zip(src, tmp_path / "l.keras", **{"config.json": json.dumps(lam)}))
    cust = json.loads(json.dumps(cfg))
    cust["config"]["layers"][2].update(module="my_pkg.layers", registered_name="Custom>MyLSTM")
    # A custom class is data until the model is built: then it is refused by name, even
    # when its class_name is a built-in's (Keras 3 looks up the registered name only).
    with pytest.raises(UnsupportedModelError, match="Custom>MyLSTM.*custom_objects"):
        gio.load_model(_rewrite_zip(src, tmp_path / "c.keras",
                                    **{"config.json": json.dumps(cust)}))


def test_zip_bomb_counts_decompressed_bytes(tmp_path, monkeypatch):
    monkeypatch.setattr(common, "MAX_JSON_BYTES", 1 << 20)
    bomb = b" " * (4 << 20)  # deflates to a few KiB, expands past the limit
    p = tmp_path / "bomb.keras"
    with zipfile.ZipFile(p, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
        z.writestr("config.json", bomb)
        z.writestr("model.weights.h5", b"")
    assert os.path.getsize(p) < 64 << 10
    with pytest.raises(ModelFileError, match=r"config\.json.*expands past"):
        read_keras_zip(p)


def test_truncated_missing_members_and_savedmodel(tmp_path):
    raw = open(os.path.join(FIX, "seq_emb.k3.keras"), "rb").read()
    p = tmp_path / "t.keras"
    p.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ModelFileError, match="t.keras"):
        gio.read_model_file(p)
    src = os.path.join(FIX, "seq_emb.k3.keras")
    with pytest.raises(ModelFileError, match="metadata.json"):
        read_keras_zip(_rewrite_zip(src, tmp_path / "m.keras", **{"metadata.json": None}))
    d = tmp_path / "sm"
    d.mkdir()
    (d / "saved_model.pb").write_bytes(b"\x08\x01")
    with pytest.raises(UnsupportedModelError, match=r"\.save\('model\.keras'\)"):
        gio.load_model(d)


def test_summary_text():
    text = gio.summary_text(os.path.join(FIX, "func_bidir.tfk.h5"))
    n = sum(np.size(w) for w in _ref_weights(_npz("func_bidir", "tfk")))
    assert f"Total params: {n:,}" in text
    assert "bienc (Bidirectional)" in text and "keras_version=2.21.0" in text
