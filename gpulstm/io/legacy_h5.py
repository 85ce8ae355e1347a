"""Reader for legacy HDF5 ``.h5`` files (tf_keras 2 and Keras 3 ``model.save('x.h5')``).

Full models keep ``model_config`` and ``keras_version`` as root attributes and
the weights under ``model_weights/``; weights-only files (``save_weights``,
ModelCheckpoint) keep ``layer_names`` on the root.  Either way the weights are
read through the ``layer_names`` and per-layer ``weight_names`` attributes,
in their order (iterating the groups would be alphabetical: wrong).
"""
import os

from . import common
from .common import (ModelFile, ModelFileError, UnsupportedModelError, attr_text, check_config_safe,
                     check_layer_weights,
                     child, open_h5, parse_json, read_chunked_attr, read_dataset)
from .expected import check_config_fits, check_declared


def _root_attr_text(path, f, name):
    if name not in f.attrs:
        return None
    try:
        return attr_text(f.attrs[name])
    except (TypeError, UnicodeDecodeError, OSError) as e:
        raise ModelFileError(path, f"attribute {name}", f"unreadable ({e})") from None


def read_weight_groups(path, group, where, expected=None):
    """Weights under an HDF5 group with ``layer_names``/``weight_names``.

    Every dataset is found first; with ``expected`` (see :mod:`gpulstm.io.expected`)
    their declared shapes are compared with it before any is read.
    Returns (weights, weight_paths, layer_weights) in the file's layer order.
    """
    try:
        layer_names = read_chunked_attr(group, "layer_names")
    except (TypeError, UnicodeDecodeError, OSError) as e:
        raise ModelFileError(path, f"{where}attribute layer_names", f"unreadable ({e})") from None
    if layer_names is None:
        raise ModelFileError(path, where or "/", "no layer_names attribute (not a Keras weights file)")
    entries, per_layer = [], []
    for lname in layer_names:
        lpart = f"{where}{lname}"
        g = child(path, group, lname, lpart)
        if g is None:
            raise ModelFileError(path, lpart, "layer listed in layer_names has no weight group")
        try:
            wnames = read_chunked_attr(g, "weight_names")
        except (TypeError, UnicodeDecodeError, OSError) as e:
            raise ModelFileError(path, f"{lpart} attribute weight_names", f"unreadable ({e})") from None
        wnames = wnames or []
        for wname in wnames:
            wpart = f"{lpart}/{wname}"
            node = g
            for piece in wname.split("/"):
                if piece in ("", ".", ".."):
                    raise ModelFileError(path, wpart, "invalid weight name")
                node = child(path, node, piece, wpart) if node is not None else None
                if node is None:
                    raise ModelFileError(path, wpart, "weight listed in weight_names is missing")
            entries.append((wpart, node))
        per_layer.append((lname, len(wnames)))
    check_declared(path, expected, entries)
    budget = [common.MAX_WEIGHT_BYTES]
    weights = [read_dataset(path, node, wpart, budget) for wpart, node in entries]
    return weights, [wpart for wpart, _ in entries], per_layer


def read_legacy_h5(path, expect=None):
    """Read a legacy ``.h5`` model or weights-only file.

    Parameters
    ----------
    path : str or os.PathLike
    expect : callable, optional
        ``expect(config, keras_version, legacy_h5) -> Expected``: what the weights
        must be (see :mod:`gpulstm.io.expected`), asked before any weight is read
        (``config`` is None for a weights-only file).  None: no such check.

    Returns
    -------
    ModelFile
        ``config`` is None for a weights-only file (``format="legacy_weights_h5"``).
    """
    path = str(path)
    f = open_h5(path, path, None)
    try:
        try:
            return _read(path, f, expect)
        except (OSError, RuntimeError, KeyError) as e:
            raise ModelFileError(path, None, f"corrupted HDF5 file ({e})") from None
    finally:
        try:
            f.close()
        except Exception:  # a corrupted file may fail again on close
            pass


def _read(path, f, expect):
    version = _root_attr_text(path, f, "keras_version")
    if "layers" in f and "layer_names" not in f.attrs and "model_weights" not in f:
        raise UnsupportedModelError(
            path, None, "this is a Keras 3 '.weights.h5' file; load it with model.load_weights(path) "
            "after building the model (rename it to end in .weights.h5)")
    raw_cfg = _root_attr_text(path, f, "model_config")
    if raw_cfg is None:
        if "layer_names" in f.attrs or "layer_names0" in f.attrs:
            exp = expect(None, version, True) if expect is not None else None
            weights, paths, per_layer = read_weight_groups(path, f, "", exp)
            return ModelFile(path, "legacy_weights_h5", None, version, weights, paths, per_layer)
        raise ModelFileError(path, "attribute model_config",
                             "no model config: not a Keras model file (weights-only files "
                             "are loaded with model.load_weights)")
    config = parse_json(path, "attribute model_config", raw_cfg)
    if not isinstance(config, dict) or "class_name" not in config:
        raise ModelFileError(path, "attribute model_config", "expected a {'class_name', 'config'} object")
    check_config_safe(path, "attribute model_config", config)
    if version is not None and version.startswith("1."):
        raise UnsupportedModelError(path, "attribute keras_version",
                                    f"Keras {version} files are not supported yet")
    mw = child(path, f, "model_weights", "model_weights")
    if mw is None:
        raise ModelFileError(path, "model_weights", "group missing: the file holds no weights")
    check_config_fits(path, "attribute model_config", config, os.path.getsize(path))
    exp = expect(config, version or _mw_version(path, mw), True) if expect is not None else None
    weights, paths, per_layer = read_weight_groups(path, mw, "model_weights/", exp)
    _check_against_config(path, config, weights, paths, per_layer)
    if version is None:
        version = _mw_version(path, mw)
    return ModelFile(path, "legacy_h5", config, version, weights, paths, per_layer)


def _mw_version(path, mw):
    return _root_attr_text(path, mw, "keras_version") if "keras_version" in mw.attrs else None


def _check_against_config(path, config, weights, paths, per_layer):
    layers = (config.get("config") or {}).get("layers") if isinstance(config.get("config"), dict) else None
    if not isinstance(layers, list):
        return
    by_name = {(lc.get("config") or {}).get("name"): lc for lc in layers
               if isinstance(lc, dict) and isinstance(lc.get("config"), dict)}
    pos = 0
    for lname, n in per_layer:
        if lname in by_name:
            check_layer_weights(path, by_name[lname], weights[pos:pos + n], paths[pos:pos + n],
                                f"model_weights/{lname}", trainable_first=True)
        pos += n
