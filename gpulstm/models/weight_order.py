"""The orders Keras lists weights in when some layers are frozen (``trainable=False``).

Three orders of the same weights, each a permutation of the *natural* one (every
layer's own weights, then its sublayers', depth first: Keras 3's ``get_weights``,
and the ``.keras`` / ``.weights.h5`` trees):

* ``get_weights``: natural, except that tf_keras lists a trainable
  ``Bidirectional``'s trainable direction first when the other one is frozen
  (a Layer's ``weights`` are its ``trainable_weights + non_trainable_weights``;
  a Model's go layer by layer).
* legacy ``.h5`` (tf_keras and Keras 3 ``save``/``save_weights``): each top-level
  layer's group holds that layer's trainable weights, then its non-trainable ones,
  so a nested model with a frozen layer before a trainable one is stored out of
  ``get_weights`` order.

A weight is trainable when its layer and every layer or model around it are.
Permutations are lists of indices into the natural order.
"""
import numpy as np


def _children(layer):
    """The sublayers holding a layer's weights, in natural order (None for a leaf)."""
    from gpulstm.layers.wrappers import Bidirectional, TimeDistributed
    from gpulstm.models.functional import Model

    if isinstance(layer, Model):
        return layer.layers
    if isinstance(layer, Bidirectional):
        return [layer.forward_layer, layer.backward_layer]
    if isinstance(layer, TimeDistributed):
        return [layer.layer]
    return None


def _leaf_count(layer):
    from gpulstm.layers.lstm import LSTM

    if hasattr(layer, "_n_weights"):  # an RNN: its cells' weights
        return layer._n_weights()
    if isinstance(layer, LSTM):  # known before the layer is built
        return 3 if layer.use_bias else 2
    return len(layer.get_weights())


def trainable_flags(layer, parent=True):
    """Whether each weight of ``layer`` (natural order) is trainable."""
    on = bool(parent) and bool(getattr(layer, "trainable", True))
    kids = _children(layer)
    if kids is None:
        own = getattr(layer, "weight_trainable", None)  # BatchNormalization's moving stats
        if own is not None and layer.built:
            return [on and t for t in own]
        return [on] * _leaf_count(layer)
    return [f for k in kids for f in trainable_flags(k, on)]


def _trainable_first(order, flags):
    """``order`` with the trainable weights first, each group keeping its order."""
    return [i for i in order if flags[i]] + [i for i in order if not flags[i]]


def _keras2(layer):
    kv = getattr(layer, "keras_version", None)
    return kv is not None and str(kv).startswith(("1.", "2."))


def get_weights_order(layer):
    """The natural indices in the order ``layer.get_weights()`` lists them."""
    from gpulstm.layers.wrappers import Bidirectional

    kids = _children(layer)
    if kids is None:
        return list(range(_leaf_count(layer)))
    order, offset = [], 0
    for k in kids:
        order += [offset + i for i in get_weights_order(k)]
        offset += len(trainable_flags(k))
    if isinstance(layer, Bidirectional) and _keras2(layer):
        order = _trainable_first(order, trainable_flags(layer))
    return order


def legacy_h5_order(layer):
    """The natural indices in the order a legacy ``.h5`` group of ``layer`` stores them."""
    return _trainable_first(get_weights_order(layer), trainable_flags(layer))


def _model_order(model, per_layer):
    order, offset = [], 0
    for layer in model.layers:
        order += [offset + i for i in per_layer(layer)]
        offset += len(trainable_flags(layer))
    return order


def to_get_weights_order(model, weights, legacy_h5):
    """Reorder a model file's weights (and anything aligned with them) for ``set_weights``.

    Parameters
    ----------
    model : Model
    weights : list
        One entry per weight, in the file's order: natural for ``.keras`` and
        ``.weights.h5``, :func:`legacy_h5_order` per top-level layer for legacy ``.h5``.
    legacy_h5 : bool

    Returns
    -------
    list
        The entries in ``model.get_weights()`` order (unchanged when the counts differ).
    """
    file_order = _model_order(model, legacy_h5_order if legacy_h5 else
                              (lambda layer: range(len(trainable_flags(layer)))))
    return _reorder(weights, file_order, _model_order(model, get_weights_order))


def _reorder(weights, file_order, want):
    """``weights`` listed in ``file_order`` (natural indices), listed in ``want`` instead."""
    if len(file_order) != len(weights) or file_order == want:
        return list(weights)
    natural = [None] * len(weights)
    for i, w in zip(file_order, weights):
        natural[i] = w
    return [natural[i] for i in want]


def layer_to_get_weights_order(layer, weights):
    """One top-level layer's weights from its legacy ``.h5`` group (trainable first), in
    ``layer.get_weights()`` order (unchanged when the count is not the layer's)."""
    return _reorder(weights, legacy_h5_order(layer), get_weights_order(layer))


def weights_with_flags(model):
    """``(array, trainable)`` for each weight of the model's built layers."""
    out = []
    for layer in model.layers:
        if not getattr(layer, "built", True):
            continue
        flags = trainable_flags(layer, getattr(model, "trainable", True))
        out += [(w, flags[i]) for w, i in zip(layer.get_weights(), get_weights_order(layer))]
    return out


def trainable_count(model):
    """The number of trainable parameters, as Keras's summary counts them."""
    return sum(int(np.size(w)) for w, trainable in weights_with_flags(model) if trainable)
