"""What a model config implies about a file's weights, known before any weight is read.

A reader asks for an :class:`Expected` once it has the config (cheap JSON) and
before it touches the weight data: the shapes and dtypes each stored weight must
have, in the file's order, and how many bytes the parameters take.  Declared
HDF5 shapes are compared with it before a dataset is read, and the
``model.weights.h5`` member of a ``.keras`` zip is capped by what the model can
need (:func:`member_limit`), so a small hostile file is refused cheaply.

The shapes come from the gpulstm model the config builds (Keras's own shape
inference: inputs, wrappers, nested models); :func:`gpulstm.io.load_model`
keeps that model and fills it, so it is built once.
"""
import json
from dataclasses import dataclass

import numpy as np

from . import common
from .common import ModelFileError, UnsupportedModelError

# A saved trained model carries optimizer state (Adam: two slots per weight, plus
# counters) next to the weights, and HDF5 adds headers: 4 x the parameter bytes
# + 16 MiB covers it.
OPTIMIZER_FACTOR = 4
MEMBER_SLACK = 16 * 2**20
_FIT_SLACK = 2**20  # headers, rounding: a file holds its weights plus a little


@dataclass
class Expected:
    """The weights a model needs, in a file's order.

    Attributes
    ----------
    shapes : list of tuple
        One shape per stored weight, in the file's order.
    nbytes : int
        Bytes of all the model's parameters.
    model : object
        The model the shapes came from (built from the file's config, or given).
    """

    shapes: list
    nbytes: int
    model: object = None
    alternatives: dict = None  # {file index: shape also accepted} (CuDNN biases, legacy .h5)


def from_model(model, legacy_h5):
    """The weights ``model`` needs, in the order a file stores them.

    ``legacy_h5``: a legacy ``.h5`` file (each layer's trainable weights first);
    otherwise the ``.keras`` / ``.weights.h5`` tree order.
    """
    from gpulstm.models.weight_order import to_get_weights_order

    shapes = [tuple(w.shape) for w in model.get_weights()]
    nbytes = int(sum(np.asarray(w).nbytes for w in model.get_weights()))
    n = len(shapes)
    slot = to_get_weights_order(model, list(range(n)), legacy_h5)  # slot[j]: file index of weight j
    in_file = [None] * n
    for j, k in enumerate(slot):
        in_file[k] = shapes[j]
    alternatives = None
    if legacy_h5:  # Keras 2 CuDNNLSTM / CuDNNGRU biases, converted once read
        from gpulstm.models.cudnn import bias_alternatives

        alternatives = {slot[j]: shape for j, shape in bias_alternatives(model).items()}
    return Expected(in_file, nbytes, model, alternatives)


def from_config(path, config, keras_version, legacy_h5, backend=None):
    """Build the model ``config`` describes and return what its weights must be.

    Raises UnsupportedModelError (naming the file) when the config cannot be built,
    and ModelFileError when its parameters exceed ``GPULSTM_MAX_WEIGHT_BYTES``.
    """
    from gpulstm.initializers import placeholders

    from . import _model_from_json

    try:
        with placeholders():  # zeros, not random draws: the file's weights replace them
            model = _model_from_json(json.dumps(config), keras_version, backend)
    except ModelFileError:
        raise
    except MemoryError:
        raise ModelFileError(path, "config", "the model config needs more memory than is available "
                             "(corrupted or hostile file?)") from None
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, NotImplementedError,
            RecursionError, OverflowError) as e:
        raise UnsupportedModelError(path, "config", f"{type(e).__name__}: {e}") from e
    exp = from_model(model, legacy_h5)
    if exp.nbytes > common.MAX_WEIGHT_BYTES:
        raise ModelFileError(path, "config", f"the model's weights take {exp.nbytes} bytes, more "
                             f"than GPULSTM_MAX_WEIGHT_BYTES={common.MAX_WEIGHT_BYTES}")
    return exp


def _int(v):
    return v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else None


def _input_dim(layer_config):
    bc = layer_config.get("build_config")
    shape = bc.get("input_shape") if isinstance(bc, dict) else None
    return (_int(shape[-1]) if isinstance(shape, list) and shape else None) or 1


def _build_shape(layer_config):
    bc = layer_config.get("build_config")
    shape = bc.get("input_shape") if isinstance(bc, dict) else None
    return shape if isinstance(shape, list) and shape and not isinstance(shape[0], list) else None


def _per_input_params(cls, cfg, shape):
    """Weights that BatchNormalization / LayerNormalization / PReLU take from the input's
    shape (``build_config``); 0 when unknown."""
    n = len(shape)
    learned = (cfg.get("center", True) is not False) + (cfg.get("scale", True) is not False)

    def dim(a):
        return _int(shape[a % n]) if isinstance(a, int) and -n <= a < n else None

    if cls == "BatchNormalization":
        axis = cfg.get("axis", -1)
        return (2 + learned) * (dim(axis[0] if isinstance(axis, list) and axis else axis) or 0)
    if cls == "LayerNormalization":
        axes = cfg.get("axis", -1)
        dims = [dim(a) for a in (axes if isinstance(axes, list) else [axes])]
        return 0 if None in dims else learned * int(np.prod(dims))
    shared = cfg.get("shared_axes") or []  # PReLU: alpha has the input's shape
    dims = [1 if i in shared else dim(i) for i in range(1, n)]
    return 0 if None in dims else int(np.prod(dims))


def floor_param_count(config):
    """A lower bound on the parameters a model config declares, from the config alone.

    Counts every LSTM, Dense, Embedding, Conv1D/2D/3D and ConvLSTM config found
    (recurrent kernels and embeddings are exact; kernels use ``build_config``'s input size
    when given, else 1; convolutions count ``filters * prod(kernel_size)``, one input
    channel per group, a ConvLSTM ``4 * filters * prod(kernel_size) * (1 + filters)``;
    BatchNormalization, LayerNormalization and PReLU their ``build_config`` input shape's).
    """
    total, stack, seen = 0, [config], 0
    while stack:
        node = stack.pop()
        seen += 1
        if seen > 1_000_000:
            break
        if isinstance(node, list):
            stack.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        cls, cfg = node.get("class_name"), node.get("config")
        if isinstance(cfg, dict):
            u = _int(cfg.get("units"))
            if cls == "LSTM" and u:
                total += 4 * u * (_input_dim(node) + u + 1)
            elif cls == "SimpleRNN" and u:
                total += u * (_input_dim(node) + u + 1)
            elif cls == "Dense" and u:
                total += u * (_input_dim(node) + 1)
            elif cls == "Embedding":
                total += (_int(cfg.get("input_dim")) or 0) * (_int(cfg.get("output_dim")) or 0)
            elif cls in ("Conv1D", "Conv2D", "Conv3D", "ConvLSTM1D", "ConvLSTM2D",
                         "ConvLSTM3D") and _int(cfg.get("filters")):
                k = cfg.get("kernel_size")
                k = k if isinstance(k, list) else [k]
                f, kk = _int(cfg["filters"]), int(np.prod([_int(v) or 1 for v in k]))
                # a ConvLSTM: 4 gates, each with an input and an f-channel recurrent kernel
                total += f * kk * (4 * (1 + f) if cls.startswith("ConvLSTM") else 1)
            elif cls in ("BatchNormalization", "LayerNormalization", "PReLU") and _build_shape(node):
                total += _per_input_params(cls, cfg, _build_shape(node))
        stack.extend(v for v in node.values() if isinstance(v, (dict, list)))
    return total


def check_config_fits(path, part, config, available):
    """Refuse a config whose weights cannot be in ``available`` bytes, before building it.

    Even at 2 bytes a weight (float16) the declared parameters must fit in the bytes
    the file has for them, so a small file cannot make the model it describes huge.
    """
    need = 2 * floor_param_count(config)
    if need > available + _FIT_SLACK or need > common.MAX_WEIGHT_BYTES:
        raise ModelFileError(path, part, f"the model config declares at least {need // 2} parameters, "
                             f"more than the {available} bytes of weights in the file can hold "
                             "(corrupted or hostile file?)")


def member_limit(expected):
    """The most bytes a weights member may expand to for ``expected`` (None: the global limit)."""
    if expected is None:
        return common.MAX_WEIGHT_BYTES + MEMBER_SLACK
    return OPTIMIZER_FACTOR * expected.nbytes + MEMBER_SLACK


def check_declared(path, expected, entries):
    """Compare the declared shape and dtype of each ``(part, dataset)`` with ``expected``.

    Reads only HDF5 headers; raises ModelFileError naming the first misfit.
    """
    if expected is None:
        return
    if len(entries) != len(expected.shapes):
        raise ModelFileError(path, "weights", f"the model needs {len(expected.shapes)} weight arrays "
                             f"but the file holds {len(entries)}")
    alternatives = expected.alternatives or {}
    for i, ((part, ds), shape) in enumerate(zip(entries, expected.shapes)):
        try:
            dshape, dtype = ds.shape, ds.dtype
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as e:
            raise ModelFileError(path, part, f"unreadable dataset header ({e})") from None
        if dshape is not None and tuple(dshape) == alternatives.get(i):
            shape = alternatives[i]
        if dshape is None or tuple(dshape) != tuple(shape):
            raise ModelFileError(path, part, f"weight declared with shape "
                                 f"{None if dshape is None else tuple(dshape)}; the model config "
                                 f"needs {tuple(shape)}")
        if dtype.kind != "f" or dtype.itemsize > 8:
            raise ModelFileError(path, part, f"weight declared with dtype {dtype}; the model "
                                 "needs a floating-point weight")
