"""The ONNX ``LSTM`` node on gpulstm layers: attributes, weights and ``run``.

ONNX gate order i, o, f, c is reordered to Keras's i, f, c, o; each direction
is a ``gpulstm.LSTM`` (see :mod:`gpulstm.io.stacked`).  Weights given as
initializers are converted once at load time; weights fed as graph inputs
(ONNX's own backend tests do that) are converted when they arrive.  Run-time
behaviour follows onnxruntime: ``sequence_lens`` outside ``[0, T]`` is
refused, and a row of length 0 gives zeros in Y, Y_h and Y_c (not its
initial state).
"""
import numpy as np

from .common import UnsupportedModelError

_ONNX_TO_KERAS = [0, 2, 3, 1]  # Keras block j (i, f, c, o) = ONNX block (i, o, f, c)
_PARAMS = {"HardSigmoid": (0.2, 0.5), "Affine": (1.0, 0.0), "ScaledTanh": (1.0, 1.0), "Elu": (1.0, None),
           "LeakyRelu": (0.01, None), "ThresholdedRelu": (1.0, None)}
_PEEPHOLE_ERROR = "LSTM peepholes (input P) are not supported (Keras's LSTM has none)"


def _activations(attrs, dirs):
    names = attrs.get("activations") or ["Sigmoid", "Tanh", "Tanh"] * dirs
    if len(names) != 3 * dirs:
        raise ValueError(f"LSTM activations: expected {3 * dirs} names, found {len(names)}")
    alphas, betas = list(attrs.get("activation_alpha", [])), list(attrs.get("activation_beta", []))
    out = []
    for name in names:
        alpha, beta = _PARAMS.get(name, (None, None))
        # alpha/beta are consumed, in order, by the functions that take them.
        if alpha is not None and alphas:
            alpha = alphas.pop(0)
        if beta is not None and betas:
            beta = betas.pop(0)
        out.append(_keras_activation(name, alpha, beta))
    return out


def _keras_activation(name, alpha, beta):
    """(keras name, keras major version or None) for an ONNX activation."""
    simple = {"Sigmoid": "sigmoid", "Tanh": "tanh", "Relu": "relu", "Softsign": "softsign",
              "Softplus": "softplus"}
    if name in simple:
        return simple[name], None
    if name == "HardSigmoid" and abs(beta - 0.5) < 1e-7:
        if abs(alpha - 0.2) < 1e-7:
            return "hard_sigmoid", "2"
        if abs(alpha - 1 / 6) < 1e-7:
            return "hard_sigmoid", "3"
    if name == "Elu" and abs(alpha - 1.0) < 1e-7:
        return "elu", None
    if name == "Affine" and alpha == 1.0 and beta == 0.0:
        return "linear", None
    if name == "ScaledTanh" and alpha == 1.0 and beta == 1.0:
        return "tanh", None
    raise UnsupportedModelError(None, None, f"LSTM activation {name}(alpha={alpha}, beta={beta}) is not "
                                "supported (no Keras equivalent)")


def lstm_config(attrs):
    """Check an LSTM node's attributes; the settings gpulstm runs it with.

    Returns a dict: direction, dirs, layout, activation, recurrent_activation,
    keras_version.  Raises UnsupportedModelError / ValueError for what Keras cannot express.
    """
    direction = attrs.get("direction", "forward")
    dirs = {"forward": 1, "reverse": 1, "bidirectional": 2}.get(direction)
    if dirs is None:
        raise ValueError(f"unknown LSTM direction {direction!r}")
    if "clip" in attrs:
        raise UnsupportedModelError(None, None, "LSTM 'clip' is not supported (no Keras equivalent)")
    if attrs.get("input_forget", 0):
        raise UnsupportedModelError(None, None, "LSTM input_forget=1 is not supported (no Keras equivalent)")
    layout = int(attrs.get("layout", 0))
    if layout not in (0, 1):
        raise ValueError(f"LSTM layout must be 0 or 1, found {layout}")
    acts = _activations(attrs, dirs)
    if any(acts[3 * d:3 * d + 3] != acts[:3] for d in range(dirs)):
        raise UnsupportedModelError(None, None, "different activations per direction are not supported")
    (ract, v1), (act_g, v2), (act_h, v3) = acts[:3]
    if (act_g, v2) != (act_h, v3):
        raise UnsupportedModelError(None, None, f"LSTM activations g={act_g} and h={act_h} differ; Keras "
                                    "uses one activation for both")
    versions = {v for v in (v1, v2) if v is not None}
    if len(versions) > 1:
        raise UnsupportedModelError(None, None, "mixed hard_sigmoid flavours are not supported")
    return dict(direction=direction, dirs=dirs, layout=layout, activation=act_g, recurrent_activation=ract,
                keras_version=versions.pop() if versions else None)


def check_peepholes(peepholes):
    """Refuse non-zero peepholes (an array) or peepholes only known at run time (None)."""
    if peepholes is None or np.any(np.asarray(peepholes) != 0):
        raise UnsupportedModelError(None, None, _PEEPHOLE_ERROR)


class LSTMRunner:
    """Runs one LSTM node on a gpulstm layer stack built from its weights."""

    def __init__(self, stack, layout, dirs, hidden):
        self.stack, self.layout, self.dirs, self.hidden = stack, layout, dirs, hidden

    def run(self, vals, backend=None):
        vals = list(vals) + [None] * (8 - len(vals))
        x = np.asarray(vals[0], dtype=np.float32)
        if x.ndim != 3:
            raise ValueError(f"LSTM input X must be 3-d. Received: shape {x.shape}")
        xb = np.swapaxes(x, 0, 1) if self.layout == 0 else x  # xb is (B, T, F)
        B, T = xb.shape[:2]
        mask = lens = None
        if vals[4] is not None:
            lens = np.asarray(vals[4]).reshape(-1)
            if lens.shape != (B,):
                raise ValueError(f"sequence_lens must have shape ({B},). Received: {lens.shape}")
            if lens.dtype.kind not in "iu":
                raise ValueError(f"sequence_lens must hold integers (int32). Received: dtype {lens.dtype}")
            if np.any(lens < 0) or np.any(lens > T):
                raise ValueError(f"Invalid value/s in sequence_lens: all values must be >= 0 and <= "
                                 f"seq_length={T}, as onnxruntime requires. Received: {lens.tolist()}")
            mask = np.arange(T)[None, :] < lens[:, None]  # mask is (B, T)
        state = None
        if vals[5] is not None or vals[6] is not None:
            z = np.zeros((self.dirs, B, self.hidden), np.float32)
            h0, c0 = (z if v is None else np.asarray(v, np.float32) for v in (vals[5], vals[6]))
            if self.layout == 1:
                h0, c0 = (np.swapaxes(v, 0, 1) if v is not z else v for v in (h0, c0))
            state = (h0, c0)
        y, h, c = self.stack.predict(xb, initial_state=state, mask=mask, backend=backend)
        if lens is not None and state is not None and np.any(lens == 0):
            # onnxruntime: a row of length 0 ends with zero states, not its initial ones
            h, c = np.array(h), np.array(c)
            h[:, lens == 0] = 0
            c[:, lens == 0] = 0
        y = y.reshape(B, T, self.dirs, self.hidden)  # y is (B, T, dirs, H)
        if self.layout == 0:
            return [np.ascontiguousarray(y.transpose(1, 2, 0, 3)), h, c]
        return [y, np.swapaxes(h, 0, 1), np.swapaxes(c, 0, 1)]


def lstm_node_weights(attrs, wrb, peepholes, backend):
    """Convert one ONNX LSTM node to a gpulstm layer stack (a runner with ``.stack``).

    ``wrb`` is ``[X, W, R, B]`` (X unused, B optional); ``peepholes`` the P input or None.
    """
    from .stacked import StackedLSTM

    if peepholes is not None:
        check_peepholes(peepholes)
    cfg = lstm_config(attrs)
    dirs = cfg["dirs"]
    _, W, R, Bias = wrb
    W, R = np.asarray(W, np.float32), np.asarray(R, np.float32)
    if W.ndim != 3 or R.ndim != 3 or W.shape[0] != dirs or R.shape[0] != dirs:
        raise ValueError(f"W/R must be (dirs={dirs}, 4H, .). Received: {W.shape}, {R.shape}")
    H = R.shape[2]
    if attrs.get("hidden_size", H) != H or W.shape[1] != 4 * H or R.shape[1] != 4 * H:
        raise ValueError(f"W {W.shape} / R {R.shape} do not fit hidden_size={attrs.get('hidden_size')}")
    if Bias is not None and np.shape(Bias) != (dirs, 8 * H):
        raise ValueError(f"B must be ({dirs}, {8 * H}). Received: {np.shape(Bias)}")
    if Bias is not None:
        Bias = np.asarray(Bias, np.float32)
    order = np.concatenate([np.arange(j * H, (j + 1) * H) for j in _ONNX_TO_KERAS])
    per_dir = []
    for d in range(dirs):
        b = None
        if Bias is not None:
            b = (Bias[d, :4 * H].astype(np.float64) + Bias[d, 4 * H:])[order].astype(np.float32)
        # kernel is (F, 4H), recurrent_kernel (H, 4H), in Keras gate order.
        per_dir.append([np.ascontiguousarray(W[d][order].T), np.ascontiguousarray(R[d][order].T),
                        b if b is not None else np.zeros(4 * H, np.float32)])
    stack = StackedLSTM([per_dir], batch_first=True, return_state=True, activation=cfg["activation"],
                        recurrent_activation=cfg["recurrent_activation"], keras_version=cfg["keras_version"],
                        backend=backend, name="onnx_lstm", reverse_only=cfg["direction"] == "reverse")
    return LSTMRunner(stack, cfg["layout"], dirs, H)


class RuntimeWeightsLSTM:
    """An LSTM node whose W, R or B are graph inputs: converted when they arrive.

    The last conversion is kept and reused while the same weights come back.
    """

    stack = None

    def __init__(self, attrs, backend):
        self.attrs, self.backend = attrs, backend
        self._key, self._runner = None, None

    def run(self, vals, backend=None):
        vals = list(vals) + [None] * (8 - len(vals))
        wrb = [None if v is None else np.asarray(v, np.float32) for v in vals[1:4]]
        if wrb[0] is None or wrb[1] is None:
            raise ValueError("LSTM inputs W and R are required. Received: an empty input name")
        key = wrb
        if self._key is None or any((a is None) != (b is None) or (a is not None and (
                a.shape != b.shape or not np.array_equal(a, b))) for a, b in zip(key, self._key)):
            try:
                self._runner = lstm_node_weights(self.attrs, [None] + wrb, None, self.backend)
            except UnsupportedModelError as e:
                raise ValueError(e.detail) from None
            self._key = [None if a is None else a.copy() for a in key]
        return self._runner.run(vals, backend=backend)
