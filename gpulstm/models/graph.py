"""Graph mapping and execution of a functional model (Keras's ``map_graph`` order)."""
from collections import defaultdict


from gpulstm import _xp
from gpulstm.layers.core import Embedding
from gpulstm.layers import _user
from gpulstm.layers.embedded import call_on_ids
from gpulstm.layers.lstm import LSTM
from gpulstm.layers.wrappers import Bidirectional, TimeDistributed
from gpulstm.models import nested, profile
from gpulstm.models.symbolic import KerasTensor, flatten, map_structure, node_of


def map_graph(inputs, outputs):
    """``(nodes in execution order, layers in Keras order, nodes_by_depth)``.

    Follows Keras: a depth-first walk from the outputs numbers the layers; layers
    are then listed by decreasing depth, ties broken by that number.
    """
    finished, in_progress, order, layer_index = set(), set(), [], {}
    input_ids = {id(t) for t in inputs}

    def visit(t):
        node = node_of(t)
        if id(node) in finished:
            return
        if id(node) in in_progress:
            raise ValueError(f"The graph has a cycle at layer '{node.layer.name}'.")
        layer_index.setdefault(node.layer, len(layer_index))
        in_progress.add(id(node))
        if not node.is_input and id(t) not in input_ids:
            for parent in node.input_tensors:
                visit(parent)
        finished.add(id(node))
        in_progress.discard(id(node))
        order.append(node)

    for t in outputs:
        visit(t)
    node_depth, layer_depth = {}, {}
    for node in reversed(order):
        depth = max(node_depth.setdefault(id(node), 0), layer_depth.get(node.layer, 0))
        layer_depth[node.layer] = depth
        node_depth[id(node)] = depth
        if not node.is_input:
            for parent in node.parent_nodes:
                node_depth[id(parent)] = max(depth + 1, node_depth.get(id(parent), 0))
    for t in inputs:
        layer = t._keras_history[0]
        if layer not in layer_depth:  # an input no output depends on
            layer_depth[layer] = 0
            layer_index[layer] = -1
            node_depth[id(node_of(t))] = 0
            order.append(node_of(t))
    by_depth = defaultdict(list)
    for layer, d in layer_depth.items():
        by_depth[d].append(layer)
    layers = []
    for d in sorted(by_depth, reverse=True):
        layers.extend(sorted(by_depth[d], key=lambda lyr: layer_index[lyr]))
    nodes_by_depth = defaultdict(list)
    for node in order:
        nodes_by_depth[node_depth[id(node)]].append(node)
    exec_nodes = [n for d in sorted(nodes_by_depth, reverse=True) for n in nodes_by_depth[d]]
    for node in exec_nodes:  # every input a node needs must be computable
        if node.is_input and not any(id(o) in input_ids for o in node.outputs):
            raise ValueError(
                f"Graph disconnected: cannot obtain the value of tensor {node.outputs[0]!r}. "
                "Pass it (its Input) in `inputs=`.")
    return exec_nodes, layers, dict(nodes_by_depth)


def output_masks(layer, inputs, mask, n_out):
    """Keras's mask for each output of ``layer`` (a list of length ``n_out``)."""
    if isinstance(layer, LSTM):
        m = mask[0] if isinstance(mask, list) else mask
        out = m if layer.return_sequences else None
        return [out] + [None] * (n_out - 1)
    m = layer.compute_mask(inputs, mask) if hasattr(layer, "compute_mask") else None
    if isinstance(m, list):
        return m + [None] * (n_out - len(m))
    return [m] + [None] * (n_out - 1)


def call_layer(layer, args, kwargs, mask, training, backend, source=None):
    """Run one node numerically; returns a list of output arrays.

    ``source``: ``(embedding layer, ids)`` when ``args`` is that Embedding's output (an
    LSTM then gathers from a projected table, see ``gpulstm.layers.embedded``).
    """
    if source is not None and type(layer) is LSTM:
        out = call_on_ids(layer, source[0], source[1], mask, kwargs.get("initial_state"),
                          training, backend)
        if out is not NotImplemented:
            return list(out) if isinstance(out, (list, tuple)) else [out]
    if type(layer) is Bidirectional:
        out = layer.call(args, mask=mask, initial_state=kwargs.get("initial_state"),
                         training=training, backend=backend, source=source)
    elif isinstance(layer, (LSTM, Bidirectional)):
        out = layer.call(args, mask=mask, initial_state=kwargs.get("initial_state"),
                         training=training, backend=backend)
    elif isinstance(layer, TimeDistributed):
        out = layer.call(args, mask=mask, training=training, backend=backend)
    elif _user.is_user_layer(layer):  # a user's layer: Keras's calling conventions
        out = _user.run(layer, args, kwargs, mask, training)
    else:  # call arguments a layer declares (Attention's use_causal_mask...) go with it
        extra = {k: kwargs[k] for k in getattr(layer, "call_kwargs", ()) if k in kwargs}
        out = layer.call(args, mask=mask, training=training, **extra)
    return list(out) if isinstance(out, (list, tuple)) else [out]


def _state_fed(node):
    """Whether Keras 3 leaves this node's layer without its propagated mask.

    Keras 3 fills a layer's ``mask`` argument from its input only when ``call``
    gets a single tensor argument; an LSTM or Bidirectional also given
    ``initial_state`` has two, so it runs unmasked (its outputs still carry the
    input's mask on).  tf_keras hands it the mask of its first input.
    """
    return node.kwargs.get("initial_state") is not None and "mask" not in node.kwargs


def run_graph(exec_nodes, inputs, values, training=None, backend=None, masks=None,
              keras2=False):
    """Evaluate the graph: ``values`` maps ``id(input tensor)`` to arrays.

    ``masks`` (optional, filled in place) maps ``id(tensor)`` to the tensor's mask:
    a nested model passes its inputs' masks in and reads its outputs' masks back.
    ``keras2``: follow tf_keras's mask rules (the model came from a tf_keras config)
    instead of Keras 3's.
    Local dicts only, so concurrent calls on a non-stateful model do not interfere.
    """
    values = dict(values)
    masks = {} if masks is None else masks
    embedded = {}  # id(Embedding output tensor) -> (the Embedding, its ids)
    sym = nested.SymbolicMasks.for_graph(exec_nodes)  # None unless a model is nested
    for node in exec_nodes:
        if node.is_input:
            continue
        get = values.__getitem__
        args = map_structure(lambda t: get(id(t)), node.args)
        kwargs = {k: map_structure(lambda t: get(id(t)), v) for k, v in node.kwargs.items()
                  if k not in ("mask", "training")}
        if "mask" in node.kwargs:  # an explicit mask= wins over the propagated one
            mask = map_structure(lambda t: _xp.asarray(get(id(t)), dtype=bool), node.kwargs["mask"])
        else:
            mask = map_structure(lambda t: masks.get(id(t)), node.args)
            if isinstance(mask, list) and all(m is None for m in mask):
                mask = None
            if sym is not None:
                mask = sym.mask_for(node, mask)
        node_training = node.kwargs.get("training", training) if training is None else training
        if hasattr(node.layer, "_exec_nodes"):  # a nested model
            outs, out_masks = nested.run(node.layer, args, mask, node_training, backend)
        else:
            call_mask = None if not keras2 and _state_fed(node) else mask
            source = embedded.get(id(node.args)) if embedded else None
            rec = profile.current()
            if rec is None:
                outs = call_layer(node.layer, args, kwargs, call_mask, node_training, backend,
                                  source)
            else:
                outs = profile.timed(rec, node.layer, call_layer, node.layer, args, kwargs,
                                     call_mask, node_training, backend, source)
            if type(node.layer) is Embedding:
                embedded[id(node.outputs[0])] = (node.layer, args)
            out_masks = None
        if len(outs) != len(node.outputs):
            raise RuntimeError(f"Layer '{node.layer.name}' returned {len(outs)} outputs, "
                               f"expected {len(node.outputs)}")
        if out_masks is None:
            out_masks = output_masks(node.layer, args, mask, len(outs))
        if sym is not None:
            sym.record(node, args, mask, out_masks)
        for t, v, m in zip(node.outputs, outs, out_masks):
            values[id(t)] = v
            if m is not None:
                masks[id(t)] = m
    return values


__all__ = ["map_graph", "run_graph", "call_layer", "output_masks", "KerasTensor", "flatten"]
