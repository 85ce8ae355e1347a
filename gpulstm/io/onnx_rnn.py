"""The ONNX ``RNN`` node on gpulstm ``SimpleRNN`` layers: attributes and weights.

Per direction ``H_t = f(X_t W^T + H_{t-1} R^T + Wb + Rb)`` is Keras's SimpleRNN
with kernel ``W[d].T``, recurrent kernel ``R[d].T`` and bias ``Wb + Rb``; the
activation ``f`` (Tanh by default, Relu, or any other with an exact Keras
equivalent) is its ``activation``.  The node runs as
:mod:`gpulstm.io.onnx_recurrent` runs every recurrent node.
"""
import numpy as np

from .onnx_recurrent import NodeRunner, RecurrentOp, node_config, node_weights


def rnn_config(attrs):
    """Check an RNN node's attributes: direction, dirs, layout, activation, keras_version."""
    cfg = node_config("RNN", attrs, ("Tanh",))
    ((act, _),) = cfg.pop("acts")
    return dict(cfg, activation=act)


def rnn_node_weights(attrs, wrb, backend):
    """Convert one ONNX RNN node to a gpulstm layer stack (a runner with ``.stack``).

    ``wrb`` is ``[X, W, R, B]`` (X unused, B optional).
    """
    from gpulstm.layers import SimpleRNN

    from .stacked import StackedRNN

    cfg = rnn_config(attrs)
    dirs = cfg["dirs"]
    W, R, Bias, H = node_weights("RNN", wrb[1], wrb[2], wrb[3], dirs, 1, attrs.get("hidden_size"))
    per_dir = []
    for d in range(dirs):
        b = np.zeros(H, np.float32) if Bias is None else \
            (Bias[d, :H].astype(np.float64) + Bias[d, H:]).astype(np.float32)
        per_dir.append([np.ascontiguousarray(W[d].T), np.ascontiguousarray(R[d].T), b])
    stack = StackedRNN([per_dir], layer_class=SimpleRNN, batch_first=True, return_state=True,
                       activation=cfg["activation"], keras_version=cfg["keras_version"], backend=backend,
                       name="onnx_rnn", reverse_only=cfg["direction"] == "reverse")
    return NodeRunner("RNN", stack, cfg["layout"], dirs, H, 1)


RNN_OP = RecurrentOp("RNN", inputs=6, states=1, config=rnn_config, convert=rnn_node_weights)
