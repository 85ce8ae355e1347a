"""Model configs out: a model's Keras 3 config and whole-model dict (what ``to_json``
writes); each layer's entry is :func:`gpulstm.models.serialization.serialize_layer`'s."""
from gpulstm.layers._common import dtype_policy
from gpulstm.models.ops import OpLayer
from gpulstm.models.serialization import _is_functional, _is_model, serialize_layer
from gpulstm.models.symbolic import _nodes, map_structure


def _tensor_ref(t, node_index_in_model):
    layer, node_index, tensor_index = t._keras_history
    return {"class_name": "__keras_tensor__",
            "config": {"shape": list(t.shape), "dtype": t.dtype,
                       "keras_history": [layer.name, node_index_in_model(layer, node_index),
                                         tensor_index]}}


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
            {"args": wrap(map_structure(ref, n.args)),
             "kwargs": map_structure(ref, n.kwargs)}
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
