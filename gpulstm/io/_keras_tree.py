"""Walk a Keras ``model.weights.h5`` tree (the ``.keras`` / ``.weights.h5`` layout).

Weights are stored by *object path*, not by layer name: each layer's group is
``layers/<key>`` where ``<key>`` is the snake_case class name, deduplicated
``_1``, ``_2``... in ``config.layers`` order.  A Sequential's leading
InputLayer has no group; a functional model's InputLayers do.  Inside a layer,
its own variables are ``vars/0``, ``vars/1``... and children are sub-groups
whose order we know per class (Keras ``get_weights()`` order: own variables,
then the children's).
"""

from gpulstm.layers.base import to_snake_case  # Keras's rule, one copy

from .common import MAX_NESTING, check_layer_weights, ModelFileError, UnsupportedModelError, child, read_dataset

# Children that hold weights, in get_weights() order.  tf_keras's Bidirectional
# also writes an empty ``layer`` group (the unbuilt template): ignored.
_CHILDREN = {
    "LSTM": ("cell",),
    "GRU": ("cell",),
    "SimpleRNN": ("cell",),
    "RNN": ("cell",),
    "ConvLSTM1D": ("cell",),
    "ConvLSTM2D": ("cell",),
    "ConvLSTM3D": ("cell",),
    "Bidirectional": ("forward_layer", "backward_layer"),
    "TimeDistributed": ("layer",),
}
_IGNORED_CHILDREN = {"Bidirectional": ("layer",)}
_MODELS = ("Sequential", "Functional", "Model")


def layer_keys(model_cfg):
    """``[(key, layer_config)]`` for a model config's layers, in order."""
    cls = model_cfg.get("class_name")
    layers = (model_cfg.get("config") or {}).get("layers")
    if not isinstance(layers, list):
        raise TypeError(f"{cls} config has no 'layers' list")
    out, counts = [], {}
    for i, layer in enumerate(layers):
        if not isinstance(layer, dict) or not isinstance(layer.get("class_name"), str):
            raise TypeError(f"config.layers[{i}] is not a layer config")
        lcls = layer["class_name"]
        if cls == "Sequential" and i == 0 and lcls == "InputLayer":
            continue  # Sequential's own input: not a tracked layer, no group
        if str(layer.get("module") or "").startswith("keras.src.ops"):
            continue  # a Keras 3 mask op (NotEqual, Concatenate...): not a layer, no group
        base = to_snake_case(lcls)
        n = counts.get(base, 0)
        counts[base] = n + 1
        out.append((base if n == 0 else f"{base}_{n}", layer))
    return out


class TreeReader:
    """Collects weights from a weights tree, checking every group it visits."""

    def __init__(self, path, budget):
        self.path = path
        self.budget = budget  # [bytes still allowed]
        self.weights, self.paths, self.layer_weights = [], [], []
        self._checks = []  # (layer config, number of weights, group path) per top-level layer

    def _vars(self, group, where):
        vars_group = child(self.path, group, "vars", where + "/vars")
        if vars_group is None:
            return []
        names = list(vars_group.keys())
        if sorted(names, key=_index) != [str(i) for i in range(len(names))]:
            raise ModelFileError(self.path, where + "/vars",
                                 f"expected datasets named 0..{len(names) - 1}, found {sorted(names)}")
        return [(f"{where}/vars/{i}", child(self.path, vars_group, str(i), f"{where}/vars/{i}"))
                for i in range(len(names))]

    def _collect(self, group, layer_cfg, where, depth):
        if depth > MAX_NESTING:
            raise ModelFileError(self.path, where, "layers nested too deeply")
        if not isinstance(layer_cfg, dict):
            layer_cfg = {}
        cls = layer_cfg.get("class_name")
        inner = layer_cfg.get("config") if isinstance(layer_cfg.get("config"), dict) else {}
        out = self._vars(group, where)
        if cls in _MODELS:
            sub = child(self.path, group, "layers", where + "/layers")
            out += self.model_entries(sub, layer_cfg, where + "/layers", depth + 1) if sub is not None else []
            known = {"vars", "layers"}
        elif cls == "StackedRNNCells":
            out += self._cells(group, inner, where, depth)
            known = {"vars", "cells"}
        else:
            kids = _CHILDREN.get(cls, ())
            for name in kids:
                g = child(self.path, group, name, f"{where}/{name}")
                if g is None:
                    continue
                sub_cfg = _child_config(cls, name, inner)
                out += self._collect(g, sub_cfg, f"{where}/{name}", depth + 1)
            known = {"vars", *kids, *_IGNORED_CHILDREN.get(cls, ())}
        for name in group.keys():
            if name not in known and _has_datasets(group[name]):
                raise UnsupportedModelError(
                    self.path, f"{where}/{name}",
                    f"unexpected weights for a {cls} layer (not a layer type gpulstm can read)")
        return out

    def _cells(self, group, inner, where, depth):
        """A StackedRNNCells' cells: ``cells/<key>`` groups, keyed like a model's layers."""
        cells = inner.get("cells") if isinstance(inner.get("cells"), list) else []
        try:
            keyed = layer_keys({"config": {"layers": cells}})
        except TypeError as e:
            raise ModelFileError(self.path, where, str(e)) from None
        sub = child(self.path, group, "cells", where + "/cells")
        out = []
        for key, _ in keyed:
            g = child(self.path, sub, key, f"{where}/cells/{key}") if sub is not None else None
            if g is not None:
                out += self._collect(g, {"class_name": "Cell"}, f"{where}/cells/{key}", depth + 1)
        return out

    def model_entries(self, layers_group, model_cfg, where, depth=0):
        """The ``(path, dataset)`` list of every layer of a model, in order."""
        try:
            keyed = layer_keys(model_cfg)
        except TypeError as e:
            raise ModelFileError(self.path, "config.json", str(e)) from None
        out = []
        for key, layer_cfg in keyed:
            g = child(self.path, layers_group, key, f"{where}/{key}") if layers_group is not None else None
            lname = (layer_cfg.get("config") or {}).get("name", key)
            if g is None:
                entries = []
            else:
                entries = self._collect(g, layer_cfg, f"{where}/{key}", depth)
                vars_g = child(self.path, g, "vars", f"{where}/{key}/vars")
                attr = vars_g.attrs.get("name") if vars_g is not None else None
                if isinstance(attr, (bytes, str)) and isinstance(lname, str):
                    attr = attr.decode() if isinstance(attr, bytes) else attr
                    if attr != lname:
                        raise ModelFileError(
                            self.path, f"{where}/{key}",
                            f"weight group belongs to layer {attr!r} but the config puts "
                            f"{lname!r} there (config and weights do not match)")
            if depth == 0:
                self.layer_weights.append((lname, len(entries)))
                self._checks.append((layer_cfg, len(entries), f"{where}/{key}"))
            out += entries
        if layers_group is not None:
            expected = {k for k, _ in keyed}
            for name in layers_group.keys():
                if name not in expected and _has_datasets(layers_group[name]):
                    raise ModelFileError(self.path, f"{where}/{name}",
                                         "weights for a layer that the config does not have")
        return out

    def read(self, entries, checked=True):
        """Read ``entries``; ``checked``: compare each layer's weights with its config."""
        for part, ds in entries:
            self.weights.append(read_dataset(self.path, ds, part, self.budget))
            self.paths.append(part)
        if not checked:  # load_weights(skip_mismatch=True) compares them itself
            return
        pos = len(self.weights) - sum(n for _, n, _ in self._checks)
        for cfg, n, where in self._checks:
            check_layer_weights(self.path, cfg, self.weights[pos:pos + n], self.paths[pos:pos + n], where)
            pos += n


def _child_config(cls, name, inner):
    layer = inner.get("layer") if isinstance(inner.get("layer"), dict) else {}
    if cls == "Bidirectional":
        sub = inner.get("backward_layer") if name == "backward_layer" else None
        return sub if isinstance(sub, dict) else layer
    if cls == "TimeDistributed":
        return layer
    if cls == "RNN" and isinstance(inner.get("cell"), dict):
        return inner["cell"]  # a cell, or StackedRNNCells and its cells
    return {"class_name": "Cell"}  # RNN cells: own vars only


def _index(name):
    return int(name) if name.isdigit() else -1


def _has_datasets(obj):
    import h5py

    if isinstance(obj, h5py.Dataset):
        return True
    found = []

    def visit(_name, o):
        if isinstance(o, h5py.Dataset):
            found.append(1)
            return True
        return None

    obj.visititems(visit)
    return bool(found)
