"""A model used as a layer of another model (Keras's nested models).

Calling a built ``Model``/``Sequential`` on symbolic tensors records one node in
the outer graph, like any layer.  Running that node runs the inner graph with
the masks of its inputs and hands back the inner outputs' masks, which is what
Keras does (it computes a nested model's output masks from its graph).
"""
from gpulstm.layers._common import shape_str
from gpulstm.models.symbolic import KerasTensor, Node, _nodes, map_structure


def _leaves(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]


def symbolic_call(model, inputs, mask=None, training=None):
    """Record ``model(inputs)`` in the caller's graph; returns symbolic outputs.

    The result has the structure of the model's ``outputs``: one tensor for a
    single output, a list otherwise.
    """
    given = _leaves(inputs)
    if not all(isinstance(t, KerasTensor) for t in given):
        raise ValueError(f"Model '{model.name}' was called on a mix of symbolic tensors and "
                         "arrays. Pass only outputs of `Input(...)` and of layers.")
    if len(given) != len(model.inputs):
        raise ValueError(f"Model '{model.name}' expects {len(model.inputs)} input(s). "
                         f"Received: {len(given)} tensors")
    for i, (t, want) in enumerate(zip(given, model.inputs)):
        ok = len(t.shape) == len(want.shape) and all(
            w is None or d is None or w == d for w, d in zip(want.shape[1:], t.shape[1:]))
        if not ok:
            src = t._keras_history[0].name
            raise ValueError(
                f"Input {i} of model '{model.name}' is incompatible with the model: expected "
                f"shape={shape_str(want.shape)}, found shape={shape_str(t.shape)} (from layer "
                f"'{src}'). Connect '{model.name}' to a tensor of a matching shape.")
    nodes = _nodes(model)
    index = len(nodes)
    outputs = [KerasTensor(o.shape, o.dtype, model, index, i)
               for i, o in enumerate(model.outputs)]
    kwargs = {}
    if mask is not None:
        kwargs["mask"] = mask
    if training is not None:
        kwargs["training"] = training
    arg = given[0] if len(model.inputs) == 1 and not isinstance(inputs, (list, tuple)) \
        else list(given)
    nodes.append(Node(model, arg, kwargs, outputs))
    many = isinstance(model._nested_outputs, (list, tuple, dict))
    return list(outputs) if many else outputs[0]


def run(model, args, mask, training, backend):
    """Values and masks of the model's outputs for one outer node (two lists)."""
    from gpulstm.models.graph import run_graph

    xs = _leaves(args)
    if len(model.inputs) == 1 and len(xs) != 1:
        xs = [args]
    masks_in = mask if isinstance(mask, (list, tuple)) else [mask] * (len(xs) if mask is None
                                                                        else 1)
    values = {id(t): x for t, x in zip(model.inputs, xs)}
    masks = {id(t): m for t, m in zip(model.inputs, masks_in) if m is not None}
    values = run_graph(model._exec_nodes, model.inputs, values, training, backend, masks=masks,
                       keras2=keras2(model))
    return [values[id(t)] for t in model.outputs], [masks.get(id(t)) for t in model.outputs]


def takes_mask(layer):
    """Whether Keras 3's ``call`` of this layer has a ``mask`` argument."""
    return hasattr(layer, "_exec_nodes") or type(layer).__name__ in (
        "LSTM", "GRU", "SimpleRNN", "RNN", "Bidirectional", "TimeDistributed", "ConvLSTM1D",
        "ConvLSTM2D", "ConvLSTM3D")


def keras2(model):
    """Whether the model follows tf_keras's rules (it came from a tf_keras config)."""
    return str(getattr(model, "_keras_version", None) or "3").startswith(("1.", "2."))


class SymbolicMasks:
    """The masks Keras 3 knew when it built the graph, next to the run-time ones.

    Keras 3 records, for each call of a layer with a ``mask`` argument, the mask
    its input had when the graph was built, and uses it at run time; with none
    recorded, the layer takes the mask its input carries at run time.  The two
    differ only downstream of a nested model: Keras 3 builds its outputs without
    masks (they carry masks only at run time).  So a ``Concatenate`` of a nested
    model's output and a masked tensor gives the next LSTM an all-true mask in
    Keras 3.  tf_keras computes a nested model's masks from its graph, so models
    read from tf_keras configs (``_keras_version`` 2.x) keep one set of masks.
    """

    def __init__(self):
        self.masks = {}

    @classmethod
    def for_graph(cls, exec_nodes):
        return cls() if any(hasattr(n.layer, "_exec_nodes") for n in exec_nodes) else None

    def _of_args(self, node):
        m = map_structure(lambda t: self.masks.get(id(t)), node.args)
        return None if isinstance(m, list) and all(x is None for x in m) else m

    def mask_for(self, node, runtime_mask):
        """The mask a node's layer gets when no ``mask=`` was given explicitly."""
        if not takes_mask(node.layer):
            return runtime_mask
        known = self._of_args(node)
        return runtime_mask if known is None else known

    def record(self, node, args, used_mask, out_masks):
        """Note the build-time masks of the node's outputs."""
        from gpulstm.models.graph import output_masks

        layer, n = node.layer, len(node.outputs)
        if hasattr(layer, "_exec_nodes"):
            outs = out_masks if keras2(layer) else [None] * n
        else:
            known = used_mask if "mask" in node.kwargs else self._of_args(node)
            outs = out_masks if known is used_mask else output_masks(layer, args, known, n)
        for t, m in zip(node.outputs, outs):
            if m is not None:
                self.masks[id(t)] = m


def class_name(layer):
    """Keras's class name for a layer or a nested model ("Functional" for ``Model``)."""
    name = type(layer).__name__
    if name == "OpLayer":  # one of Keras 3's mask ops: its own class name
        return layer.op
    return "Functional" if name == "Model" else name
