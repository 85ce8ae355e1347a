"""Errors, size limits and safe HDF5 access shared by every model-file reader.

Model files are data: the readers never execute, import or unpickle anything
from them.  Every problem is reported as :class:`ModelFileError`, a
``ValueError`` that names the file and the part of it that is wrong, and is
raised before any model object is handed back.
"""
import json
import os
from dataclasses import dataclass, field

import numpy as np

# Bounds on what a file may make us allocate.  Counted on the bytes actually
# decompressed / the shapes actually declared, never on a header's claim.
MAX_JSON_BYTES = 64 * 2**20  # config.json / metadata.json / model_config
MAX_WEIGHT_BYTES = int(os.environ.get("GPULSTM_MAX_WEIGHT_BYTES", 8 * 2**30))
MAX_ZIP_MEMBERS = 10_000
MAX_NESTING = 32  # nested models / wrappers
# An HDF5 weight may declare at most this many times the bytes it stores (deflate
# inflates ~1000:1 at most; Keras writes weights uncompressed), past 1 MiB.
MAX_INFLATION = 1024
MIN_RATIO_CHECK = 2**20


class ModelFileError(ValueError):
    """A model file is unreadable, unsupported or inconsistent.

    The message names the file and the part of it (zip member, HDF5 path,
    config layer) that caused the problem.
    """

    def __init__(self, path, part, message):
        self.path = str(path)
        self.part = part
        self.detail = message
        where = f"{self.path}" + (f" [{part}]" if part else "")
        super().__init__(f"Could not load {where}: {message}")


class UnsupportedModelError(ModelFileError):
    """A well-formed file that uses a feature gpulstm does not support (yet)."""


@dataclass
class ModelFile:
    """What a reader recovered from a saved model.

    Attributes
    ----------
    path : str
        The file that was read.
    format : str
        ``"keras_zip"``, ``"legacy_h5"``, ``"weights_h5"`` or ``"legacy_weights_h5"``.
    config : dict or None
        The model config, ``{"class_name": ..., "config": ...}`` (None for
        weights-only files).
    keras_version : str or None
        The version of Keras that wrote the file; decides hard_sigmoid.
    weights : list of numpy.ndarray
        Every weight, in Keras ``model.get_weights()`` order.
    weight_paths : list of str
        Where each weight came from in the file (for error messages).
    layer_weights : list of (str, int)
        ``(layer name or key, number of weights)`` in model order.
    """

    path: str
    format: str
    config: dict | None
    keras_version: str | None
    weights: list = field(default_factory=list)
    weight_paths: list = field(default_factory=list)
    layer_weights: list = field(default_factory=list)


def parse_json(path, part, data):
    """Decode a JSON document (bytes or str) from a file, bounded in size."""
    if isinstance(data, bytes):
        if len(data) > MAX_JSON_BYTES:
            raise ModelFileError(path, part, f"JSON larger than {MAX_JSON_BYTES} bytes")
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ModelFileError(path, part, f"not UTF-8 text ({e})") from None
    elif len(data) > MAX_JSON_BYTES:
        raise ModelFileError(path, part, f"JSON larger than {MAX_JSON_BYTES} bytes")
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError) as e:
        raise ModelFileError(path, part, f"invalid JSON ({e})") from None
    return obj


def attr_text(value):
    """An HDF5 attribute value as str (h5py gives bytes, str or 0-d arrays)."""
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value[()]
    if isinstance(value, (bytes, np.bytes_)):
        return value.decode("utf-8")
    if isinstance(value, str):
        return value
    raise TypeError(f"expected a string attribute, got {type(value).__name__}")


def attr_strings(value):
    """An HDF5 string-list attribute as a list of str."""
    arr = np.asarray(value)
    if arr.size == 0:
        return []
    if arr.ndim != 1:
        raise TypeError(f"expected a 1-d list of strings, got shape {arr.shape}")
    return [attr_text(v) for v in arr]


def read_chunked_attr(obj, name):
    """An attribute that Keras may have split into ``name0``, ``name1``, ...

    Keras chunks long string lists to stay under HDF5's 64 KiB header limit.
    Returns None when the attribute is absent.
    """
    if name in obj.attrs:
        return attr_strings(obj.attrs[name])
    if f"{name}0" not in obj.attrs:
        return None
    out, i = [], 0
    while f"{name}{i}" in obj.attrs:
        out.extend(attr_strings(obj.attrs[f"{name}{i}"]))
        i += 1
    return out


def child(path, group, name, part):
    """``group[name]`` through a hard link only (no external/soft links)."""
    import h5py

    try:
        link = group.get(name, getlink=True)
    except (KeyError, ValueError, OSError) as e:
        raise ModelFileError(path, part, f"unreadable HDF5 entry ({e})") from None
    if link is None:
        return None
    if not isinstance(link, h5py.HardLink):
        # External links could make us read other files; soft links loops.
        raise ModelFileError(path, part, f"refusing HDF5 {type(link).__name__} (only hard links are read)")
    try:
        return group[name]
    except (KeyError, ValueError, OSError) as e:
        raise ModelFileError(path, part, f"unreadable HDF5 entry ({e})") from None


def read_dataset(path, ds, part, budget):
    """Read one weight dataset safely as a finite float/int NumPy array.

    ``budget`` is a one-element list holding the bytes still allowed; the
    declared size is checked against it before anything is read.
    """
    import h5py

    if not isinstance(ds, h5py.Dataset):
        raise ModelFileError(path, part, f"expected a dataset, found {type(ds).__name__}")
    try:
        if ds.is_virtual or ds.external:
            raise ModelFileError(path, part, "refusing a virtual or externally stored dataset")
        dtype, shape = ds.dtype, ds.shape
    except ModelFileError:
        raise
    except (OSError, ValueError, TypeError, KeyError) as e:
        raise ModelFileError(path, part, f"unreadable dataset header ({e})") from None
    if shape is None:
        raise ModelFileError(path, part, "dataset has no shape (null dataspace)")
    if dtype.kind not in "fiub" or dtype.itemsize > 8:
        raise ModelFileError(path, part, f"expected a numeric weight, found dtype {dtype}")
    nbytes = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
    if nbytes > budget[0]:
        raise ModelFileError(
            path, part, f"weight of shape {tuple(shape)} exceeds the size limit "
            f"(GPULSTM_MAX_WEIGHT_BYTES={MAX_WEIGHT_BYTES})")
    try:
        stored = ds.id.get_storage_size()
    except (OSError, ValueError, TypeError, AttributeError) as e:
        raise ModelFileError(path, part, f"unreadable dataset header ({e})") from None
    if nbytes > MIN_RATIO_CHECK and stored * MAX_INFLATION < nbytes:
        # unwritten chunks read as fill values; compressed chunks as what they inflate to
        raise ModelFileError(path, part, f"weight of shape {tuple(shape)} declares {nbytes} bytes but "
                             f"stores {stored} (unwritten or compression-bomb dataset)")
    budget[0] -= nbytes
    try:
        arr = ds[()]
    except (OSError, ValueError, TypeError, KeyError, MemoryError) as e:
        raise ModelFileError(path, part, f"could not read weight data ({e})") from None
    arr = np.asarray(arr)
    if arr.shape != tuple(shape):
        raise ModelFileError(path, part, "weight data does not match its declared shape")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise ModelFileError(path, part, "weight contains NaN or infinity")
    return arr


def open_h5(path, source, part):
    """Open an HDF5 file (path or file-like) read-only, errors as ModelFileError."""
    try:
        import h5py
    except ImportError:
        raise ImportError(
            "Reading Keras model files needs h5py. Install it with "
            "`pip install gpulstm[io]` (or `pip install h5py`)."
        ) from None
    try:
        return h5py.File(source, "r")
    except (OSError, ValueError, TypeError) as e:
        raise ModelFileError(path, part, f"not a readable HDF5 file ({e})") from None


def check_config_safe(path, part, config, _depth=0):
    """Refuse configs that would need code: Lambda layers and custom objects.

    Walks every nested dict with a ``class_name``; never imports anything.
    """
    if _depth > 200:
        raise ModelFileError(path, part, "config nested too deeply")
    if isinstance(config, dict):
        cls = config.get("class_name")
        if isinstance(cls, str):
            if cls in ("Lambda", "TFOpLambda", "SlicingOpLambda"):
                name = (config.get("config") or {}).get("name", "?") if isinstance(config.get("config"), dict) else "?"
                raise UnsupportedModelError(
                    path, part, f"layer {name!r} is a {cls} layer, which holds Python code; "
                    "gpulstm never executes code from model files. Replace it with "
                    "built-in layers and re-save the model.")
            registered = config.get("registered_name")
            module = config.get("module")
            custom = (isinstance(registered, str) and ">" in registered) or (
                isinstance(module, str) and module.split(".")[0] not in ("keras", "tf_keras", "builtins"))
            if custom:
                raise UnsupportedModelError(
                    path, part, f"custom object {registered or cls!r} (module {module!r}) is not "
                    "supported: gpulstm never imports code from model files.")
        for v in config.values():
            check_config_safe(path, part, v, _depth + 1)
    elif isinstance(config, list):
        for v in config:
            check_config_safe(path, part, v, _depth + 1)


def _expected_shapes(cfg, trainable_first=False):
    """Weight shapes a known layer config implies (None entries: any size), or None.

    ``trainable_first``: in a legacy ``.h5`` group's order (trainable weights first).
    """
    cls = cfg.get("class_name")
    c = cfg.get("config") if isinstance(cfg.get("config"), dict) else {}
    bias = bool(c.get("use_bias", True))
    if cls == "LSTM" and isinstance(c.get("units"), int):
        u = c["units"]
        return [(None, 4 * u), (u, 4 * u)] + ([(4 * u,)] if bias else [])
    if cls == "GRU" and isinstance(c.get("units"), int):
        g = 3 * c["units"]
        after = c.get("reset_after", True) is not False
        return [(None, g), (c["units"], g)] + ([(2, g) if after else (g,)] if bias else [])
    if cls == "SimpleRNN" and isinstance(c.get("units"), int):
        u = c["units"]
        return [(None, u), (u, u)] + ([(u,)] if bias else [])
    if cls == "Dense" and isinstance(c.get("units"), int):
        return [(None, c["units"])] + ([(c["units"],)] if bias else [])
    if cls == "Embedding" and isinstance(c.get("input_dim"), int):
        return [(c["input_dim"], c.get("output_dim"))]
    if cls == "TimeDistributed" and isinstance(c.get("layer"), dict):
        return _expected_shapes(c["layer"])
    if cls == "Bidirectional" and isinstance(c.get("layer"), dict):
        back = c["backward_layer"] if isinstance(c.get("backward_layer"), dict) else c["layer"]
        fwd, bwd = _expected_shapes(c["layer"]), _expected_shapes(back)
        if fwd is None or bwd is None:
            return None
        if not trainable_first:
            return fwd + bwd
        # a legacy .h5 group: trainable weights first (a frozen direction goes last)
        on = [c.get("trainable", True) is not False and
              (sub.get("config") or {}).get("trainable", True) is not False
              for sub in (c["layer"], back)]
        shapes = [(s, on[0]) for s in fwd] + [(s, on[1]) for s in bwd]
        return [s for s, t in shapes if t] + [s for s, t in shapes if not t]
    if cls in ("InputLayer", "Dropout", "Masking", "Activation", "Flatten", "Reshape", "Permute",
               "RepeatVector", "SpatialDropout1D", "GaussianNoise", "GaussianDropout", "ActivityRegularization"):
        return []
    return None


def check_layer_weights(path, layer_cfg, arrays, parts, where, trainable_first=False):
    """Check one layer's weights against what its config implies (known layer types).

    ``trainable_first``: the weights come from a legacy ``.h5`` group.
    """
    want = _expected_shapes(layer_cfg, trainable_first)
    if want is None:
        return
    name = (layer_cfg.get("config") or {}).get("name", "?") if isinstance(layer_cfg.get("config"), dict) else "?"
    if len(arrays) != len(want):
        raise ModelFileError(path, where, f"layer {name!r} ({layer_cfg.get('class_name')}) needs "
                             f"{len(want)} weights; the file holds {len(arrays)}")
    for arr, shape, part in zip(arrays, want, parts):
        if len(arr.shape) != len(shape) or any(s is not None and s != a for s, a in zip(shape, arr.shape)):
            shown = tuple("?" if s is None else s for s in shape)
            raise ModelFileError(path, part, f"layer {name!r} needs a weight of shape {shown}; "
                                 f"found {tuple(arr.shape)}")
