"""``model.summary()``: Keras 3's table, or tf.keras's plain-text layout (the seed notebook's).

``style=None`` picks the layout of the Keras generation the model came from: tf_keras's
for a model read from a file or JSON whose ``keras_version`` is below 3, Keras 3's
otherwise. Keras 3's table is drawn with ``rich`` exactly as Keras 3 draws it (plain
text when captured with ``print_fn`` or when stdout is not a terminal).
"""
import math
import shutil

from gpulstm.layers.core import InputLayer
from gpulstm.layers._common import shape_str
from gpulstm.models.nested import class_name, keras2
from gpulstm.models.weight_order import trainable_count, weights_with_flags

STYLES = ("keras3", "tf_keras")


def pick_style(model, style=None):
    """The layout to print: ``style``, or the one of the Keras that wrote the model."""
    if style is None:
        return "tf_keras" if keras2(model) else "keras3"
    if style not in STYLES:
        raise ValueError(f"Expected `style` to be one of {list(STYLES)}, or None for the layout "
                         f"of the Keras generation the model came from. Received: style={style!r}")
    return style


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


def _require_built(model):
    if not model.built:
        raise ValueError(f"Model '{model.name}' has not been built yet. Add an "
                         "`Input(shape=...)` first, or call `model.build(input_shape)`.")


def summary_lines(model, line_length=None, positions=None):
    """The lines tf.keras's ``summary()`` prints."""
    _require_built(model)
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


# -- Keras 3 (keras/src/utils/summary_utils.py, rendered with rich like Keras 3) ----------
def _num(x):
    return f"[color(45)]{x}[/]" if x is None else f"[color(34)]{x}[/]"


def _bold(x):
    return f"[bold]{x}[/]"


def _k3_output_shape(layer):
    nodes = getattr(layer, "_inbound_nodes", [])
    if not nodes:
        return "?"
    shapes = ["(" + ", ".join(_num(d) for d in t.shape) + ")" for t in nodes[-1].outputs]
    return shapes[0] if len(shapes) == 1 else str(shapes).replace("'", "")


def _k3_connections(model, layer):
    conns = []
    for node in _model_nodes(model, layer):
        for t in node.input_tensors:
            src, node_index, tensor_index = t._keras_history
            conns.append(f"{src.name}[{_num(node_index)}][{_num(tensor_index)}]")
    return ", ".join(conns) or "-"


def _readable_size(size):
    for unit in ["B", "KB", "MB", "GB", "TB", "PB"]:
        if size / 1024 < 1:
            return "{:.2f} {}".format(size, unit)
        size /= 1024
    return "{:.2f} {}".format(size, "PB")


def _k3_totals(model):
    counts = {True: 0, False: 0}
    sizes = {True: 0, False: 0}
    for w, trainable in weights_with_flags(model):
        counts[trainable] += int(math.prod(w.shape))
        sizes[trainable] += int(math.prod(w.shape)) * w.dtype.itemsize * 8
    total = (counts[True] + counts[False], (sizes[True] + sizes[False]) / 8)
    return [(" Total params: ", total), (" Trainable params: ", (counts[True], sizes[True] / 8)),
            (" Non-trainable params: ", (counts[False], sizes[False] / 8))]


def _layer_range(layers, layer_range):
    """Keras 3's ``get_layer_index_bound_by_layer_name``: ``[first, last + 1]``."""
    import re

    if layer_range is None:
        return [0, len(layers)]
    if len(layer_range) != 2:
        raise ValueError("layer_range must be a list or tuple of length 2. Received: "
                         f"layer_range = {layer_range} of length {len(layer_range)}")
    if not isinstance(layer_range[0], str) or not isinstance(layer_range[1], str):
        raise ValueError(f"layer_range should contain string type only. Received: {layer_range}")
    lower = [i for i, layer in enumerate(layers) if re.match(layer_range[0], layer.name)]
    upper = [i for i, layer in enumerate(layers) if re.match(layer_range[1], layer.name)]
    if not lower or not upper:
        raise ValueError("Passed layer_names do not match the layer names in the model. "
                         f"Received: {layer_range}")
    if min(lower) > max(upper):
        return [min(upper), max(lower) + 1]
    return [min(lower), max(upper) + 1]


def _k3_rows(model, layer, seq, show_trainable, expand_nested, level=0):
    import rich.markup

    prefix = "   " * level + "└ " if level else ""
    name = rich.markup.escape(prefix + layer.name)
    name += f" ([color(33)]{rich.markup.escape(class_name(layer))}[/])"
    if not getattr(layer, "built", True):
        params = f"{_num(0)} (unbuilt)"
    else:
        params = _num(f"{layer.count_params():,}")
    row = [name, _k3_output_shape(layer), params]
    if not seq:
        row.append(_k3_connections(model, layer))
    if show_trainable:
        if getattr(layer, "weights", None):
            row.append("[bold][color(34)]Y[/][/]" if layer.trainable else "[bold][color(9)]N[/][/]")
        else:
            row.append(_bold("-"))
    rows = [row]
    if expand_nested and getattr(layer, "layers", None):
        for inner in layer.layers:
            rows += _k3_rows(model, inner, seq, show_trainable, expand_nested, level + 1)
    return rows


def print_keras3(model, line_length=None, positions=None, print_fn=None, expand_nested=False,
                 show_trainable=False, layer_range=None):
    """Print Keras 3's summary table of ``model`` (to stdout, or once to ``print_fn``)."""
    import rich.console
    import rich.markup
    import rich.table

    _require_built(model)
    seq = _sequential_like(model)
    if seq:
        default, header = 88, ["Layer (type)", "Output Shape", "Param #"]
        positions = positions or [0.45, 0.80, 1.0]
        alignment = ["left", "left", "right"]
    else:
        default, header = 108, ["Layer (type)", "Output Shape", "Param #", "Connected to"]
        positions = positions or [0.3, 0.56, 0.74, 1.0]
        alignment = ["left", "left", "right", "left"]
    if show_trainable:
        default += 12
        positions = [p * 0.90 for p in positions] + [1.0]
        header.append("Trainable")
        alignment.append("center")
    line_length = line_length or min(default, shutil.get_terminal_size().columns - 4)
    widths, current = [], 0
    for pos in positions:
        width = int(pos * line_length) - current
        if width < 4:
            raise ValueError("Insufficient console width to print summary.")
        widths.append(width)
        current += width
    columns = [rich.table.Column(name, justify=a, width=w)
               for name, a, w in zip(header, alignment, widths)]
    table = rich.table.Table(*columns, width=line_length, show_lines=True)
    first, stop = _layer_range(model.layers, layer_range)
    for layer in model.layers[first:stop]:
        for row in _k3_rows(model, layer, seq, show_trainable, expand_nested):
            table.add_row(*row)
    if print_fn:
        console = rich.console.Console(highlight=False, force_terminal=False, color_system=None)
        console.begin_capture()
    else:
        console = rich.console.Console(highlight=False)
    console.print(_bold(f'Model: "{rich.markup.escape(model.name)}"'))
    console.print(table)
    for label, (count, size) in _k3_totals(model):
        console.print(_bold(label) + _num(f"{count:,}") + f" ({_readable_size(size)})")
    if print_fn:
        print_fn(console.end_capture())
