"""A recurrent layer's packed weights (``backend.prepare``), cached per weights list."""


def prepared_for(layer, be, name, pack="prepare", ws=None):
    """``{"prepared": ...}`` for backend ``be`` (``name``), made once per weights list
    ``ws`` (default: the layer's current one); ``{}`` if the backend packs nothing.

    ``set_weights`` installs a new list, so a call racing with it never pairs one list's
    weights with another's packing.  Takes the layer's lock only around the cache.
    """
    prepare = getattr(be, pack, None)
    if prepare is None:
        return {}
    with layer._lock:
        ws = layer._weights if ws is None else ws
        args = (ws[0], ws[1], ws[2] if layer.use_bias else None)
        if layer._packed_from is not ws:
            if ws is not layer._weights:  # replaced meanwhile: pack for this call only
                return {"prepared": prepare(*args)}
            layer._prepared, layer._packed_from = {}, ws
        got = layer._prepared.get(name)
        if got is None:
            # Backends may pack weights (transposed copies, device arrays) once per
            # set of weights instead of once per call.
            got = layer._prepared[name] = prepare(*args)
    return {"prepared": got}
