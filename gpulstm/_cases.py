"""Benchmark sizes and the float64 reference every contender is checked against.

``matrix()`` lists every case of the suites; ``select`` picks groups or tags
("issue13" is issue 13's eight single-layer sizes, "smoke" the three smallest of
them, for ``gpulstm bench --quick``).  A case races one recurrent cell: ``"lstm"``
(the default) or ``"gru"`` (Keras's GRU with ``reset_after=True``, torch's GRU):
``dataclasses.replace(case, cell="gru")`` turns any size into a GRU race.
"""
import math
from dataclasses import dataclass, field

import numpy as np

STREAM_STEPS = 16  # stateful cases check this many T=1 calls against the reference
CELLS = ("lstm", "gru")
GATES = {"lstm": 4, "gru": 3}  # gate blocks of the kernels (Keras order i, f, c, o / z, r, h)


@dataclass(frozen=True)
class Case:
    """One benchmark size: x is (B, T, D), U units; ``stateful`` means streaming T=1 calls;
    ``cell`` "lstm" or "gru"."""

    group: str
    B: int
    T: int
    D: int
    U: int
    recurrent_activation: str = "sigmoid"
    activation: str = "tanh"
    use_bias: bool = True
    mask: str = None  # "left": left-padded sequences of random lengths
    stateful: bool = False
    tags: frozenset = field(default_factory=frozenset)
    cell: str = "lstm"

    def __post_init__(self):
        if self.cell not in CELLS:
            raise ValueError(f"Expected cell among {CELLS}. Received: cell={self.cell!r}")

    @property
    def flags(self):
        out = {}
        if self.recurrent_activation != "sigmoid":
            out["recurrent_activation"] = self.recurrent_activation
        if self.activation != "tanh":
            out["activation"] = self.activation
        if not self.use_bias:
            out["use_bias"] = False
        if self.mask:
            out["mask"] = self.mask
        if self.stateful:
            out["stateful"] = True
        if self.cell != "lstm":
            out["cell"] = self.cell
        return out

    @property
    def name(self):
        base = f"B={self.B} T={self.T} D={self.D} U={self.U}"
        extra = " ".join(f"{k}={v}" if v is not True else k for k, v in self.flags.items())
        return f"{base} {extra}".strip()

    def key(self):
        return (self.B, self.T, self.D, self.U, tuple(sorted(self.flags.items())))

    def to_dict(self):
        """JSON-ready fields (``from_dict`` inverts it): how the race hands a case to a worker."""
        d = dict(self.__dict__)
        d["tags"] = sorted(self.tags)
        return d

    @classmethod
    def from_dict(cls, d):
        return cls(**{**d, "tags": frozenset(d.get("tags", ()))})

    def weights(self, seed=0):
        """Keras-layout float32 weights: kernel (D, G), recurrent_kernel (U, G) and bias (G,)
        for an LSTM (G = 4U), (2, G) [input; recurrent] for a GRU (G = 3U, reset_after)."""
        rng = np.random.default_rng(seed)
        U, G = self.U, GATES[self.cell] * self.U
        kernel = rng.uniform(-1, 1, (self.D, G)) * math.sqrt(6.0 / (self.D + G))
        recurrent_kernel = rng.uniform(-1, 1, (U, G)) * math.sqrt(3.0 / U)
        if self.cell == "gru":
            bias = rng.uniform(-0.1, 0.1, (2, G))
        else:
            bias = rng.uniform(-0.1, 0.1, G)
            bias[U:2 * U] += 1.0  # unit_forget_bias
        return [np.ascontiguousarray(a, dtype=np.float32) for a in (kernel, recurrent_kernel, bias)]

    def inputs(self, seed=1):
        """``(x, mask)``: x is (B, T, D) float32 (T = STREAM_STEPS when stateful); mask (B, T) or None."""
        rng = np.random.default_rng(seed)
        T = STREAM_STEPS if self.stateful else self.T
        x = rng.standard_normal((self.B, T, self.D)).astype(np.float32)
        mask = None
        if self.mask == "left":
            lengths = rng.integers(T // 2, T + 1, self.B)
            mask = np.arange(T)[None, :] >= (T - lengths)[:, None]  # mask is (B, T)
            x[~mask] = 0.0
        return x, mask


def _c(group, B, T, D, U, tags=(), **kw):
    return Case(group, B, T, D, U, tags=frozenset(tags), **kw)


def matrix():
    """Every case of the suites (issue 6's matrix plus the issue-2/7 target sizes)."""
    cases = [
        _c("targets", 1, 100, 32, 128, ("issue2", "issue7", "issue13", "quick", "smoke")),
        _c("targets", 1, 1000, 16, 64, ("issue7", "issue13", "quick")),
        _c("targets", 1, 100, 256, 512, ("issue7", "issue13")),
        _c("targets", 8, 100, 64, 256, ("issue2", "issue7", "issue13", "quick")),
        _c("targets", 64, 100, 32, 256, ("issue2", "issue7", "issue13", "quick")),
        _c("targets", 256, 50, 128, 512, ("issue7", "issue13")),
        _c("targets", 8, 20, 16, 16, ("issue13", "smoke")),  # issue 13's busy-machine sizes
        _c("targets", 32, 50, 16, 16, ("issue13", "smoke")),
        _c("streaming", 1, 1, 32, 128, ("issue7", "quick"), stateful=True),
        _c("streaming", 1, 1, 256, 512, ("issue7",), stateful=True),
        _c("nocudnn", 8, 100, 64, 256, ("quick",), recurrent_activation="hard_sigmoid"),
        _c("nocudnn", 8, 100, 64, 256, ("quick",), mask="left"),
        _c("nocudnn", 8, 100, 64, 256, (), use_bias=False),
        _c("long", 1, 5000, 16, 64),
    ]
    # DeepBench inference LSTM sizes, input width = units.
    for U, T in ((256, 150), (512, 25), (1024, 25), (2048, 25), (1536, 50)):
        cases += [_c("deepbench", B, T, U, U) for B in (1, 2, 4)]
    # Keras-typical models: few input features (D = 32).
    for U in (32, 64, 128, 256):
        for B in (1, 8, 32, 256):
            cases += [_c("keras", B, T, 32, U) for T in (10, 50, 200)]
    return cases


GROUPS = ("targets", "streaming", "nocudnn", "long", "deepbench", "keras")
TAGS = ("quick", "smoke", "issue2", "issue7", "issue13")


def select(names, cases=None):
    """Cases whose group or tag is in ``names`` (or all for "all"), duplicates dropped."""
    names = set(names)
    out, seen = [], set()
    for case in cases if cases is not None else matrix():
        if "all" in names or case.group in names or names & case.tags:
            if case.key() not in seen:
                seen.add(case.key())
                out.append(case)
    return out


# ----------------------------------------------------------------------------- reference
def _sigmoid(z):
    return 0.5 * np.tanh(0.5 * z) + 0.5


_REF_ACT = {"tanh": np.tanh, "sigmoid": _sigmoid,
            "hard_sigmoid": lambda z: np.clip(z / 6.0 + 0.5, 0.0, 1.0)}


def _scan(x_proj, mask, U, n_states, step):
    """Run ``step(x_proj_t, *states) -> new states`` (h first) over time, float64.

    Masked steps carry every state and repeat the previous output (Keras's CPU rule);
    returns the output at every step (B, T, U).
    """
    B, T = x_proj.shape[:2]
    states = [np.zeros((B, U)) for _ in range(n_states)]
    out, seq = np.zeros((B, U)), np.empty((B, T, U))
    for t in range(T):
        new = step(x_proj[:, t], *states)
        keep = np.ones((B, 1), bool) if mask is None else mask[:, t:t + 1]
        states = [np.where(keep, n, s) for n, s in zip(new, states)]
        out = np.where(keep, new[0], out)
        seq[:, t] = out
    return seq


def reference_lstm(x, kernel, recurrent_kernel, bias=None, mask=None,
                   activation="tanh", recurrent_activation="sigmoid"):
    """Float64 NumPy LSTM from Keras's equations; returns the output at every step (B, T, U).

    Masked steps carry h and c and repeat the previous output (Keras's CPU rule).
    """
    R = np.asarray(recurrent_kernel, np.float64)
    U = R.shape[0]
    b = np.zeros(4 * U) if bias is None else np.asarray(bias, np.float64)
    act, ract = _REF_ACT[activation], _REF_ACT[recurrent_activation]

    def step(xp, h, c):
        z = xp + h @ R
        c_new = ract(z[:, U:2 * U]) * c + ract(z[:, :U]) * act(z[:, 2 * U:3 * U])
        return ract(z[:, 3 * U:]) * act(c_new), c_new

    x_proj = np.asarray(x, np.float64) @ np.asarray(kernel, np.float64) + b  # x_proj is (B, T, 4U)
    return _scan(x_proj, mask, U, 2, step)


def reference_gru(x, kernel, recurrent_kernel, bias=None, mask=None,
                  activation="tanh", recurrent_activation="sigmoid"):
    """Float64 NumPy GRU (``reset_after=True``, bias (2, 3U)) from Keras's equations, gates z, r, h;
    the output at every step (B, T, U), masks as ``reference_lstm``."""
    R = np.asarray(recurrent_kernel, np.float64)
    U = R.shape[0]
    b_in, b_rec = np.zeros((2, 3 * U)) if bias is None else np.asarray(bias, np.float64)
    act, ract = _REF_ACT[activation], _REF_ACT[recurrent_activation]

    def step(xp, h):
        hr = h @ R + b_rec
        z = ract(xp[:, :U] + hr[:, :U])
        r = ract(xp[:, U:2 * U] + hr[:, U:2 * U])
        return (z * h + (1.0 - z) * act(xp[:, 2 * U:] + r * hr[:, 2 * U:]),)

    x_proj = np.asarray(x, np.float64) @ np.asarray(kernel, np.float64) + b_in  # (B, T, 3U)
    return _scan(x_proj, mask, U, 1, step)


REFERENCES = {"lstm": reference_lstm, "gru": reference_gru}


def expected_outputs(case, x, mask, weights, reference=None):
    """What each call must return: [(B, U)] once, or one (B, U) per streaming step.

    ``reference``: a function with ``reference_lstm``'s signature for the case's cell
    (default: ``REFERENCES[case.cell]``).
    """
    kernel, recurrent_kernel, bias = weights
    ref = reference or REFERENCES[case.cell]
    seq = ref(x, kernel, recurrent_kernel, bias if case.use_bias else None, mask=mask,
              activation=case.activation, recurrent_activation=case.recurrent_activation)
    return [seq[:, t] for t in range(x.shape[1])] if case.stateful else [seq[:, -1]]


def validate(runner, case, x, mask, expected):
    """Max abs error of the runner's outputs (streaming: every step from a reset state)."""
    runner.reset()
    if case.stateful:
        outs = [runner.call(np.ascontiguousarray(x[:, t:t + 1])) for t in range(x.shape[1])]
    else:
        outs = [runner.call(x, mask)]
    err = max(float(np.max(np.abs(np.asarray(o, np.float64) - e))) for o, e in zip(outs, expected))
    return err if all(np.all(np.isfinite(o)) for o in outs) else float("inf")


def tolerance(expected):
    """The float32 tolerance: 1e-5 * max(1, max|ref|)."""
    return 1e-5 * max(1.0, max(float(np.max(np.abs(e))) for e in expected))
