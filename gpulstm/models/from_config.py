"""Model configs in: a ``Sequential`` or functional ``Model`` from tf_keras 2 or Keras 3
JSON / config, each layer built by :func:`gpulstm.models.serialization.deserialize_layer`
and the graph replayed node by node (nothing from the config is executed)."""
import json

from gpulstm import _custom_objects
from gpulstm.layers import _user
from gpulstm.models.ops import _OPS, OpLayer
from gpulstm.models.serialization import _is_functional, _is_model, deserialize_layer
from gpulstm.models.symbolic import input_tensor


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
    custom_objects : dict, optional
        ``{"ClassName": cls}`` for the config's custom layers (classes written on
        :class:`gpulstm.Layer`); Keras 3's registered names (``"package>ClassName"``)
        and plain class names both resolve. Nothing named in the JSON is imported.

    Returns
    -------
    Model or Sequential
        Built, with freshly initialized weights: call ``set_weights`` next.
    """
    try:
        d = json.loads(json_string)
    except (TypeError, ValueError) as e:
        raise ValueError(f"Expected a model JSON string. Received invalid JSON: {e}") from None
    with _custom_objects.passed(custom_objects):
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
    if _user.is_user_layer(layer):  # call(y_true, y_pred): every positional argument
        out = layer(*args, **kwargs)
    else:
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
