"""All-or-nothing updates of a model: a failing call leaves it exactly as it was.

``set_weights`` checks every array (count, shape, dtype) before replacing any and
puts back the layers already set if one still fails; ``predict`` and ``model(x)``
put back the states of stateful layers when a batch fails after earlier batches
ran.  States are replaced, never edited in place, so keeping the old arrays
(no copies) is enough.
"""
from gpulstm.layers._arrays import WEIGHTS_FIX, as_real_array

_WRAPPED = ("layer", "forward_layer", "backward_layer")


def stateful_leaves(layers):
    """Every layer, at any depth (wrappers, nested models), that keeps states across
    calls.  Runs on every ``model(x)``: attribute lookups only."""
    out = []
    for layer in layers:
        attrs = layer.__dict__
        if attrs.get("stateful") and "_states" in attrs:
            out.append(layer)
        if "_exec_nodes" in attrs:  # a nested Model / Sequential
            out.extend(stateful_leaves(attrs["_layers"]))
        for name in _WRAPPED:
            if name in attrs:
                out.extend(stateful_leaves([attrs[name]]))
    return out


class states_kept_on_error:
    """``with states_kept_on_error(model):`` puts back every stateful layer's states
    if the block raises (a class, not contextlib: it wraps every ``model(x)``)."""

    __slots__ = ("_kept",)

    def __init__(self, model):
        layers = stateful_leaves(model.__dict__.get("_layers", ()))
        self._kept = [(layer, layer._states) for layer in layers]

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            for layer, states in self._kept:
                layer._states = states
        return False


def set_weights(model, weights):
    """``model.set_weights(weights)``: everything checked first; all or nothing."""
    weights = list(weights)
    current = [layer.get_weights() for layer in model.layers]
    owners = [layer.name for layer, ws in zip(model.layers, current) for _ in ws]
    flat = [w for ws in current for w in ws]
    if len(weights) != len(flat):
        raise ValueError(f"Model '{model.name}' expects {len(flat)} weight arrays. "
                         f"Received: {len(weights)} arrays. {WEIGHTS_FIX}.")
    for i, (w, ref) in enumerate(zip(weights, flat)):
        arr = as_real_array(w, f"weight {i} (layer '{owners[i]}')", WEIGHTS_FIX)
        if arr.shape != ref.shape:
            raise ValueError(f"Weight {i} (layer '{owners[i]}') expected shape {ref.shape}. "
                             f"Received: weight with shape {arr.shape}")
    done, pos = [], 0
    try:
        for layer, ws in zip(model.layers, current):
            if ws:
                layer.set_weights(weights[pos:pos + len(ws)])
                done.append((layer, ws))
                pos += len(ws)
    except BaseException:
        for layer, ws in done:
            layer.set_weights(ws)  # the copies taken above
        raise


def stateful_batch(model):
    """The batch size a stateful model's states were made for, or None."""
    for t in model.inputs:
        if t.shape[0] is not None:
            return t.shape[0]
    for layer in stateful_leaves(model.__dict__.get("_layers", ())):
        if layer._states is not None:
            return layer._states[0].shape[0]
    return None
