"""Layer names in ``to_json`` that Keras 3 can load back.

Keras 3 names each new object from one counter per snake_case base name:
``concatenate``, ``concatenate_1``...; explicit names (every name in a config)
take no number.  Rebuilding a functional model from a config, each masked
``Concatenate`` call computes its mask with a *new* ``ops.concatenate``, named
``concatenate``, ``concatenate_1``... in call order, and that op joins the
graph once a layer consumes the mask.  Keras's own configs list these ops under
their names; gpulstm's configs carry masks implicitly, so a layer called
``concatenate`` (gpulstm's and Keras's first automatic name) would meet an op of
the same name, and Keras refuses the model ("The name "concatenate" is used 2
times in the model").  Which number the op gets depends on everything the Keras
session created before, so :func:`avoid_op_names` renames every layer named
``concatenate`` or ``concatenate_<n>`` in such a config to a name no op can take
(``concatenate`` -> ``concatenate_layer``); the model itself keeps its names.
"""
import re

from gpulstm.models.symbolic import flatten

_CONCAT = re.compile(r"^concatenate(_[0-9]+)?$")


def _may_carry_mask(t, memo):
    """Whether tensor ``t`` can carry a Keras mask (an over-estimate is harmless)."""
    key = id(t)
    if key not in memo:
        memo[key] = False  # guards against cycles
        layer, node_index, _ = t._keras_history
        node = layer._inbound_nodes[node_index]
        cls = type(layer).__name__
        if node.is_input or cls == "OpLayer":
            out = False
        elif "mask" in node.kwargs or hasattr(layer, "_exec_nodes"):
            out = True  # an explicit mask, or a nested model (masks from its graph)
        elif cls == "Embedding":
            out = bool(layer.mask_zero)
        elif cls == "Masking":
            out = True
        else:
            out = any(_may_carry_mask(p, memo) for p in flatten(node.args))
            if cls in ("LSTM", "GRU", "SimpleRNN", "RNN", "Bidirectional", "ConvLSTM1D",
                       "ConvLSTM2D", "ConvLSTM3D"):
                out = out and bool(getattr(layer, "return_sequences", True))
        memo[key] = out
    return memo[key]


def masked_concat_calls(model):
    """How many ``Concatenate`` calls in ``model`` (nested models too) may see a mask."""
    memo, count = {}, 0
    for node in model._exec_nodes:
        if hasattr(node.layer, "_exec_nodes"):
            count += masked_concat_calls(node.layer)
        elif type(node.layer).__name__ == "Concatenate" and not node.is_input and any(
                _may_carry_mask(t, memo) for t in flatten(node.args)):
            count += 1
    return count


def avoid_op_names(model_dict, k):
    """Rename, in place, layers that the ``k`` mask ops of a Keras 3 reload could clash with."""
    if k > 0:
        _visit(model_dict)
    return model_dict


def _visit(entry):
    if not isinstance(entry, dict):
        return
    cfg = entry.get("config")
    if not isinstance(cfg, dict) or not isinstance(cfg.get("layers"), list):
        return
    for layer in cfg["layers"]:
        _visit(layer)  # nested models: their own names
    if entry.get("class_name") != "Functional":
        return
    names = {lyr.get("name") for lyr in cfg["layers"]}
    mapping = {}
    for name in sorted(x for x in names if isinstance(x, str) and _CONCAT.match(x)):
        new = f"{name}_layer"
        while new in names or new in mapping.values():
            new += "_"
        mapping[name] = new
    if mapping:
        _rename(cfg, mapping)


def _rename(cfg, mapping):
    for layer in cfg["layers"]:
        if layer.get("name") in mapping:
            layer["name"] = mapping[layer["name"]]
            layer["config"]["name"] = layer["name"]
        for node in layer.get("inbound_nodes", []):
            _rename_refs(node, mapping)
    for key in ("input_layers", "output_layers"):
        cfg[key] = _rename_endpoints(cfg[key], mapping)


def _rename_refs(obj, mapping):
    if isinstance(obj, dict):
        hist = (obj.get("config") or {}).get("keras_history") \
            if obj.get("class_name") == "__keras_tensor__" else None
        if hist and hist[0] in mapping:
            hist[0] = mapping[hist[0]]
        for v in obj.values():
            _rename_refs(v, mapping)
    elif isinstance(obj, list):
        for v in obj:
            _rename_refs(v, mapping)


def _rename_endpoints(spec, mapping):
    if isinstance(spec, list) and len(spec) == 3 and isinstance(spec[0], str):
        return [mapping.get(spec[0], spec[0])] + spec[1:]
    return [_rename_endpoints(s, mapping) for s in spec]
