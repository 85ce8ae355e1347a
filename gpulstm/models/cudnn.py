"""Keras 2's ``CuDNNLSTM`` / ``CuDNNGRU``: their configs and weights, converted as Keras does.

Keras 2.0.9 - 2.3 and tf.keras 1.x saved models with these GPU-only layers; tf_keras's
legacy HDF5 loader converts their weights into ``LSTM`` / ``GRU(reset_after=True)``
on loading (``tf_keras/src/saving/legacy/hdf5_format.py``: ``preprocess_weights_for_loading``
ends with ``_convert_rnn_weights(layer, weights)``, which this module follows):

* the source is told by the bias's shape, with ``units = recurrent_kernel.shape[0]``:
  ``(8 * units,)`` is a CuDNNLSTM (input and recurrent biases apart), ``(6 * units,)``
  a CuDNNGRU, ``(4 * units,)`` an LSTM, ``(2, 3 * units)`` / ``(3 * units,)`` a GRU with
  ``reset_after`` True / False; layers without a bias are left as they are;
* each gate's input kernel ``k`` (column block of ``kernel``) becomes
  ``k.T.reshape(k.shape, order="F")`` (cuDNN's Fortran layout back to C), each gate's
  recurrent kernel ``k.T``; gate order is unchanged (i, f, c, o; z, r, h);
* CuDNNLSTM -> LSTM: the bias halves are summed, (8U,) -> (4U,);
  CuDNNGRU -> GRU(reset_after=True): the bias is reshaped to (2, 3U); a
  GRU(reset_after=False) cannot take CuDNNGRU weights (Keras: "... is not compatible").

A CuDNN layer's config becomes the plain layer with cuDNN's fixed activations (tanh,
sigmoid) and, for the GRU, ``reset_after=True``: what runs the same numbers on any device.
"""
import numpy as np

CUDNN_CLASSES = ("CuDNNLSTM", "CuDNNGRU")


def plain_config(class_name, config):
    """``("LSTM" | "GRU", config)`` for a ``CuDNNLSTM`` / ``CuDNNGRU`` layer config."""
    cfg = dict(config)
    cfg.update(activation="tanh", recurrent_activation="sigmoid", use_bias=True)
    if class_name == "CuDNNGRU":
        cfg["reset_after"] = True
        return "GRU", cfg
    return "LSTM", cfg


def _is_rnn(layer):
    from gpulstm.layers.lstm import LSTM

    return isinstance(layer, LSTM)


def _is_gru(layer):
    from gpulstm.layers.gru import GRU

    return isinstance(layer, GRU)


def _natural_leaves(layer):
    from gpulstm.models import weight_order

    kids = weight_order._children(layer)
    if kids is None:
        return [(layer, i) for i in range(weight_order._leaf_count(layer))]
    return [leaf for k in kids for leaf in _natural_leaves(k)]


def rnn_positions(root):
    """``[(rnn layer, [index of each of its weights in root.get_weights()])]`` for every
    LSTM / GRU inside ``root`` (a model or a layer), wrappers and nested models included."""
    from gpulstm.models import weight_order
    from gpulstm.models.functional import Model

    if isinstance(root, Model):
        natural = [leaf for layer in root.layers for leaf in _natural_leaves(layer)]
        order = weight_order._model_order(root, weight_order.get_weights_order)
    else:
        natural = _natural_leaves(root)
        order = weight_order.get_weights_order(root)
    found = {}
    for pos, i in enumerate(order):
        layer, slot = natural[i]
        if _is_rnn(layer):
            found.setdefault(id(layer), (layer, {}))[1][slot] = pos
    return [(layer, [slots[k] for k in sorted(slots)]) for layer, slots in found.values()]


def bias_alternatives(root):
    """``{index in root.get_weights(): shape}``: the CuDNN bias a file may hold there
    instead (converted on loading, or refused naming CuDNN)."""
    out = {}
    for layer, pos in rnn_positions(root):
        if len(pos) == 3:
            out[pos[2]] = ((6 if _is_gru(layer) else 8) * layer.units,)
    return out


def _per_gate(kernel, fn, n_gates):
    return np.hstack([fn(k) for k in np.hsplit(kernel, n_gates)])


def _from_cudnn(weights, n_gates):
    kernel = _per_gate(weights[0], lambda k: k.T.reshape(k.shape, order="F"), n_gates)
    recurrent = _per_gate(weights[1], lambda k: k.T, n_gates)
    return kernel, recurrent


def convert_layer_weights(layer, weights):
    """One LSTM / GRU layer's weights from a file, CuDNN ones converted (tf_keras's rule).

    Raises ValueError naming CuDNN when the file's weights are a CuDNN layer's that
    this layer cannot take.
    """
    if len(weights) != 3 or np.ndim(weights[1]) != 2:
        return list(weights)
    units = weights[1].shape[0]
    bias = tuple(np.shape(weights[2]))
    kind = "GRU" if _is_gru(layer) else "LSTM"
    source = {(8 * units,): "CuDNNLSTM", (6 * units,): "CuDNNGRU"}.get(bias)
    if source is None:
        return list(weights)
    if source == "CuDNNLSTM" and kind == "LSTM":
        kernel, recurrent = _from_cudnn(weights, 4)
        return [kernel, recurrent, np.sum(np.split(np.asarray(weights[2]), 2), axis=0)]
    if source == "CuDNNGRU" and kind == "GRU" and layer.reset_after:
        kernel, recurrent = _from_cudnn(weights, 3)
        return [kernel, recurrent, np.asarray(weights[2]).reshape(2, -1)]
    n = 8 if source == "CuDNNLSTM" else 6
    want = "an LSTM" if source == "CuDNNLSTM" else "a GRU(reset_after=True)"
    fix = ("Build it with `reset_after=True` (Keras converts CuDNNGRU into GRU(reset_after=True, "
           "recurrent_activation='sigmoid'))." if kind == "GRU" and source == "CuDNNGRU"
           else f"Load them into {want} layer.")
    name = f"{kind}(reset_after=False)" if kind == "GRU" and not layer.reset_after else kind
    raise ValueError(f"The weights for layer '{layer.name}' ({name}) are a {source} layer's "
                     f"(bias of {n}·units = {bias[0]}, units={units}); only {want} layer takes "
                     f"them. {fix}")


def convert(root, weights):
    """``weights`` (in ``root.get_weights()`` order, from a legacy HDF5 file) with every
    CuDNN layer's weights converted for the LSTM / GRU that receives them."""
    out = list(weights)
    for layer, pos in rnn_positions(root):
        if len(pos) != 3 or max(pos) >= len(out):
            continue
        new = convert_layer_weights(layer, [out[p] for p in pos])
        for p, w in zip(pos, new):
            out[p] = w
    return out
