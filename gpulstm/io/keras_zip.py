"""Reader for ``.keras`` zip files written by Keras 3 and by tf_keras 2.

Members: ``metadata.json`` (``keras_version``), ``config.json`` (the model
config) and ``model.weights.h5`` (the weights tree, see ``_keras_tree``).
Members are decompressed in chunks and counted, so a zip bomb stops at the
limit whatever its headers claim.
"""
import io
import zipfile

from . import common
from ._keras_tree import TreeReader
from .common import ModelFile, ModelFileError, UnsupportedModelError, check_config_safe, parse_json

_CHUNK = 1 << 20


def read_member(path, zf, name, limit):
    """The bytes of one zip member, stopping once ``limit`` bytes came out."""
    try:
        info = zf.getinfo(name)
    except KeyError:
        raise ModelFileError(path, name, "member missing from the .keras archive") from None
    if info.flag_bits & 0x1:
        raise ModelFileError(path, name, "member is encrypted")
    buf = bytearray()
    try:
        with zf.open(info) as f:
            while True:
                chunk = f.read(_CHUNK)
                if not chunk:
                    break
                buf += chunk
                if len(buf) > limit:
                    raise ModelFileError(
                        path, name, f"member expands past {limit} bytes (corrupted file or zip bomb)")
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError, RuntimeError) as e:
        # zlib.error is a subclass of Exception only; caught below.
        raise ModelFileError(path, name, f"corrupted member ({e})") from None
    except Exception as e:  # zlib.error, lzma/bz2 errors
        if type(e).__module__ in ("zlib", "_lzma", "lzma", "_bz2", "bz2"):
            raise ModelFileError(path, name, f"corrupted member ({e})") from None
        raise
    return bytes(buf)


def read_keras_zip(path):
    """Read a ``.keras`` file.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.keras`` archive.

    Returns
    -------
    ModelFile
        Config, ``keras_version`` and the weights in ``get_weights()`` order.

    Raises
    ------
    ModelFileError
        When the archive, a member or a weight is missing, corrupted or inconsistent.
    """
    path = str(path)
    try:
        zf = zipfile.ZipFile(path, "r")
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        raise ModelFileError(path, None, f"not a readable .keras zip archive ({e})") from None
    with zf:
        names = zf.namelist()
        if len(names) > common.MAX_ZIP_MEMBERS:
            raise ModelFileError(path, None, f"archive has {len(names)} members")
        meta = parse_json(path, "metadata.json", read_member(path, zf, "metadata.json", common.MAX_JSON_BYTES))
        config = parse_json(path, "config.json", read_member(path, zf, "config.json", common.MAX_JSON_BYTES))
        if not isinstance(meta, dict) or not isinstance(config, dict):
            raise ModelFileError(path, "config.json", "expected JSON objects in metadata.json and config.json")
        version = meta.get("keras_version")
        if not isinstance(version, str):
            raise ModelFileError(path, "metadata.json", f"missing keras_version (found {version!r})")
        check_config_safe(path, "config.json", config)
        if "model.weights.h5" not in names:
            if "model.weights.npz" in names or any(n.endswith(".weights.json") for n in names):
                raise UnsupportedModelError(
                    path, "model.weights.npz", "npz or sharded weights are not supported yet; "
                    "re-save with model.save('model.keras') (the default h5 weights format)")
            raise ModelFileError(path, "model.weights.h5", "member missing from the .keras archive")
        raw = read_member(path, zf, "model.weights.h5", common.MAX_WEIGHT_BYTES + common.MAX_JSON_BYTES)
    weights = read_weights_tree(path, io.BytesIO(raw), config, "model.weights.h5")
    return ModelFile(path, "keras_zip", config, version, weights.weights, weights.paths,
                     weights.layer_weights)


def read_weights_tree(path, source, config, part):
    """Read a ``model.weights.h5`` / ``.weights.h5`` tree for ``config``."""
    from .common import child, open_h5

    if config.get("class_name") not in ("Sequential", "Functional", "Model"):
        raise UnsupportedModelError(
            path, "config.json", f"top-level object is {config.get('class_name')!r}; expected a "
            "Sequential or functional Model")
    f = open_h5(path, source, part)
    try:
        reader = TreeReader(f"{path}:{part}" if part != path else path, [common.MAX_WEIGHT_BYTES])
        try:
            if "_layer_checkpoint_dependencies" in f:
                raise UnsupportedModelError(
                    path, part, "this .keras file comes from Keras 2.13-2.15, whose weight layout is "
                    "not supported yet; re-save it with tf_keras >= 2.16 or Keras 3")
            layers = child(reader.path, f, "layers", "layers")
            own = reader._vars(f, "")
            entries = own + reader.model_entries(layers, config, "layers")
            reader.read(entries)
        except (OSError, RuntimeError, KeyError, TypeError) as e:
            raise ModelFileError(path, part, f"corrupted weights file ({e})") from None
    finally:
        try:
            f.close()
        except Exception:  # a corrupted file may fail again on close
            pass
    return reader
