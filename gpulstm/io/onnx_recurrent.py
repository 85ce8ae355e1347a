"""What the ONNX recurrent nodes (``LSTM``, ``GRU``) share on gpulstm layers.

Attributes common to every recurrent operator (direction, layout, activations
with their alpha/beta), running a node on a :class:`~gpulstm.io.stacked.StackedRNN`
(sequence_lens, initial states, layouts) and nodes whose weights are graph
inputs.  Run-time behaviour follows onnxruntime: ``sequence_lens`` outside
``[0, T]`` is refused, and a row of length 0 gives zeros in Y and in every
final state (not its initial state).

Each operator module (:mod:`~gpulstm.io.onnx_lstm`, :mod:`~gpulstm.io.onnx_gru`)
describes itself with a :class:`RecurrentOp`.
"""
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .common import UnsupportedModelError

_PARAMS = {"HardSigmoid": (0.2, 0.5), "Affine": (1.0, 0.0), "ScaledTanh": (1.0, 1.0), "Elu": (1.0, None),
           "LeakyRelu": (0.01, None), "ThresholdedRelu": (1.0, None)}
_SIMPLE = {"Sigmoid": "sigmoid", "Tanh": "tanh", "Relu": "relu", "Softsign": "softsign",
           "Softplus": "softplus"}


@dataclass(frozen=True)
class RecurrentOp:
    """One ONNX recurrent operator as the importer sees it.

    ``inputs``: how many node inputs it has (LSTM 8, GRU 6); ``states``: final
    states after Y (LSTM Y_h, Y_c; GRU Y_h), fed as inputs 5, 6, ...;
    ``config(attrs)`` checks the attributes (raising what Keras cannot express);
    ``convert(attrs, [X, W, R, B], backend)`` returns a :class:`NodeRunner`;
    ``precheck(inputs, consts)`` runs before anything else (LSTM: peepholes).
    """

    name: str
    inputs: int
    states: int
    config: Callable
    convert: Callable
    precheck: Callable = None


def keras_activation(op, name, alpha, beta):
    """(keras name, keras major version or None) for an ONNX activation of operator ``op``."""
    if name in _SIMPLE:
        return _SIMPLE[name], None
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
    raise UnsupportedModelError(None, None, f"{op} activation {name}(alpha={alpha}, beta={beta}) is not "
                                "supported (no Keras equivalent)")


def _activations(op, attrs, dirs, defaults):
    names = attrs.get("activations") or list(defaults) * dirs
    if len(names) != len(defaults) * dirs:
        raise ValueError(f"{op} activations: expected {len(defaults) * dirs} names, found {len(names)}")
    alphas, betas = list(attrs.get("activation_alpha", [])), list(attrs.get("activation_beta", []))
    out = []
    for name in names:
        alpha, beta = _PARAMS.get(name, (None, None))
        # alpha/beta are consumed, in order, by the functions that take them.
        if alpha is not None and alphas:
            alpha = alphas.pop(0)
        if beta is not None and betas:
            beta = betas.pop(0)
        out.append(keras_activation(op, name, alpha, beta))
    return out


def node_config(op, attrs, defaults):
    """The attributes every recurrent operator shares, checked.

    ``defaults``: the operator's activation names for one direction.  Returns a dict:
    direction, dirs, layout, acts (one direction's (keras name, version) pairs) and
    keras_version (the hard_sigmoid flavour, or None).  ``clip`` is refused.
    """
    direction = attrs.get("direction", "forward")
    dirs = {"forward": 1, "reverse": 1, "bidirectional": 2}.get(direction)
    if dirs is None:
        raise ValueError(f"unknown {op} direction {direction!r}")
    if "clip" in attrs:
        raise UnsupportedModelError(None, None, f"{op} 'clip' is not supported (no Keras equivalent)")
    layout = int(attrs.get("layout", 0))
    if layout not in (0, 1):
        raise ValueError(f"{op} layout must be 0 or 1, found {layout}")
    acts = _activations(op, attrs, dirs, defaults)
    n = len(defaults)
    if any(acts[n * d:n * d + n] != acts[:n] for d in range(dirs)):
        raise UnsupportedModelError(None, None, "different activations per direction are not supported")
    versions = {v for _, v in acts[:n] if v is not None}
    if len(versions) > 1:
        raise UnsupportedModelError(None, None, "mixed hard_sigmoid flavours are not supported")
    return dict(direction=direction, dirs=dirs, layout=layout, acts=acts[:n],
                keras_version=versions.pop() if versions else None)


def node_weights(op, W, R, Bias, dirs, gates, hidden_size):
    """W (dirs, gates*H, F), R (dirs, gates*H, H) and B (dirs, 2*gates*H) or None, checked.

    Returns ``(W, R, B, H)`` as float32 arrays (B None when absent).
    """
    W, R = np.asarray(W, np.float32), np.asarray(R, np.float32)
    if W.ndim != 3 or R.ndim != 3 or W.shape[0] != dirs or R.shape[0] != dirs:
        raise ValueError(f"W/R must be (dirs={dirs}, {gates}H, .). Received: {W.shape}, {R.shape}")
    H = R.shape[2]
    if (hidden_size if hidden_size is not None else H) != H or W.shape[1] != gates * H \
            or R.shape[1] != gates * H:
        raise ValueError(f"W {W.shape} / R {R.shape} do not fit hidden_size={hidden_size} "
                         f"({op}: {gates} gate block(s) of H rows)")
    if Bias is not None and np.shape(Bias) != (dirs, 2 * gates * H):
        raise ValueError(f"B must be ({dirs}, {2 * gates * H}). Received: {np.shape(Bias)}")
    return W, R, None if Bias is None else np.asarray(Bias, np.float32), H


class NodeRunner:
    """Runs one recurrent node on a gpulstm layer stack built from its weights."""

    def __init__(self, op, stack, layout, dirs, hidden, states):
        self.op, self.stack, self.layout, self.dirs, self.hidden = op, stack, layout, dirs, hidden
        self.states = states

    def run(self, vals, backend=None):
        n = self.states
        vals = list(vals) + [None] * (5 + n - len(vals))
        x = np.asarray(vals[0], dtype=np.float32)
        if x.ndim != 3:
            raise ValueError(f"{self.op} input X must be 3-d. Received: shape {x.shape}")
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
        given = vals[5:5 + n]
        state = None
        if any(v is not None for v in given):
            z = np.zeros((self.dirs, B, self.hidden), np.float32)
            state = [z if v is None else np.asarray(v, np.float32) for v in given]
            if self.layout == 1:
                state = [s if v is None else np.swapaxes(s, 0, 1) for s, v in zip(state, given)]
        y, *finals = self.stack.predict(xb, initial_state=state, mask=mask, backend=backend)
        if lens is not None and state is not None and np.any(lens == 0):
            # onnxruntime: a row of length 0 ends with zero states, not its initial ones
            finals = [np.array(s) for s in finals]
            for s in finals:
                s[:, lens == 0] = 0
        y = y.reshape(B, T, self.dirs, self.hidden)  # y is (B, T, dirs, H)
        if self.layout == 0:
            return [np.ascontiguousarray(y.transpose(1, 2, 0, 3))] + list(finals)
        return [y] + [np.swapaxes(s, 0, 1) for s in finals]


class RuntimeWeights:
    """A recurrent node whose W, R or B are graph inputs: converted when they arrive.

    The last conversion is kept and reused while the same weights come back.
    """

    stack = None

    def __init__(self, op, attrs, backend):
        self.op, self.attrs, self.backend = op, attrs, backend
        self._key, self._runner = None, None

    def run(self, vals, backend=None):
        vals = list(vals) + [None] * (self.op.inputs - len(vals))
        wrb = [None if v is None else np.asarray(v, np.float32) for v in vals[1:4]]
        if wrb[0] is None or wrb[1] is None:
            raise ValueError(f"{self.op.name} inputs W and R are required. Received: an empty input name")
        key = wrb
        if self._key is None or any((a is None) != (b is None) or (a is not None and (
                a.shape != b.shape or not np.array_equal(a, b))) for a, b in zip(key, self._key)):
            try:
                self._runner = self.op.convert(self.attrs, [None] + wrb, self.backend)
            except UnsupportedModelError as e:
                raise ValueError(e.detail) from None
            self._key = [None if a is None else a.copy() for a in key]
        return self._runner.run(vals, backend=backend)
