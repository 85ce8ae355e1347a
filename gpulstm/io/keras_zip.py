"""Reader for ``.keras`` zip files written by Keras 3 and by tf_keras 2.

Members: ``metadata.json`` (``keras_version``), ``config.json`` (the model
config) and ``model.weights.h5`` (the weights tree, see ``_keras_tree``).
The weights member is capped by what the model can need (see
:mod:`gpulstm.io.expected`) before it is decompressed, into one buffer that
h5py reads in place.
"""
import io
import zipfile

from . import common
from ._keras_tree import TreeReader
from .common import ModelFile, ModelFileError, UnsupportedModelError, check_config_safe, parse_json
from .expected import check_config_fits, check_declared, member_limit

_CHUNK = 1 << 20


def read_member(path, zf, name, limit, why="corrupted file or zip bomb"):
    """The bytes of one zip member in one buffer (a ``BytesIO``), at most ``limit`` of them.

    The header's size is checked first, so an oversized member is refused before
    anything is decompressed; zipfile never yields more than that size and checks
    the CRC, and the count is kept anyway.
    """
    try:
        info = zf.getinfo(name)
    except KeyError:
        raise ModelFileError(path, name, "member missing from the .keras archive") from None
    if info.flag_bits & 0x1:
        raise ModelFileError(path, name, "member is encrypted")
    if info.file_size > limit:
        raise ModelFileError(path, name, f"member expands past {limit} bytes (it declares "
                             f"{info.file_size}): {why}")
    buf = io.BytesIO()
    if info.file_size:
        buf.seek(info.file_size - 1)
        buf.write(b"\0")  # one allocation of the declared size
    n = 0
    try:
        with zf.open(info) as f, buf.getbuffer() as view:
            while n < len(view):
                got = f.readinto(view[n:n + _CHUNK])
                if not got:
                    break
                n += got
            if f.read(1):
                raise ModelFileError(path, name, "member expands past its declared size")
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError, RuntimeError) as e:
        raise ModelFileError(path, name, f"corrupted member ({e})") from None
    except Exception as e:  # zlib.error, lzma/bz2 errors
        if type(e).__module__ in ("zlib", "_lzma", "lzma", "_bz2", "bz2"):
            raise ModelFileError(path, name, f"corrupted member ({e})") from None
        raise
    if n != info.file_size:
        raise ModelFileError(path, name, f"corrupted member (holds {n} of its {info.file_size} bytes)")
    buf.seek(0)
    return buf


def read_keras_zip(path, expect=None):
    """Read a ``.keras`` file.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.keras`` archive.
    expect : callable, optional
        ``expect(config, keras_version, legacy_h5) -> Expected``: what the weights
        must be (see :mod:`gpulstm.io.expected`), asked before the weights member
        is decompressed; it caps the member's size.  None: the global limits.

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
        meta = parse_json(path, "metadata.json",
                          read_member(path, zf, "metadata.json", common.MAX_JSON_BYTES).getvalue())
        config = parse_json(path, "config.json",
                            read_member(path, zf, "config.json", common.MAX_JSON_BYTES).getvalue())
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
        _check_model_class(path, config)
        try:
            declared = zf.getinfo("model.weights.h5").file_size
        except KeyError:
            declared = 0
        check_config_fits(path, "config.json", config, declared)
        exp = expect(config, version, False) if expect is not None else None
        raw = read_member(path, zf, "model.weights.h5", member_limit(exp), why=(
            "more than the model's weights and optimizer state can take (4 x the parameter bytes "
            "+ 16 MiB): corrupted file or zip bomb" if exp is not None else "corrupted file or zip bomb"))
    weights = read_weights_tree(path, raw, config, "model.weights.h5", exp)
    return ModelFile(path, "keras_zip", config, version, weights.weights, weights.paths,
                     weights.layer_weights)


def _check_model_class(path, config):
    if config.get("class_name") not in ("Sequential", "Functional", "Model"):
        raise UnsupportedModelError(
            path, "config.json", f"top-level object is {config.get('class_name')!r}; expected a "
            "Sequential or functional Model")


def read_weights_tree(path, source, config, part, expected=None, checked=True):
    """Read a ``model.weights.h5`` / ``.weights.h5`` tree for ``config``.

    ``expected`` (an :class:`~gpulstm.io.expected.Expected`): declared shapes are
    compared with it before any weight is read.  ``checked=False``: the weights are
    not compared with the config's layers (the caller does it, skipping misfits).
    """
    from .common import child, open_h5

    _check_model_class(path, config)
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
            check_declared(reader.path, expected, entries)
            reader.read(entries, checked)
        except (OSError, RuntimeError, KeyError, TypeError) as e:
            raise ModelFileError(path, part, f"corrupted weights file ({e})") from None
    finally:
        try:
            f.close()
        except Exception:  # a corrupted file may fail again on close
            pass
    return reader
