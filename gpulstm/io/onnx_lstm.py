"""The ONNX ``LSTM`` node on gpulstm layers: attributes and weights.

ONNX gate order i, o, f, c is reordered to Keras's i, f, c, o; each direction
is a ``gpulstm.LSTM`` (see :mod:`gpulstm.io.stacked`).  Weights given as
initializers are converted once at load time; weights fed as graph inputs
(ONNX's own backend tests do that) are converted when they arrive (see
:mod:`gpulstm.io.onnx_recurrent`, which also runs the node).
"""
import numpy as np

from .common import UnsupportedModelError
from .onnx_recurrent import NodeRunner, RecurrentOp, node_config, node_weights

_ONNX_TO_KERAS = [0, 2, 3, 1]  # Keras block j (i, f, c, o) = ONNX block (i, o, f, c)
_PEEPHOLE_ERROR = "LSTM peepholes (input P) are not supported (Keras's LSTM has none)"


def lstm_config(attrs):
    """Check an LSTM node's attributes; the settings gpulstm runs it with.

    Returns a dict: direction, dirs, layout, activation, recurrent_activation,
    keras_version.  Raises UnsupportedModelError / ValueError for what Keras cannot express.
    """
    cfg = node_config("LSTM", attrs, ("Sigmoid", "Tanh", "Tanh"))
    if attrs.get("input_forget", 0):
        raise UnsupportedModelError(None, None, "LSTM input_forget=1 is not supported (no Keras equivalent)")
    (ract, _), (act_g, v2), (act_h, v3) = cfg.pop("acts")
    if (act_g, v2) != (act_h, v3):
        raise UnsupportedModelError(None, None, f"LSTM activations g={act_g} and h={act_h} differ; Keras "
                                    "uses one activation for both")
    return dict(cfg, activation=act_g, recurrent_activation=ract)


def check_peepholes(peepholes):
    """Refuse non-zero peepholes (an array) or peepholes only known at run time (None)."""
    if peepholes is None or np.any(np.asarray(peepholes) != 0):
        raise UnsupportedModelError(None, None, _PEEPHOLE_ERROR)


def _precheck(ins, consts):
    if ins[7]:  # peepholes first: nothing else could make such a model run
        check_peepholes(consts.get(ins[7]))


def lstm_node_weights(attrs, wrb, backend):
    """Convert one ONNX LSTM node to a gpulstm layer stack (a runner with ``.stack``).

    ``wrb`` is ``[X, W, R, B]`` (X unused, B optional).
    """
    from gpulstm.layers import LSTM

    from .stacked import StackedRNN

    cfg = lstm_config(attrs)
    dirs = cfg["dirs"]
    W, R, Bias, H = node_weights("LSTM", wrb[1], wrb[2], wrb[3], dirs, 4, attrs.get("hidden_size"))
    order = np.concatenate([np.arange(j * H, (j + 1) * H) for j in _ONNX_TO_KERAS])
    per_dir = []
    for d in range(dirs):
        b = None
        if Bias is not None:
            b = (Bias[d, :4 * H].astype(np.float64) + Bias[d, 4 * H:])[order].astype(np.float32)
        # kernel is (F, 4H), recurrent_kernel (H, 4H), in Keras gate order.
        per_dir.append([np.ascontiguousarray(W[d][order].T), np.ascontiguousarray(R[d][order].T),
                        b if b is not None else np.zeros(4 * H, np.float32)])
    stack = StackedRNN([per_dir], layer_class=LSTM, batch_first=True, return_state=True,
                       activation=cfg["activation"], recurrent_activation=cfg["recurrent_activation"],
                       keras_version=cfg["keras_version"], backend=backend, name="onnx_lstm",
                       reverse_only=cfg["direction"] == "reverse")
    return NodeRunner("LSTM", stack, cfg["layout"], dirs, H, 2)


LSTM_OP = RecurrentOp("LSTM", inputs=8, states=2, config=lstm_config, convert=lstm_node_weights,
                      precheck=_precheck)
