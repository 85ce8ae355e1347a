"""``model.summary()`` in tf.keras's plain-text layout (as the seed notebook prints it)."""
from gpulstm.layers.core import InputLayer
from gpulstm.layers._common import shape_str
from gpulstm.models.nested import class_name
from gpulstm.models.weight_order import trainable_count


def _shape_text(shape):
    if isinstance(shape, list):
        return "[" + ", ".join(_shape_text(s) for s in shape) + "]"
    return shape_str(shape)


def _row(fields, positions):
    """tf.keras's ``print_row``: columns padded to ``positions``, long cells wrapped."""
    left = [str(x) for x in fields]
    lines = []
    while any(left):
        line = ""
        for col in range(len(left)):
            start = positions[col - 1] if col > 0 else 0
            space = 2 if col != len(positions) - 1 else 0
            cutoff = positions[col] - start - space
            fit = left[col][:cutoff]
            # Break after a tuple / list item, as tf.keras does.
            breaks = [fit.find(s) + len(s) for s in ("),", "},", "],", "',") if fit.find(s) >= 0]
            if breaks:
                cutoff = min(breaks)
                fit = fit[:cutoff]
            if col == 0:
                line += " "
            line += fit + " " * space
            left[col] = left[col][cutoff:]
            line += " " * (positions[col] - len(line))
        lines.append(line)
    return lines


def _model_nodes(model, layer):
    in_model = {id(n) for n in model._exec_nodes}
    return [n for n in getattr(layer, "_inbound_nodes", []) if id(n) in in_model]


def _output_shape(model, layer):
    # tf_keras: one shape when every call of the layer gave the same, else "multiple"
    nodes = getattr(layer, "_inbound_nodes", []) or _model_nodes(model, layer)
    if len({tuple(t.shape for t in n.outputs) for n in nodes}) != 1:
        return "multiple"
    shapes = [t.shape for t in nodes[0].outputs]
    if isinstance(layer, InputLayer):
        return _shape_text(shapes)  # tf.keras shows an InputLayer's shape as a list
    return _shape_text(shapes[0] if len(shapes) == 1 else shapes)


def _sequential_like(model):
    from gpulstm.models.sequential import Sequential

    if isinstance(model, Sequential):
        return True
    for nodes in model._nodes_by_depth.values():
        if len(nodes) > 1 or (len(nodes) == 1 and len(nodes[0].input_tensors) > 1):
            return False
    return all(len(_model_nodes(model, layer)) <= 1 for layer in model.layers)


def summary_lines(model, line_length=None, positions=None):
    """The lines ``summary()`` prints."""
    if not model.built:
        raise ValueError(f"Model '{model.name}' has not been built yet. Add an "
                         "`Input(shape=...)` first, or call `model.build(input_shape)`.")
    seq = _sequential_like(model)
    if seq:
        line_length = line_length or 65
        positions = positions or [0.45, 0.85, 1.0]
        header = ["Layer (type)", "Output Shape", "Param #"]
    else:
        line_length = line_length or 98
        positions = positions or [0.3, 0.6, 0.70, 1.0]
        header = ["Layer (type)", "Output Shape", "Param #", "Connected to"]
    if positions[-1] <= 1:
        positions = [int(line_length * p) for p in positions]
    lines = [f'Model: "{model.name}"', "_" * line_length]
    lines += _row(header, positions)
    lines.append("=" * line_length)
    for layer in model.layers:
        fields = [f"{layer.name} ({class_name(layer)})", _output_shape(model, layer),
                  layer.count_params() if layer.built else 0]
        if not seq:
            conns = []
            for node in _model_nodes(model, layer):
                for t in node.input_tensors:
                    src, node_index, tensor_index = t._keras_history
                    conns.append(f"{src.name}[{node_index}][{tensor_index}]")
            fields.append(conns)
        lines += _row(fields, positions)
        lines.append(" " * line_length)
    total = model.count_params()
    trainable = trainable_count(model)
    lines += ["=" * line_length, f"Total params: {total:,}",
              f"Trainable params: {trainable:,}",
              f"Non-trainable params: {total - trainable:,}", "_" * line_length]
    return lines
