"""Model configs: Keras 3 JSON out, tf_keras 2 and Keras 3 JSON in.

Nothing from a config is executed or imported: class names are looked up in a
fixed table, and Lambda / custom layers are refused by name.
"""
import json

from gpulstm.layers._common import dtype_policy
from gpulstm.models.ops import _OPS, OpLayer
from gpulstm.models.symbolic import KerasTensor, _nodes, input_tensor


def _layer_classes():
    from gpulstm.layers.core import Dense, Dropout, Embedding, InputLayer, Masking
    from gpulstm.layers.gru import GRU
    from gpulstm.layers.lstm import LSTM
    from gpulstm.layers.simple_rnn import SimpleRNN
    from gpulstm.layers.rnn import RNN
    from gpulstm.layers.merge import Add, Concatenate
    from gpulstm.layers.reshaping import Reshape
    from gpulstm.layers.wrappers import Bidirectional, TimeDistributed

    from gpulstm.layers.extra import EXTRA_LAYERS

    return {c.__name__: c for c in (InputLayer, Dense, Dropout, Masking, Embedding, LSTM, GRU,
                                    SimpleRNN, RNN,
                                    TimeDistributed, Bidirectional, Add, Concatenate, Reshape,
                                    *EXTRA_LAYERS)}


_CODE_LAYERS = ("Lambda", "TFOpLambda", "SlicingOpLambda", "TorchModuleWrapper",
                "JaxLayer", "FlaxLayer", "TFSMLayer")


def supported_layers():
    """Names of the Keras layer classes gpulstm can build from a config."""
    return sorted(_layer_classes())


# -- layer configs ----------------------------------------------------------------
def _strip_versions(cfg):
    if isinstance(cfg, dict):
        return {k: _strip_versions(v) for k, v in cfg.items() if k != "keras_version"}
    if isinstance(cfg, list):
        return [_strip_versions(v) for v in cfg]
    return cfg


def serialize_layer(layer):
    """``{"module", "class_name", "config", "registered_name", "build_config"}`` (Keras 3)."""
    if isinstance(layer, OpLayer):  # written back as Keras 3 wrote it
        return {"module": layer.module, "class_name": layer.op,
                "config": dict(layer.options, name=layer.name), "registered_name": layer.op}
    if _is_model(layer):  # a nested model: its whole serialization, as Keras 3 writes it
        out = model_to_dict(layer, top=False)
        out.pop("keras_version", None)
        out["compile_config"] = {}
        return out
    out = {"module": "keras.layers", "class_name": type(layer).__name__,
           "config": _strip_versions(layer.get_config()), "registered_name": None}
    shape = getattr(layer, "_build_input_shape", None)
    if type(layer).__name__ != "InputLayer" and shape is not None:
        if isinstance(shape, list):
            shape = [list(s) for s in shape]
        out["build_config"] = {"input_shape": list(shape) if isinstance(shape, tuple) else shape}
    return out


def deserialize_layer(cfg, keras_version=None):
    """A gpulstm layer from one serialized Keras layer (either dialect)."""
    if not isinstance(cfg, dict) or "class_name" not in cfg:
        raise ValueError(f"Expected a serialized layer dict with a `class_name`. "
                         f"Received: {str(cfg)[:200]}")
    cls_name = cfg["class_name"]
    conf = dict(cfg.get("config") or {})
    name = conf.get("name", cfg.get("name", "?"))
    if cls_name in ("Sequential", "Functional", "Model"):
        return model_from_config(cfg, keras_version, None)  # a nested model
    classes = _layer_classes()
    from gpulstm.models import cudnn

    if cls_name in cudnn.CUDNN_CLASSES:  # Keras 2's GPU-only layers, run as LSTM / GRU
        cls_name, conf = cudnn.plain_config(cls_name, conf)
    if cls_name in _CODE_LAYERS:
        raise ValueError(
            f"Layer '{name}' is a {cls_name}, which runs Python code stored with the model. "
            "gpulstm never executes code from a config. Replace it with supported layers "
            f"({', '.join(sorted(classes))}) and load the weights again.")
    cls = classes.get(cls_name)
    if cls is None:
        custom = cfg.get("registered_name") not in (None, cls_name) or \
            str(cfg.get("module", "keras")).split(".")[0] not in ("keras", "tf_keras")
        kind = "custom layer" if custom else "layer class"
        raise ValueError(
            f"Unknown {kind} '{cls_name}' (layer '{name}'). gpulstm supports: "
            f"{', '.join(sorted(classes))}. Custom layers are never imported from configs.")
    try:
        return cls.from_config(conf, keras_version=keras_version)
    except TypeError as e:
        raise ValueError(f"Cannot build layer '{name}' ({cls_name}) from its config: {e}") \
            from None


# -- model configs out --------------------------------------------------------------
def _tensor_ref(t, node_index_in_model):
    layer, node_index, tensor_index = t._keras_history
    return {"class_name": "__keras_tensor__",
            "config": {"shape": list(t.shape), "dtype": t.dtype,
                       "keras_history": [layer.name, node_index_in_model(layer, node_index),
                                         tensor_index]}}


def _serialize_struct(obj, ref):
    if isinstance(obj, KerasTensor):
        return ref(obj)
    if isinstance(obj, (list, tuple)):
        return [_serialize_struct(o, ref) for o in obj]
    if isinstance(obj, dict):
        return {k: _serialize_struct(v, ref) for k, v in obj.items()}
    return obj


def functional_config(model):
    in_model = {id(n) for n in model._exec_nodes}

    def model_nodes(layer):
        return [n for n in _nodes(layer) if id(n) in in_model]

    def node_index_in_model(layer, node_index):
        node = layer._inbound_nodes[node_index]
        return [id(n) for n in model_nodes(layer)].index(id(node))

    def ref(t):
        return _tensor_ref(t, node_index_in_model)

    layers = []
    for layer in model.layers:
        entry = serialize_layer(layer)
        entry["name"] = layer.name
        # An op's node holds its positional arguments; a layer's, its one input.
        wrap = (lambda a: a) if isinstance(layer, OpLayer) else (lambda a: [a])
        entry["inbound_nodes"] = [
            {"args": wrap(_serialize_struct(n.args, ref)),
             "kwargs": _serialize_struct(n.kwargs, ref)}
            for n in model_nodes(layer) if not n.is_input]
        layers.append(entry)

    def endpoints(nested):
        def one(t):
            layer, node_index, tensor_index = t._keras_history
            # Keras 3 counts a nested functional model's nodes from 1 here (only here).
            skip = int(_is_functional(layer))
            return [layer.name, node_index_in_model(layer, node_index) + skip, tensor_index]
        if isinstance(nested, dict):  # Keras 3: Model({"image": a, ...}, ...)
            return {k: one(t) for k, t in nested.items()}
        if isinstance(nested, (list, tuple)):
            return [one(t) for t in nested]
        return one(nested)

    return {"name": model.name, "trainable": model.trainable, "layers": layers,
            "input_layers": endpoints(model._nested_inputs),
            "output_layers": endpoints(model._nested_outputs)}


def sequential_config(model):
    layers = []
    if model.input_layer is not None:
        layers.append({"module": "keras.layers", "class_name": "InputLayer",
                       "config": model.input_layer.get_config(), "registered_name": None})
    layers += [serialize_layer(layer) for layer in model.layers]
    cfg = {"name": model.name, "trainable": model.trainable,
           "dtype": dtype_policy("float32"), "layers": layers}
    if model.input_layer is not None:
        cfg["build_input_shape"] = list(model.input_layer.batch_shape)
    return cfg


def _is_model(layer):
    from gpulstm.models.functional import Model

    return isinstance(layer, Model)


def _is_functional(layer):
    from gpulstm.models.sequential import Sequential

    return _is_model(layer) and not isinstance(layer, Sequential)


def _model_keras_version(model):
    versions = set()

    def visit(m):
        for layer in m.layers:
            if _is_model(layer):
                visit(layer)
            for sub in (layer, getattr(layer, "layer", None),
                        getattr(layer, "forward_layer", None)):
                if sub is not None and getattr(sub, "keras_version", None):
                    versions.add(sub.keras_version)
    visit(model)
    return sorted(versions)[0] if len(versions) == 1 else None


def model_to_dict(model, top=True):
    """The whole-model dict that ``to_json`` writes (Keras 3 dialect).

    At the top, layers whose names Keras 3 would give its mask ops on reload are
    renamed (see :mod:`gpulstm.models.keras_names`).
    """
    from gpulstm.models import keras_names
    from gpulstm.models.sequential import Sequential

    if isinstance(model, Sequential):
        shape = list(model.input_layer.batch_shape) if model.input_layer is not None else None
        out = {"module": "keras", "class_name": "Sequential", "config": sequential_config(model),
               "registered_name": None, "build_config": {"input_shape": shape},
               "compile_config": None}
    else:
        out = {"module": "keras.src.models.functional", "class_name": "Functional",
               "config": functional_config(model), "registered_name": "Functional",
               "build_config": {"input_shape": None}, "compile_config": None}
    kv = _model_keras_version(model)
    if kv is not None:
        out["keras_version"] = kv  # so hard_sigmoid keeps its Keras 2 formula on reload
    if top and getattr(model, "built", False):
        keras_names.avoid_op_names(out, keras_names.masked_concat_calls(model))
    return out


# -- model configs in -----------------------------------------------------------------
def model_from_json(json_string, keras_version=None, backend=None, custom_objects=None):
    """Build a model from ``model.to_json()`` of tf_keras 2 or Keras 3.

    Parameters
    ----------
    json_string : str
    keras_version : str, optional
        Whose semantics apply (hard_sigmoid). None: the JSON's own ``keras_version``
        if present, else Keras 3.
    backend : str, optional
        The model's backend (see :class:`gpulstm.Model`).

    Returns
    -------
    Model or Sequential
        Built, with freshly initialized weights: call ``set_weights`` next.
    """
    if custom_objects:
        raise ValueError("gpulstm does not load custom objects. Received: custom_objects="
                         f"{sorted(custom_objects)}")
    try:
        d = json.loads(json_string)
    except (TypeError, ValueError) as e:
        raise ValueError(f"Expected a model JSON string. Received invalid JSON: {e}") from None
    return model_from_config(d, keras_version, backend)


def model_from_config(d, keras_version=None, backend=None):
    if not isinstance(d, dict) or "class_name" not in d:
        raise ValueError("Expected a serialized model with `class_name` and `config`.")
    kv = keras_version if keras_version is not None else d.get("keras_version")
    cls_name = d["class_name"]
    if cls_name == "Sequential":
        return sequential_from_config(d.get("config") or {}, kv, backend)
    if cls_name in ("Functional", "Model"):
        return functional_from_config(d.get("config") or {}, kv, backend)
    raise ValueError(f"Unknown model class '{cls_name}'. Expected 'Sequential' or "
                     "'Functional' (subclassed models have no loadable architecture).")


def sequential_from_config(config, keras_version=None, backend=None):
    from gpulstm.layers.core import InputLayer
    from gpulstm.models.sequential import Sequential

    layer_cfgs = config if isinstance(config, list) else config.get("layers", [])
    name = None if isinstance(config, list) else config.get("name")
    trainable = True if isinstance(config, list) else config.get("trainable", True) is not False
    model = Sequential(name=name, backend=backend, trainable=trainable)
    for i, lcfg in enumerate(layer_cfgs):
        layer = deserialize_layer(lcfg, keras_version)
        if i == 0 and not isinstance(layer, InputLayer):
            shape = (lcfg.get("config") or {}).get("batch_input_shape")
            if shape is None and isinstance(config, dict):
                shape = config.get("build_input_shape")
            if shape is not None:
                model.add(InputLayer(batch_shape=shape, name=None))
        model.add(layer)
    model._keras_version = keras_version
    return model


def _is_ref(x, names):
    return (isinstance(x, list) and len(x) >= 3 and isinstance(x[0], str) and x[0] in names
            and isinstance(x[1], int) and isinstance(x[2], int))


def _resolve(obj, created, names):
    """Replace tensor references by KerasTensors; KeyError when one is not built yet."""
    if isinstance(obj, dict):
        if obj.get("class_name") == "__keras_tensor__":
            name, node, idx = obj["config"]["keras_history"]
            return created[name][node][idx]
        return {k: _resolve(v, created, names) for k, v in obj.items()}
    if _is_ref(obj, names):
        return created[obj[0]][obj[1]][obj[2]]
    if isinstance(obj, list):
        return [_resolve(v, created, names) for v in obj]
    return obj


def _call_node(layer, node_data, created, names):
    from gpulstm.layers.lstm import LSTM
    from gpulstm.layers.wrappers import Bidirectional

    if isinstance(node_data, dict):  # Keras 3: {"args": [...], "kwargs": {...}}
        args = _resolve(node_data.get("args", []), created, names)
        kwargs = _resolve(node_data.get("kwargs", {}), created, names)
    else:  # tf_keras: [[name, node, tensor, kwargs], ...]
        entries = [e for e in node_data]
        kwargs = dict(entries[0][3]) if entries and len(entries[0]) > 3 else {}
        tensors = [_resolve(e[:3], created, names) for e in entries]
        args = [tensors[0] if len(tensors) == 1 else tensors]
        kwargs = _resolve(kwargs, created, names)
    kwargs = {k: v for k, v in kwargs.items() if k != "training" and v is not None}
    if isinstance(layer, OpLayer):
        return [layer.symbolic(args)]
    if isinstance(layer, (LSTM, Bidirectional)) and len(args) > 1:
        kwargs.setdefault("initial_state", args[1])
    out = layer(args[0], **kwargs)
    return out if isinstance(out, list) else [out]


def functional_from_config(config, keras_version=None, backend=None, cls=None):
    from gpulstm.layers.core import InputLayer
    from gpulstm.models.functional import Model

    layer_cfgs = config.get("layers")
    if not isinstance(layer_cfgs, list):
        raise ValueError("A functional model config needs a `layers` list.")
    layers, pending = {}, []
    for lcfg in layer_cfgs:
        # Keras 3 writes no "module" for these ops in legacy .h5 configs.
        if lcfg.get("class_name") in _OPS and str(lcfg.get("module", "keras.src.ops")).startswith(
                "keras.src.ops"):
            layer = OpLayer(lcfg["class_name"], lcfg.get("config"), name=lcfg.get("name"),
                            module=lcfg.get("module") or "keras.src.ops.numpy")
        else:
            layer = deserialize_layer(lcfg, keras_version)
        name = lcfg.get("name", layer.name)
        if name in layers:
            raise ValueError(f"Duplicate layer name '{name}' in the config.")
        layers[name] = layer
        pending.extend((layer, name, n) for n in lcfg.get("inbound_nodes", []))
    # tf_keras numbers a nested model's nodes from 1 when the model has its own
    # InputLayer (its "first node" links its inputs to its outputs and is never
    # saved): a placeholder keeps our lists aligned with those numbers.
    legacy = any(isinstance(n, list) for lcfg in layer_cfgs
                 for n in lcfg.get("inbound_nodes", []) or [])
    created = {name: [] for name in layers}
    for lcfg in layer_cfgs:
        name = lcfg.get("name")
        if legacy and name in layers and _is_model(layers[name]) and _first_is_input(lcfg):
            created[name].append([])
    for name, layer in layers.items():
        if isinstance(layer, InputLayer):
            created[name].append([input_tensor(layer)])
    names = set(layers)
    while pending:  # replay nodes once their inputs exist (Keras's deferred queue)
        left = []
        for layer, name, node_data in pending:
            try:
                created[name].append(_call_node(layer, node_data, created, names))
            except (KeyError, IndexError):
                left.append((layer, name, node_data))
        if len(left) == len(pending):
            raise ValueError("Cannot connect the model config: the inputs of layers "
                             f"{[n for _, n, _ in left]} are never produced.")
        pending = left

    def one(ref):
        # Keras 3 counts a nested functional model's nodes from 1 in these lists only.
        node = ref[1] - int(not legacy and _is_functional(layers[ref[0]]))
        try:
            return created[ref[0]][node][ref[2]]
        except IndexError:
            raise ValueError(f"The model config names output {ref[:3]}, which no layer "
                             "call produces.") from None

    def endpoints(spec):
        if _is_ref(spec, names):
            return one(spec)
        if isinstance(spec, dict):
            return {k: one(s) for k, s in spec.items()}
        return [one(s) for s in spec]

    cls = cls or Model
    model = cls(inputs=endpoints(config.get("input_layers", [])),
                outputs=endpoints(config.get("output_layers", [])),
                name=config.get("name"), backend=backend,
                trainable=config.get("trainable", True) is not False)
    model._keras_version = keras_version  # whose mask rules a nested model follows
    return model


def _first_is_input(lcfg):
    inner = (lcfg.get("config") or {}).get("layers") if isinstance(lcfg.get("config"), dict) \
        else None
    return bool(inner) and isinstance(inner[0], dict) and inner[0].get("class_name") == "InputLayer"
