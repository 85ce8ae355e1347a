"""Load saved models without TensorFlow: ``.keras``, legacy ``.h5``, PyTorch, ONNX.

>>> model = gpulstm.load_model("my_model.keras")   # or .h5 / .tfk.keras
>>> y = model.predict(x)

Readers never execute, import or unpickle anything from a file; any problem is
a :class:`ModelFileError` naming the file and the part, raised before a model
is returned.
"""
import json
import logging
import os

from .common import ModelFile, ModelFileError, UnsupportedModelError

log = logging.getLogger("gpulstm.io")

_SAVEDMODEL_RECIPE = (
    "TensorFlow SavedModel directories need the TensorFlow runtime and are not supported. "
    "Re-save it once where TensorFlow is installed:\n"
    "    import tensorflow as tf; tf.keras.models.load_model(DIR).save('model.keras')\n"
    "(or .save_weights('model.weights.h5')), then gpulstm.load_model('model.keras').")


def _sniff(path):
    with open(path, "rb") as f:
        head = f.read(8)
    if head[:4] == b"PK\x03\x04" or head[:4] == b"PK\x05\x06":
        return "zip"
    if head == b"\x89HDF\r\n\x1a\n":
        return "hdf5"
    return None


def _model_from_json(json_str, keras_version, backend):
    from gpulstm.models import model_from_json

    kwargs = {"keras_version": keras_version}
    if backend is not None:
        kwargs["backend"] = backend
    return model_from_json(json_str, **kwargs)


def _expecter(path, model=None, backend=None, strict=True):
    """The ``expect`` callback a reader calls before reading weights, and the model it used.

    With ``model``, the weights must fit it; otherwise the file's config is built
    (the model is kept in ``built["model"]`` for :func:`load_model`).  ``strict=False``:
    a config gpulstm cannot build is read under the global limits instead of refused.
    """
    from . import expected

    built = {}

    def expect(config, keras_version, legacy_h5):
        if model is not None:
            exp = expected.from_model(model, legacy_h5)
        elif config is None:
            return None  # a weights-only file read on its own: nothing to compare with
        else:
            try:
                exp = expected.from_config(path, config, keras_version, legacy_h5, backend)
            except UnsupportedModelError:
                if strict:
                    raise
                return None
        built["model"] = exp.model
        return exp

    return expect, built


def read_model_file(path, model=None):
    """Read any supported Keras model file into a :class:`ModelFile`.

    Before any weight is read, the declared shapes are compared with what the
    model needs (``model``, else the model the file's config builds), and a
    ``.keras`` weights member is capped by the model's size.  A config gpulstm
    cannot build (an unsupported layer) is read under the global limits
    (``GPULSTM_MAX_WEIGHT_BYTES``), so that it can still be described.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.keras`` zip or a legacy ``.h5`` file.
    model : gpulstm Model, optional
        The model the weights are for (``load_weights``).

    Returns
    -------
    ModelFile
    """
    return _read(path, model, strict=False)[0]


def _read(path, model=None, backend=None, strict=True):
    path = os.fspath(path)
    if os.path.isdir(path):
        if os.path.exists(os.path.join(path, "saved_model.pb")):
            raise UnsupportedModelError(path, "saved_model.pb", _SAVEDMODEL_RECIPE)
        raise ModelFileError(path, None, "is a directory; expected a .keras or .h5 file")
    if not os.path.exists(path):
        raise FileNotFoundError(f"No such model file: {path!r}")
    if str(path).endswith(".pb"):
        raise UnsupportedModelError(path, None, _SAVEDMODEL_RECIPE)
    kind = _sniff(path)
    if kind == "hdf5" and str(path).endswith(".weights.h5"):
        raise ModelFileError(path, None, "a .weights.h5 file holds no architecture; build the "
                             "model and call model.load_weights(path) (or gpulstm.io.load_weights)")
    if kind in ("zip", "hdf5"):
        from .keras_zip import read_keras_zip
        from .legacy_h5 import read_legacy_h5

        reader = read_keras_zip if kind == "zip" else read_legacy_h5
        expect, built = _expecter(path, model, backend, strict)
        try:
            return reader(path, expect), built.get("model")
        except (ModelFileError, ImportError, MemoryError):
            raise
        except (AttributeError, TypeError, KeyError, IndexError, ValueError, RecursionError) as e:
            # A malformed config or tree that slipped past the explicit checks.
            raise ModelFileError(path, None, f"malformed model file ({type(e).__name__}: {e})") from None
    if str(path).endswith(".onnx"):
        raise ModelFileError(path, None, "ONNX files are loaded with gpulstm.load_onnx(path)")
    if str(path).endswith((".pt", ".pth", ".safetensors")):
        raise ModelFileError(path, None, "PyTorch weights are loaded with gpulstm.from_torch(...)")
    raise ModelFileError(path, None, "not a .keras zip or an HDF5 .h5 file (unrecognised header)")


def apply_weights(model, mf):
    """``model.set_weights(mf.weights)`` after checking count and shapes.

    Raises ModelFileError naming the weight's place in the file when the file
    does not fit the model; the model is left unchanged then.
    """
    from gpulstm.models.weight_order import to_get_weights_order

    expected = [tuple(w.shape) for w in model.get_weights()]
    got = mf.weights
    if len(expected) != len(got):
        per_layer = ", ".join(f"{n}: {k}" for n, k in mf.layer_weights)
        raise ModelFileError(
            mf.path, "weights", f"the model needs {len(expected)} weight arrays but the file "
            f"holds {len(got)} ({per_layer})")
    # Legacy .h5 groups list trainable weights first; .keras trees go layer by layer.
    legacy = mf.format in ("legacy_h5", "legacy_weights_h5")
    got, parts = (to_get_weights_order(model, list(v), legacy) for v in (got, mf.weight_paths))
    if legacy:  # Keras 2 CuDNNLSTM / CuDNNGRU weights, converted as tf_keras's loader does
        from gpulstm.models.cudnn import convert

        try:
            got = convert(model, got)
        except ValueError as e:
            raise ModelFileError(mf.path, "weights", str(e)) from None
    for i, (shape, w, part) in enumerate(zip(expected, got, parts)):
        if tuple(w.shape) != shape:
            raise ModelFileError(mf.path, part, f"weight {i} has shape {tuple(w.shape)}; the model "
                                 f"config needs {shape}")
    try:
        model.set_weights(list(got))
    except ValueError as e:
        raise ModelFileError(mf.path, "weights", str(e)) from None
    return model


def load_model(path, backend=None):
    """Load a Keras model saved as ``.keras`` (Keras 3 or tf_keras) or legacy ``.h5``.

    Parameters
    ----------
    path : str or os.PathLike
        The saved model file.
    backend : str, optional
        ``"cpu"``, ``"cuda"`` or ``"auto"``; see :mod:`gpulstm.dispatch`.

    Returns
    -------
    gpulstm Model
        With the file's weights; ``hard_sigmoid`` follows the file's ``keras_version``.

    Raises
    ------
    ModelFileError
        The file is unreadable, inconsistent or uses an unsupported feature.
    """
    mf, model = _read(path, backend=backend)  # the model is built from the config before reading
    if mf.config is None or model is None:
        raise ModelFileError(mf.path, None, "a weights-only file holds no architecture; build the "
                             "model and call model.load_weights(path)")
    log.info("loading %s (%s, keras_version=%s)", mf.path, mf.format, mf.keras_version)
    return apply_weights(model, mf)


def load_weights(model, path, by_name=False, skip_mismatch=False):
    """Load weights into a built gpulstm ``model`` (``model.load_weights`` hook).

    Accepts Keras 3 ``.weights.h5`` files, legacy weights-only ``.h5`` files
    (``save_weights``/ModelCheckpoint, tf_keras) and full ``.h5``/``.keras`` files.
    ``by_name`` / ``skip_mismatch``: Keras 2's partial loading of legacy ``.h5`` files
    (see :mod:`gpulstm.io.partial`).  The file's ``keras_version`` goes to the layers it
    fills (hard_sigmoid).  The model is unchanged when the file does not fit.
    """
    from . import partial

    path = os.fspath(path)
    kind = _sniff(path) if os.path.isfile(path) else None
    partial.check_arguments(path, kind, by_name, skip_mismatch)
    if by_name and kind is not None:
        return partial.load_by_name(model, path, skip_mismatch)
    if skip_mismatch and kind is not None:  # a Keras 3 .keras / .weights.h5, as Keras 3 does
        return partial.load_skipping(model, path, kind)
    if kind == "hdf5" and str(path).endswith(".weights.h5"):
        from .weights_h5 import read_weights_h5

        from .expected import from_model

        mf = read_weights_h5(path, json.loads(model.to_json()), expected=from_model(model, False))
    else:
        mf = read_model_file(path, model)
    apply_weights(model, mf)
    partial.apply_file_version(model.layers, mf.keras_version, mf.path)
    return model


def summary_text(path):
    """A text summary of a saved model: format, Keras version, layers and parameters.

    This is what ``gpulstm summary FILE`` prints.
    """
    from .summary import summary_text as _summary

    return _summary(path)


def from_torch(module_or_state_dict, **kwargs):
    """Build a gpulstm model from a PyTorch ``nn.LSTM`` (see :mod:`gpulstm.io.torch_import`)."""
    from .torch_import import from_torch as _from_torch

    return _from_torch(module_or_state_dict, **kwargs)


def load_onnx(path, **kwargs):
    """Build a gpulstm model from an ONNX graph with an LSTM (see :mod:`gpulstm.io.onnx_import`)."""
    from .onnx_import import load_onnx as _load_onnx

    return _load_onnx(path, **kwargs)


__all__ = ["ModelFile", "ModelFileError", "UnsupportedModelError", "read_model_file", "load_model",
           "load_weights", "apply_weights", "summary_text", "from_torch", "load_onnx"]
