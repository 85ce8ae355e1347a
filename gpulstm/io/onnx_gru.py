"""The ONNX ``GRU`` node on gpulstm ``GRU`` layers: attributes and weights.

ONNX and Keras share the gate order z, r, h, so each direction's kernel is
``W[d].T`` and recurrent kernel ``R[d].T``.  ``linear_before_reset=1`` (what
torch exports) is Keras's ``reset_after=True``, with the bias kept as
``[Wb; Rb]`` (2, 3H); ``linear_before_reset=0`` is ``reset_after=False`` with one
bias ``Wb + Rb``.  ONNX's activations ``f`` (z and r) and ``g`` (h) are Keras's
``recurrent_activation`` and ``activation``.  The node runs as
:mod:`gpulstm.io.onnx_recurrent` runs every recurrent node.
"""
import numpy as np

from .onnx_recurrent import NodeRunner, RecurrentOp, node_config, node_weights


def gru_config(attrs):
    """Check a GRU node's attributes; the settings gpulstm runs it with.

    Returns a dict: direction, dirs, layout, activation, recurrent_activation,
    keras_version, reset_after.  Raises UnsupportedModelError / ValueError.
    """
    cfg = node_config("GRU", attrs, ("Sigmoid", "Tanh"))
    lbr = attrs.get("linear_before_reset", 0)
    if lbr not in (0, 1):
        raise ValueError(f"GRU linear_before_reset must be 0 or 1, found {lbr!r}")
    (ract, _), (act, _) = cfg.pop("acts")
    return dict(cfg, activation=act, recurrent_activation=ract, reset_after=bool(lbr))


def gru_node_weights(attrs, wrb, backend):
    """Convert one ONNX GRU node to a gpulstm layer stack (a runner with ``.stack``).

    ``wrb`` is ``[X, W, R, B]`` (X unused, B optional).
    """
    from gpulstm.layers import GRU

    from .stacked import StackedRNN

    cfg = gru_config(attrs)
    dirs = cfg["dirs"]
    W, R, Bias, H = node_weights("GRU", wrb[1], wrb[2], wrb[3], dirs, 3, attrs.get("hidden_size"))
    if Bias is None:
        Bias = np.zeros((dirs, 6 * H), np.float32)
    per_dir = []
    for d in range(dirs):
        if cfg["reset_after"]:
            b = Bias[d].reshape(2, 3 * H)  # [input bias; recurrent bias]
        else:
            b = (Bias[d, :3 * H].astype(np.float64) + Bias[d, 3 * H:]).astype(np.float32)
        per_dir.append([np.ascontiguousarray(W[d].T), np.ascontiguousarray(R[d].T), np.ascontiguousarray(b)])
    stack = StackedRNN([per_dir], layer_class=GRU, batch_first=True, return_state=True,
                       activation=cfg["activation"], recurrent_activation=cfg["recurrent_activation"],
                       keras_version=cfg["keras_version"], backend=backend, name="onnx_gru",
                       reverse_only=cfg["direction"] == "reverse", reset_after=cfg["reset_after"])
    return NodeRunner("GRU", stack, cfg["layout"], dirs, H, 1)


GRU_OP = RecurrentOp("GRU", inputs=6, states=1, config=gru_config, convert=gru_node_weights)
