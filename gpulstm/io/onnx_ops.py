"""NumPy versions of the ONNX shape-plumbing ops, and the LSTM node converter.

Each op takes ``(attrs, inputs, opset)`` and returns a list of outputs.
"""
import numpy as np

from .common import UnsupportedModelError

_MAX_ELEMENTS = 1 << 28  # ConstantOfShape / Expand must not build huge arrays


def _ints(v):
    return [int(i) for i in np.asarray(v).reshape(-1)]


def _checked_shape(shape):
    shape = _ints(shape)
    if any(s < 0 for s in shape) or int(np.prod(shape, dtype=np.float64)) > _MAX_ELEMENTS:
        raise ValueError(f"refusing to build an array of shape {shape}")
    return shape


def _axes(attrs, inputs, idx, opset, since):
    if opset >= since:
        return _ints(inputs[idx]) if len(inputs) > idx and inputs[idx] is not None else None
    return attrs.get("axes")


def _squeeze(a, i, o):
    axes = _axes(a, i, 1, o, 13)
    return [np.squeeze(i[0], axis=tuple(axes)) if axes else np.squeeze(i[0])]


def _unsqueeze(a, i, o):
    axes = _axes(a, i, 1, o, 13)
    x = np.asarray(i[0])
    rank = x.ndim + len(axes)
    for ax in sorted(ax % rank for ax in axes):
        x = np.expand_dims(x, ax)
    return [x]


def _slice(a, i, o):
    x = np.asarray(i[0])
    if o >= 10:
        starts, ends = _ints(i[1]), _ints(i[2])
        axes = _ints(i[3]) if len(i) > 3 and i[3] is not None else list(range(len(starts)))
        steps = _ints(i[4]) if len(i) > 4 and i[4] is not None else [1] * len(starts)
    else:
        starts, ends = a["starts"], a["ends"]
        axes, steps = a.get("axes", list(range(len(starts)))), [1] * len(starts)
    sl = [slice(None)] * x.ndim
    for s, e, ax, st in zip(starts, ends, axes, steps):
        if st == 0:
            raise ValueError("Slice step 0")
        sl[ax] = slice(*slice(s, e, st).indices(x.shape[ax]))
    return [x[tuple(sl)]]


def _shape(a, i, o):
    s = np.array(np.shape(i[0]), dtype=np.int64)
    return [s[a.get("start", 0):a.get("end", len(s))]]


def _gemm(a, i, o):
    A, B = np.asarray(i[0], np.float32), np.asarray(i[1], np.float32)
    A = A.T if a.get("transA", 0) else A
    B = B.T if a.get("transB", 0) else B
    y = a.get("alpha", 1.0) * (A @ B)
    if len(i) > 2 and i[2] is not None:
        y = y + a.get("beta", 1.0) * np.asarray(i[2], np.float32)
    return [y.astype(np.float32)]


def _reshape(a, i, o):
    x, shape = np.asarray(i[0]), _ints(i[1])
    if not a.get("allowzero", 0):
        shape = [x.shape[k] if s == 0 else s for k, s in enumerate(shape)]
    return [x.reshape(shape)]


def _cast(a, i, o):
    from onnx import helper

    return [np.asarray(i[0]).astype(helper.tensor_dtype_to_np_dtype(a["to"]))]


def _constant(a, i, o):
    for key in ("value", "value_float", "value_floats", "value_int", "value_ints"):
        if key in a:
            v = np.asarray(a[key])
            return [v.astype(np.float32) if v.dtype == np.float64 else v]
    raise ValueError(f"Constant with unsupported attribute {sorted(a)}")


def _constant_of_shape(a, i, o):
    v = a.get("value", np.zeros(1, np.float32))
    return [np.full(_checked_shape(i[0]), np.asarray(v).reshape(-1)[0], dtype=np.asarray(v).dtype)]


def _expand(a, i, o):
    x, shape = np.asarray(i[0]), _checked_shape(i[1])
    return [x * np.ones(shape, dtype=x.dtype)]


OPS = {
    "Identity": lambda a, i, o: [i[0]],
    "Constant": _constant,
    "Transpose": lambda a, i, o: [np.transpose(i[0], a.get("perm"))],
    "Squeeze": _squeeze,
    "Unsqueeze": _unsqueeze,
    "Slice": _slice,
    "Shape": _shape,
    "Gather": lambda a, i, o: [np.take(i[0], np.asarray(i[1], dtype=np.int64), axis=a.get("axis", 0))],
    "Concat": lambda a, i, o: [np.concatenate([np.asarray(v) for v in i if v is not None], axis=a["axis"])],
    "ConstantOfShape": _constant_of_shape,
    "Expand": _expand,
    "Reshape": _reshape,
    "Cast": _cast,
    "Gemm": _gemm,
    "MatMul": lambda a, i, o: [np.matmul(np.asarray(i[0], np.float32), np.asarray(i[1], np.float32))],
    "Add": lambda a, i, o: [np.add(i[0], i[1])],
}

# --- LSTM ----------------------------------------------------------------------

_ONNX_TO_KERAS = [0, 2, 3, 1]  # Keras block j (i, f, c, o) = ONNX block (i, o, f, c)
_PARAMS = {"HardSigmoid": (0.2, 0.5), "Affine": (1.0, 0.0), "ScaledTanh": (1.0, 1.0), "Elu": (1.0, None),
           "LeakyRelu": (0.01, None), "ThresholdedRelu": (1.0, None)}


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


class _LSTMRunner:
    def __init__(self, stack, layout, dirs, hidden):
        self.stack, self.layout, self.dirs, self.hidden = stack, layout, dirs, hidden

    def run(self, vals, backend=None):
        vals = list(vals) + [None] * (8 - len(vals))
        x = np.asarray(vals[0], dtype=np.float32)
        if x.ndim != 3:
            raise ValueError(f"LSTM input X must be 3-d. Received: shape {x.shape}")
        xb = np.swapaxes(x, 0, 1) if self.layout == 0 else x  # xb is (B, T, F)
        B, T = xb.shape[:2]
        mask = None
        if vals[4] is not None:
            lens = np.asarray(vals[4]).reshape(-1)
            if lens.shape != (B,):
                raise ValueError(f"sequence_lens must have shape ({B},). Received: {lens.shape}")
            mask = np.arange(T)[None, :] < lens[:, None]  # mask is (B, T)
        state = None
        if vals[5] is not None or vals[6] is not None:
            z = np.zeros((self.dirs, B, self.hidden), np.float32)
            h0, c0 = (z if v is None else np.asarray(v, np.float32) for v in (vals[5], vals[6]))
            if self.layout == 1:
                h0, c0 = (np.swapaxes(v, 0, 1) if v is not z else v for v in (h0, c0))
            state = (h0, c0)
        y, h, c = self.stack.predict(xb, initial_state=state, mask=mask, backend=backend)
        y = y.reshape(B, T, self.dirs, self.hidden)  # y is (B, T, dirs, H)
        if self.layout == 0:
            return [np.ascontiguousarray(y.transpose(1, 2, 0, 3)), h, c]
        return [y, np.swapaxes(h, 0, 1), np.swapaxes(c, 0, 1)]


def lstm_node_weights(attrs, wrb, peepholes, backend):
    """Convert one ONNX LSTM node to a gpulstm layer stack (a runner with ``.stack``)."""
    from .stacked import StackedLSTM

    X, W, R, Bias = wrb
    direction = attrs.get("direction", "forward")
    dirs = {"forward": 1, "reverse": 1, "bidirectional": 2}.get(direction)
    if dirs is None:
        raise ValueError(f"unknown LSTM direction {direction!r}")
    if "clip" in attrs:
        raise UnsupportedModelError(None, None, "LSTM 'clip' is not supported (no Keras equivalent)")
    if attrs.get("input_forget", 0):
        raise UnsupportedModelError(None, None, "LSTM input_forget=1 is not supported (no Keras equivalent)")
    if peepholes is not None and np.any(peepholes != 0):
        raise UnsupportedModelError(None, None, "LSTM peepholes (input P) are not supported")
    layout = int(attrs.get("layout", 0))
    if layout not in (0, 1):
        raise ValueError(f"LSTM layout must be 0 or 1, found {layout}")
    W, R = np.asarray(W, np.float32), np.asarray(R, np.float32)
    if W.ndim != 3 or R.ndim != 3 or W.shape[0] != dirs or R.shape[0] != dirs:
        raise ValueError(f"W/R must be (dirs={dirs}, 4H, .). Received: {W.shape}, {R.shape}")
    H = R.shape[2]
    if attrs.get("hidden_size", H) != H or W.shape[1] != 4 * H or R.shape[1] != 4 * H:
        raise ValueError(f"W {W.shape} / R {R.shape} do not fit hidden_size={attrs.get('hidden_size')}")
    if Bias is not None and np.shape(Bias) != (dirs, 8 * H):
        raise ValueError(f"B must be ({dirs}, {8 * H}). Received: {np.shape(Bias)}")
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
    order = np.concatenate([np.arange(j * H, (j + 1) * H) for j in _ONNX_TO_KERAS])
    per_dir = []
    for d in range(dirs):
        b = None
        if Bias is not None:
            b = (Bias[d, :4 * H].astype(np.float64) + Bias[d, 4 * H:])[order].astype(np.float32)
        # kernel is (F, 4H), recurrent_kernel (H, 4H), in Keras gate order.
        per_dir.append([np.ascontiguousarray(W[d][order].T), np.ascontiguousarray(R[d][order].T),
                        b if b is not None else np.zeros(4 * H, np.float32)])
    stack = StackedLSTM([per_dir], batch_first=True, return_state=True, activation=act_g,
                        recurrent_activation=ract, keras_version=(versions.pop() if versions else None),
                        backend=backend, name="onnx_lstm",
                        reverse_only=direction == "reverse")
    return _LSTMRunner(stack, layout, dirs, H)
