"""Symbolic tensors and graph nodes: what ``layer(Input(...))`` builds.

``Layer._symbolic_call`` (the hook every gpulstm layer's ``__call__`` asks first) is
set here: when any argument is a :class:`KerasTensor` the call records a
:class:`Node` and returns symbolic outputs instead of computing anything.
"""
import numpy as np

from gpulstm.layers.base import Layer
from gpulstm.layers._common import shape_str


class KerasTensor:
    """A symbolic tensor: a shape (batch axis usually None), a dtype and its origin."""

    def __init__(self, shape, dtype, layer, node_index, tensor_index):
        self.shape = tuple(shape)
        self.dtype = dtype
        self._keras_history = (layer, node_index, tensor_index)

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def name(self):
        layer, node_index, tensor_index = self._keras_history
        return f"{layer.name}[{node_index}][{tensor_index}]"

    def __array__(self, *args, **kwargs):
        raise TypeError(
            f"A symbolic KerasTensor ({self.name}) has no values. Build a model with "
            "`Model(inputs, outputs)` and call `model.predict(x)` to compute outputs.")

    def __repr__(self):
        return f"<KerasTensor shape={shape_str(self.shape)}, dtype={self.dtype}, name={self.name}>"


class Node:
    """One call of ``layer`` on symbolic ``args`` (a tensor or a list) and ``kwargs``."""

    def __init__(self, layer, args, kwargs, outputs):
        self.layer = layer
        self.args = args
        self.kwargs = kwargs
        self.outputs = outputs

    @property
    def is_input(self):
        return self.args is None

    @property
    def input_tensors(self):
        return flatten(self.args) + flatten(self.kwargs)

    @property
    def parent_nodes(self):
        return [node_of(t) for t in self.input_tensors]


def node_of(tensor):
    layer, node_index, _ = tensor._keras_history
    return layer._inbound_nodes[node_index]


def flatten(obj):
    """The KerasTensors inside nested lists, tuples and dicts, in order."""
    if isinstance(obj, KerasTensor):
        return [obj]
    if isinstance(obj, (list, tuple)):
        return [t for o in obj for t in flatten(o)]
    if isinstance(obj, dict):
        return [t for v in obj.values() for t in flatten(v)]
    return []


def map_structure(fn, obj):
    if isinstance(obj, KerasTensor):
        return fn(obj)
    if isinstance(obj, (list, tuple)):
        return [map_structure(fn, o) for o in obj]
    if isinstance(obj, dict):
        return {k: map_structure(fn, v) for k, v in obj.items()}
    return obj


def is_shape(s):
    return isinstance(s, (tuple, list)) and all(d is None or isinstance(d, (int, np.integer))
                                                for d in s)


def _nodes(layer):
    if "_inbound_nodes" not in layer.__dict__:
        layer._inbound_nodes = []
    return layer._inbound_nodes


def input_tensor(input_layer):
    """The symbolic output of an InputLayer (its node 0)."""
    nodes = _nodes(input_layer)
    if not nodes:
        t = KerasTensor(input_layer.batch_shape, input_layer.dtype, input_layer, 0, 0)
        nodes.append(Node(input_layer, None, {}, [t]))
    return nodes[0].outputs[0]


def _producer(t):
    return t._keras_history[0].name


def _incompatible(layer, err, shape, t):
    return ValueError(
        f"Input 0 of layer '{layer.name}' is incompatible with the layer: {err}. "
        f"Full shape received: {shape_str(shape)}, from layer '{_producer(t)}'. "
        f"Connect '{layer.name}' to a tensor of a matching shape.")


def _check_lstm(layer, x, initial_state):
    from gpulstm.layers import _lstm_checks as checks

    try:
        shape = checks.input_shape(x.shape, layer)
    except ValueError as e:
        raise ValueError(f"{e} The input comes from layer '{_producer(x)}'.") from None
    # A built Bidirectional (shared, or given weights=) checks its forward layer's kernel.
    kernel = getattr(getattr(layer, "forward_layer", layer), "kernel", None)
    if layer.built and kernel is not None and shape[-1] != kernel.shape[0]:
        raise _incompatible(layer, f"expected axis -1 of input shape to have value "
                                   f"{kernel.shape[0]}", x.shape, x)
    if initial_state is not None:
        # flat, or nested per cell (an RNN over StackedRNNCells)
        states = flatten(initial_state) if isinstance(initial_state, (list, tuple)) \
            else [initial_state]
        inner = getattr(layer, "forward_layer", layer)
        n = inner._n_states  # [h, c] or [h] per direction (per cell: RNN)
        want = n * (2 if type(layer).__name__ == "Bidirectional" else 1)
        if len(states) != want:
            raise ValueError(f"Layer '{layer.name}' expects `initial_state` to be a list of "
                             f"{want} tensors. Received: {len(states)} tensors")
        each = inner._state_units() if hasattr(inner, "_state_units") else [inner.units] * n
        for s, units in zip(states, each * (want // n)):
            if not isinstance(s, KerasTensor) or len(s.shape) != 2 or s.shape[-1] != units:
                raise ValueError(
                    f"Layer '{layer.name}' expects each initial state to have shape "
                    f"(batch, {units}). Received: {getattr(s, 'shape', s)} from layer "
                    f"'{_producer(s) if isinstance(s, KerasTensor) else '?'}'")
    return shape


def symbolic_call(layer, inputs, mask=None, training=None, **kwargs):
    """Record ``layer(inputs, ...)`` in the graph when any argument is symbolic.

    Returns ``NotImplemented`` when nothing is symbolic (the layer then computes).
    """
    all_args = flatten([inputs, mask, kwargs])
    if not all_args:
        return NotImplemented
    from gpulstm.layers.lstm import LSTM
    from gpulstm.layers.wrappers import Bidirectional

    leaves = inputs if isinstance(inputs, (list, tuple)) else [inputs]
    if not all(isinstance(t, KerasTensor) for t in leaves):
        raise ValueError(f"Layer '{layer.name}' was called on a mix of symbolic tensors and "
                         "arrays. Pass only outputs of `Input(...)` and of layers.")
    shape = [t.shape for t in inputs] if isinstance(inputs, (list, tuple)) else inputs.shape
    initial_state = kwargs.get("initial_state")
    if "initial_state" in getattr(layer, "call_kwargs", ()) and isinstance(inputs, (list, tuple)):
        inputs, kwargs["initial_state"] = inputs[0], list(inputs[1:]) or initial_state
        shape = inputs.shape  # tf_keras style [x, h0, c0] (ConvLSTM)
    if isinstance(layer, (LSTM, Bidirectional)):
        if isinstance(inputs, (list, tuple)):  # tf_keras style [x, h0, c0]
            inputs, initial_state = inputs[0], list(inputs[1:]) or initial_state
            kwargs["initial_state"] = initial_state
            shape = inputs.shape
        _check_lstm(layer, inputs, initial_state)
        if isinstance(layer, Bidirectional):
            err = layer.input_shape_error(shape)
            if err:
                raise _incompatible(layer, err, shape, inputs)
    else:
        err = layer.input_shape_error(shape) if hasattr(layer, "input_shape_error") else None
        if err:
            first = inputs if isinstance(inputs, KerasTensor) else None
            if first is None:
                names = ", ".join(f"'{_producer(t)}' {shape_str(t.shape)}" for t in inputs)
                raise ValueError(f"Layer '{layer.name}' cannot merge its inputs: {err}. "
                                 f"Inputs come from layers {names}.")
            raise _incompatible(layer, err, shape, first)
    if not layer.built:
        layer.build(shape)
    out_shape = layer.compute_output_shape(shape)
    nodes = _nodes(layer)
    index = len(nodes)
    dtype = getattr(layer, "dtype", "float32")
    if is_shape(out_shape):
        outputs = [KerasTensor(out_shape, dtype, layer, index, 0)]
        result = outputs[0]
    else:
        outputs = [KerasTensor(s, dtype, layer, index, i) for i, s in enumerate(out_shape)]
        result = list(outputs)
    call_kwargs = {k: v for k, v in kwargs.items() if v is not None}
    if mask is not None:
        call_kwargs["mask"] = mask
    if training is not None:
        call_kwargs["training"] = training
    nodes.append(Node(layer, inputs, call_kwargs, outputs))
    return result


# The hook gpulstm.layers.base.Layer subclasses consult first in __call__.
Layer._symbolic_call = symbolic_call


# -- layer.input / layer.output (Keras's node attributes) ----------------------------
def _node_attribute(layer, node_index, attr):
    nodes = layer.__dict__.get("_inbound_nodes") or []
    if not nodes:
        raise AttributeError(f"The layer {layer.name} has never been called and thus has no "
                             f"defined {attr}.")
    if not 0 <= node_index < len(nodes):
        raise ValueError(f"Asked to get {attr} at node {node_index}, but the operation has "
                         f"only {len(nodes)} inbound nodes.")
    node = nodes[node_index]
    values = node.input_tensors if attr == "input" else list(node.outputs)
    return values[0] if len(values) == 1 else values


def get_input_at(self, node_index):
    """The input tensor(s) of the layer's ``node_index``-th call (tf_keras's method)."""
    return _node_attribute(self, node_index, "input")


def get_output_at(self, node_index):
    """The output tensor(s) of the layer's ``node_index``-th call (tf_keras's method)."""
    return _node_attribute(self, node_index, "output")


# As in Keras 3, ``layer.input`` / ``layer.output`` are those of the layer's first call
# (a layer called several times: ``get_input_at(i)`` / ``get_output_at(i)`` for the others).
Layer.input = property(lambda self: _node_attribute(self, 0, "input"),
                       doc="The input tensor(s) of the layer's first call on symbolic tensors.")
Layer.output = property(lambda self: _node_attribute(self, 0, "output"),
                        doc="The output tensor(s) of the layer's first call on symbolic tensors.")
Layer.get_input_at = get_input_at
Layer.get_output_at = get_output_at
