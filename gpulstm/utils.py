"""Keras utilities: ``to_categorical``, ``plot_model`` and the custom-object scope."""
import os

import numpy as np

from gpulstm._custom_objects import (CustomObjectScope, custom_object_scope,  # noqa: F401
                                     get_custom_objects, register_keras_serializable)


def to_categorical(x, num_classes=None):
    """One-hot encode integer class ids: shape ``x.shape + (num_classes,)``, float32.

    As in Keras, a trailing axis of size 1 is dropped first.
    """
    x = np.asarray(x)
    if x.dtype.kind == "f":
        if not np.all(x == np.round(x)):
            raise ValueError("Expected integer class ids. Received: non-integer values")
        x = x.astype("int64")
    elif x.dtype.kind not in "iu":
        raise ValueError(f"Expected integer class ids. Received: dtype={x.dtype}")
    shape = x.shape
    if shape and shape[-1] == 1 and len(shape) > 1:
        shape = shape[:-1]
    x = x.reshape(-1)
    if x.size and x.min() < 0:
        raise ValueError(f"Expected non-negative class ids. Received: minimum {x.min()}")
    if num_classes is None:
        num_classes = int(x.max()) + 1 if x.size else 0
    elif x.size and x.max() >= num_classes:
        raise ValueError(f"Class id {x.max()} is out of range for num_classes={num_classes}.")
    out = np.zeros((x.size, num_classes), dtype="float32")
    out[np.arange(x.size), x] = 1.0
    return out.reshape(shape + (num_classes,))


def _label(text):
    return text.replace("\\", "\\\\").replace('"', '\\"')


def model_to_dot(model, show_shapes=True, show_layer_names=True, rankdir="TB", dpi=96):
    """The Graphviz DOT source of the model's layer graph (a string; needs nothing)."""
    from gpulstm.models.summary import _model_nodes, _output_shape

    lines = [f'digraph "{_label(model.name)}" {{', f'  rankdir="{rankdir}";', f"  dpi={dpi};",
             '  node [shape="record", fontname="Helvetica"];']
    ids = {}
    for i, layer in enumerate(model.layers):
        ids[layer.name] = f"n{i}"
        title = f"{layer.name} | {type(layer).__name__}" if show_layer_names else type(layer).__name__
        if show_shapes:
            nodes = _model_nodes(model, layer)
            ins = [t.shape for n in nodes for t in n.input_tensors]
            in_txt = ", ".join(str(s) for s in ins) if ins else "-"
            title += f" | {{input: | output:}} | {{{in_txt} | {_output_shape(model, layer)}}}"
        lines.append(f'  n{i} [label="{{{_label(title)}}}"];')
    for layer in model.layers:
        for node in _model_nodes(model, layer):
            for t in node.input_tensors:
                src = t._keras_history[0].name
                if src in ids:
                    lines.append(f"  {ids[src]} -> {ids[layer.name]};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def plot_model(model, to_file="model.png", show_shapes=True, show_layer_names=True,
               rankdir="TB", dpi=96, **kwargs):
    """Draw the layer graph with shapes to ``to_file`` (.png, .svg, .pdf or .dot).

    ``.dot`` files are written directly; images need the ``graphviz`` Python package
    and the Graphviz ``dot`` program (``pip install graphviz`` and e.g.
    ``apt-get install graphviz``).
    """
    dot = model_to_dot(model, show_shapes, show_layer_names, rankdir, dpi)
    ext = os.path.splitext(str(to_file))[1].lower().lstrip(".") or "png"
    if ext == "dot":
        with open(to_file, "w") as f:
            f.write(dot)
        return to_file
    try:
        import graphviz
    except ImportError:
        raise ImportError(
            "plot_model needs the `graphviz` Python package and the Graphviz `dot` program "
            "to write images. Install them (pip install graphviz; apt-get install graphviz "
            "or brew install graphviz), or pass to_file='model.dot' to get the DOT source."
        ) from None
    try:
        data = graphviz.Source(dot).pipe(format=ext)
    except graphviz.ExecutableNotFound:
        raise ImportError("plot_model found the `graphviz` package but not the Graphviz "
                          "`dot` program. Install Graphviz (apt-get install graphviz or "
                          "brew install graphviz).") from None
    with open(to_file, "wb") as f:
        f.write(data)
    return to_file
