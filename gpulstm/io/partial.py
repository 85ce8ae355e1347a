"""``model.load_weights(path, by_name=..., skip_mismatch=...)``: Keras's partial loading,
and the file's ``keras_version`` for the layers it fills.

Keras 3 files (``.keras``, ``.weights.h5``) load by the model's structure; with
``skip_mismatch`` the layers that do not fit keep their weights (:func:`load_skipping`).
``by_name`` is for legacy ``.h5`` only, and ``skip_mismatch`` goes with ``by_name``
there, as Keras refuses otherwise (:func:`check_arguments`).

By name (tf_keras ``hdf5_format.load_weights_from_hdf5_group_by_name``): each layer
group of the file goes to the model's top-level layer of the same name; file layers
the model lacks, and model layers the file lacks, are left alone.  A layer whose
weight count differs is an error, or with ``skip_mismatch`` skipped with a warning; a
weight whose shape differs likewise (tf_keras skips that weight alone and loads the
layer's others).  CuDNN weights are converted first (:mod:`gpulstm.models.cudnn`).
Everything is checked before any weight changes: an error leaves the model as it was.

Keras versions: a file's ``keras_version`` says which hard_sigmoid its layers were
trained with (Keras 1/2 and tf_keras: ``clip(0.2 x + 0.5)``, Keras 3: ``clip(x / 6 +
0.5)``).  A filled layer that uses hard_sigmoid and was given no ``keras_version`` takes
the file's; one built for the other generation keeps its own, with a warning naming
both.
"""
import logging
import os
import sys
import warnings

from .common import ModelFileError, attr_text, open_h5

log = logging.getLogger("gpulstm.io")


def check_arguments(path, kind, by_name, skip_mismatch):
    """Refuse the combinations Keras refuses (tf_keras for ``.h5``, Keras 3 otherwise).

    ``kind``: ``"hdf5"``, ``"zip"`` or None (not a file: the loader reports that)."""
    if kind is None:
        return
    name = str(path)
    legacy = kind == "hdf5" and not name.endswith(".weights.h5")
    if by_name and not legacy:
        raise ValueError("`by_name` only supports loading legacy '.h5' or '.hdf5' files. "
                         f"Received: {path}")
    if legacy and skip_mismatch and not by_name:
        raise ValueError("When calling model.load_weights, skip_mismatch can only be set to "
                         "True when by_name is True.")


def _weight_group(path, f):
    if "layer_names" not in f.attrs and "layer_names0" not in f.attrs and "model_weights" in f:
        return f["model_weights"], "model_weights/"
    return f, ""


def _version(f, group):
    for g in (group, f):
        if "keras_version" in g.attrs:
            try:
                return attr_text(g.attrs["keras_version"])
            except (TypeError, UnicodeDecodeError, OSError):
                return None
    return None


_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _warn(message):
    """A UserWarning attributed to the first caller outside gpulstm (the user's line)."""
    frame, level = sys._getframe(0), 1
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, UserWarning, stacklevel=level)


def _skip(k, layer, why):
    _warn(f"Skipping loading weights for layer #{k} (named {layer.name}) due to mismatch in "
          f"{why}")


def _plan_layer(path, k, layer, values, parts, skip_mismatch):
    """The layer's new weights (get_weights order), or None to leave it; raises on a misfit."""
    from gpulstm.models.cudnn import convert
    from gpulstm.models.weight_order import layer_to_get_weights_order

    current = layer.get_weights()
    ordered = layer_to_get_weights_order(layer, list(values))
    parts = layer_to_get_weights_order(layer, list(parts))
    try:
        ordered = convert(layer, ordered)
    except ValueError as e:
        raise ModelFileError(path, parts[0] if parts else None, str(e)) from None
    if len(ordered) != len(current):
        why = (f"Layer expects {len(current)} weight(s). Received {len(ordered)} saved "
               "weight(s)")
        if skip_mismatch:
            _skip(k, layer, f"number of weights. {why}")
            return None
        raise ModelFileError(path, parts[0] if parts else None,
                             f"Weight count mismatch for layer #{k} (named {layer.name}). {why}")
    new, filled = list(current), False
    for i, (w, ref, part) in enumerate(zip(ordered, current, parts)):
        if tuple(w.shape) != tuple(ref.shape):
            detail = (f"Weight expects shape {tuple(ref.shape)}. Received saved weight with "
                      f"shape {tuple(w.shape)}")
            if skip_mismatch:
                _skip(k, layer, f"shape for weight {part}. {detail}")
                continue
            raise ModelFileError(path, part, f"Shape mismatch in layer #{k} (named "
                                             f"{layer.name}) for weight {part}. {detail}")
        new[i], filled = w, True
    return new if filled else None


def load_by_name(model, path, skip_mismatch=False):
    """Load a legacy ``.h5`` file's weights into ``model``'s layers of the same names."""
    from .legacy_h5 import read_weight_groups

    f = open_h5(path, path, None)
    try:
        group, where = _weight_group(path, f)
        version = _version(f, group)
        weights, parts, per_layer = read_weight_groups(path, group, where)
    except (OSError, RuntimeError, KeyError) as e:
        raise ModelFileError(path, None, f"corrupted HDF5 file ({e})") from None
    finally:
        f.close()
    index = {layer.name: layer for layer in model.layers}
    plan, pos = [], 0
    for k, (lname, n) in enumerate(per_layer):
        values, wparts = weights[pos:pos + n], parts[pos:pos + n]
        pos += n
        layer = index.get(lname)
        if layer is None or (n == 0 and not layer.get_weights()):
            continue
        new = _plan_layer(path, k, layer, values, wparts, skip_mismatch)
        if new is not None:
            plan.append((layer, new))
    _set_all(plan)
    apply_file_version([layer for layer, _ in plan], version, path)
    return model


def _set_all(plan):
    """``layer.set_weights(new)`` for each ``(layer, new)``; all or nothing."""
    done = []
    try:
        for layer, new in plan:
            old = layer.get_weights()
            layer.set_weights(new)
            done.append((layer, old))
    except BaseException:
        for layer, old in done:
            layer.set_weights(old)
        raise


def load_skipping(model, path, kind):
    """Keras 3's ``load_weights(path, skip_mismatch=True)`` for ``.keras`` / ``.weights.h5``.

    The file's tree is read for the model's own structure (as Keras 3 reads it); a
    top-level layer whose weights do not fit (count or shape) keeps its own, and one
    warning in Keras 3's words lists them.  Keras 3 skips per weight-owning object (an
    LSTM's cell, each layer inside a nested model); gpulstm per top-level layer.
    """
    import json
    import zipfile

    from .expected import from_model, member_limit
    from .keras_zip import read_member, read_weights_tree
    from gpulstm.models.weight_order import _reorder, get_weights_order

    config = json.loads(model.to_json())
    source, part = path, path
    if kind == "zip":
        try:
            with zipfile.ZipFile(path, "r") as zf:
                source = read_member(path, zf, "model.weights.h5",
                                     member_limit(from_model(model, False)))
        except (zipfile.BadZipFile, OSError, EOFError) as e:
            raise ModelFileError(path, None, f"not a readable .keras zip archive ({e})") from None
        part = "model.weights.h5"
    reader = read_weights_tree(path, source, config, part, checked=False)
    by_name, pos = {}, 0
    for lname, n in reader.layer_weights:
        by_name[lname] = (reader.weights[pos:pos + n], reader.paths[pos:pos + n])
        pos += n
    plan, failed = [], []
    for layer in model.layers:
        current = layer.get_weights()
        values, parts = by_name.get(layer.name, ([], []))
        if not current and not values:
            continue
        values = _reorder(values, list(range(len(values))), get_weights_order(layer))
        if len(values) != len(current):
            failed.append((layer, f"Layer '{layer.name}' expected {len(current)} variables, but "
                                  f"received {len(values)} variables during loading."))
            continue
        bad = [(p, tuple(w.shape), tuple(c.shape)) for w, c, p in zip(values, current, parts)
               if tuple(w.shape) != tuple(c.shape)]
        if bad:
            p, got, want = bad[0]
            failed.append((layer, f"Layer '{layer.name}': the weight at {p} has shape {got}; "
                                  f"the layer's has shape {want}."))
            continue
        plan.append((layer, values))
    _set_all(plan)
    if failed:
        _warn(f"A total of {len(failed)} objects could not be loaded. Example error message for "
              f"object {failed[0][0]!r}:\n\n{failed[0][1]}\n\nList of objects that could not "
              f"be loaded:\n{[layer for layer, _ in failed]}")
    return model


def _leaves(layers):
    from gpulstm.models.weight_order import _children

    for layer in layers:
        kids = _children(layer)
        if kids is None:
            yield layer
        else:
            yield from _leaves(kids)


_FORMULA = {2: "clip(0.2 * x + 0.5, 0, 1)", 3: "clip(x / 6 + 0.5, 0, 1)"}


def _generation(version):
    from gpulstm.activations import keras_major

    return 2 if keras_major(version) <= 2 else 3


def _uses_hard_sigmoid(layer):
    return any(getattr(layer, a, None) == "hard_sigmoid"
               for a in ("activation", "recurrent_activation"))


def _adopt(layer, version):
    """Re-resolve the layer's activations for Keras ``version``."""
    from gpulstm import activations as acts
    from gpulstm.layers._common import resolve_activation
    from gpulstm.layers.lstm import LSTM

    layer.keras_version = str(version)
    if isinstance(layer, LSTM):
        layer._act = acts.resolve(layer.activation, version, "activation")
        layer._ract = acts.resolve(layer.recurrent_activation, version, "recurrent_activation")
    else:
        layer.activation, layer._act = resolve_activation(layer.activation, version)
        layer._act_xp = getattr(layer._act, "with_xp", None)


def apply_file_version(layers, version, path):
    """Give the file's Keras generation to the filled ``layers`` that use hard_sigmoid."""
    if version is None:
        return
    file_gen = _generation(version)
    for leaf in _leaves(layers):
        own = getattr(leaf, "keras_version", None)
        if not _uses_hard_sigmoid(leaf) or _generation(own) == file_gen:
            continue
        if own is None:
            _adopt(leaf, version)
            log.info("layer '%s': hard_sigmoid as Keras %s computes it (%s), from %s",
                     leaf.name, version, _FORMULA[file_gen], path)
            continue
        _warn(
            f"Layer '{leaf.name}' uses hard_sigmoid as Keras {own} computes it "
            f"({_FORMULA[_generation(own)]}), but its weights come from "
            f"{path}, written by Keras {version}, whose hard_sigmoid is {_FORMULA[file_gen]}. "
            f"The layer keeps its own formula; build it with keras_version={version!r} to "
            "compute what the file's model computed.")


__all__ = ["check_arguments", "load_by_name", "load_skipping", "apply_file_version"]
