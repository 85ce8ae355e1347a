"""Keras weight initializers, by name or serialized config.

Deterministic ones (zeros, ones, constant, identity) give exactly Keras's values.
Random ones follow Keras's distributions; the numbers come from NumPy's generator,
not TensorFlow's, so they are equal in law, not bit for bit.  A seeded initializer
draws the same values every call, as Keras's do.
"""
import math
import threading
from contextlib import contextmanager

import numpy as np

_TRUNC_STD = 0.87962566103423978  # std of a unit normal truncated to [-2, 2]
_placeholder = threading.local()


@contextmanager
def placeholders():
    """Inside the block (this thread only), initializers return zeros without drawing.

    For layers whose weights are set right after they are built (a model loaded from a
    file): an orthogonal (4U, U) draw costs seconds at U=2048, zeros cost nothing.
    """
    prev = getattr(_placeholder, "on", False)
    _placeholder.on = True
    try:
        yield
    finally:
        _placeholder.on = prev


class Initializer:
    """Base: ``init(shape, dtype, rng)`` returns a new array."""

    name = None

    def __init__(self, seed=None, **config):
        self.seed = seed
        self.config = config

    def _rng(self, rng):
        return np.random.default_rng(self.seed) if self.seed is not None else rng

    def __call__(self, shape, dtype="float32", rng=None):
        if getattr(_placeholder, "on", False):
            return np.zeros(tuple(shape), dtype=dtype)
        rng = self._rng(rng if rng is not None else np.random.default_rng())
        return np.asarray(self.sample(tuple(shape), rng), dtype=dtype)

    def get_config(self):
        cfg = dict(self.config)
        if self._seeded:
            cfg["seed"] = self.seed
        return cfg

    _seeded = True


class Zeros(Initializer):
    _seeded = False

    def sample(self, shape, rng):
        return np.zeros(shape)


class Ones(Initializer):
    _seeded = False

    def sample(self, shape, rng):
        return np.ones(shape)


class Constant(Initializer):
    _seeded = False

    def __init__(self, value=0.0, **kw):
        super().__init__(value=value, **kw)

    def sample(self, shape, rng):
        return np.full(shape, self.config["value"])


class Identity(Initializer):
    _seeded = False

    def __init__(self, gain=1.0, **kw):
        super().__init__(gain=gain, **kw)

    def sample(self, shape, rng):
        if len(shape) != 2:
            raise ValueError(
                "Identity initializer can only be used for 2D matrices. "
                f"Received: shape={shape}"
            )
        return self.config["gain"] * np.eye(*shape)


class RandomNormal(Initializer):
    def __init__(self, mean=0.0, stddev=0.05, **kw):
        super().__init__(mean=mean, stddev=stddev, **kw)

    def sample(self, shape, rng):
        return rng.normal(self.config["mean"], self.config["stddev"], shape)


class RandomUniform(Initializer):
    def __init__(self, minval=-0.05, maxval=0.05, **kw):
        super().__init__(minval=minval, maxval=maxval, **kw)

    def sample(self, shape, rng):
        return rng.uniform(self.config["minval"], self.config["maxval"], shape)


def _truncated_normal(rng, shape, stddev):
    # Resample outside two standard deviations, like tf.random.truncated_normal.
    out = rng.normal(0.0, 1.0, shape)
    bad = np.abs(out) > 2.0
    while bad.any():
        out[bad] = rng.normal(0.0, 1.0, int(bad.sum()))
        bad = np.abs(out) > 2.0
    return out * stddev


class TruncatedNormal(Initializer):
    def __init__(self, mean=0.0, stddev=0.05, **kw):
        super().__init__(mean=mean, stddev=stddev, **kw)

    def sample(self, shape, rng):
        return self.config["mean"] + _truncated_normal(rng, shape, self.config["stddev"])


def _fans(shape):
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


class VarianceScaling(Initializer):
    def __init__(self, scale=1.0, mode="fan_in", distribution="truncated_normal", **kw):
        if mode not in ("fan_in", "fan_out", "fan_avg"):
            raise ValueError(
                "Expected mode one of ['fan_in', 'fan_out', 'fan_avg']. "
                f"Received: mode={mode!r}"
            )
        if distribution == "normal":
            distribution = "truncated_normal"
        if distribution not in ("truncated_normal", "untruncated_normal", "uniform"):
            raise ValueError(
                "Expected distribution one of ['truncated_normal', "
                f"'untruncated_normal', 'uniform']. Received: distribution={distribution!r}"
            )
        super().__init__(scale=scale, mode=mode, distribution=distribution, **kw)

    def sample(self, shape, rng):
        fan_in, fan_out = _fans(shape)
        n = {"fan_in": fan_in, "fan_out": fan_out,
             "fan_avg": (fan_in + fan_out) / 2.0}[self.config["mode"]]
        scale = self.config["scale"] / max(1.0, n)
        dist = self.config["distribution"]
        if dist == "truncated_normal":
            return _truncated_normal(rng, shape, math.sqrt(scale) / _TRUNC_STD)
        if dist == "untruncated_normal":
            return rng.normal(0.0, math.sqrt(scale), shape)
        limit = math.sqrt(3.0 * scale)
        return rng.uniform(-limit, limit, shape)


def _scaling(cls_name, scale, mode, distribution):
    def __init__(self, seed=None, **kw):
        kw.pop("input_axes", None)  # Keras 3.15 config keys for einsum kernels
        kw.pop("output_axes", None)
        VarianceScaling.__init__(self, scale=scale, mode=mode,
                                 distribution=distribution, seed=seed)

    def get_config(self):
        return {"seed": self.seed}

    return type(cls_name, (VarianceScaling,), {"__init__": __init__, "get_config": get_config})


GlorotUniform = _scaling("GlorotUniform", 1.0, "fan_avg", "uniform")
GlorotNormal = _scaling("GlorotNormal", 1.0, "fan_avg", "truncated_normal")
HeUniform = _scaling("HeUniform", 2.0, "fan_in", "uniform")
HeNormal = _scaling("HeNormal", 2.0, "fan_in", "truncated_normal")
LecunUniform = _scaling("LecunUniform", 1.0, "fan_in", "uniform")
LecunNormal = _scaling("LecunNormal", 1.0, "fan_in", "truncated_normal")


class Orthogonal(Initializer):
    def __init__(self, gain=1.0, **kw):
        super().__init__(gain=gain, **kw)

    def sample(self, shape, rng):
        if len(shape) < 2:
            raise ValueError(
                "The tensor to initialize must be at least two-dimensional. "
                f"Received: shape={shape}"
            )
        rows, cols = math.prod(shape[:-1]), shape[-1]
        a = rng.normal(0.0, 1.0, (max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(a)
        q *= np.sign(np.diag(r))
        if rows < cols:
            q = q.T
        return self.config["gain"] * q.reshape(shape)


_CLASSES = {c.__name__: c for c in (
    Zeros, Ones, Constant, Identity, RandomNormal, RandomUniform, TruncatedNormal,
    VarianceScaling, GlorotUniform, GlorotNormal, HeUniform, HeNormal, LecunUniform,
    LecunNormal, Orthogonal)}
_ALIASES = {
    "zeros": "Zeros", "zero": "Zeros", "ones": "Ones", "one": "Ones",
    "constant": "Constant", "identity": "Identity", "random_normal": "RandomNormal",
    "random_uniform": "RandomUniform", "truncated_normal": "TruncatedNormal",
    "variance_scaling": "VarianceScaling", "glorot_uniform": "GlorotUniform",
    "glorot_normal": "GlorotNormal", "he_uniform": "HeUniform", "he_normal": "HeNormal",
    "lecun_uniform": "LecunUniform", "lecun_normal": "LecunNormal",
    "orthogonal": "Orthogonal", "IdentityInitializer": "Identity",
    "uniform": "RandomUniform", "normal": "RandomNormal",
    "OrthogonalInitializer": "Orthogonal",
}


def get(identifier, arg="initializer"):
    """An Initializer from a Keras name, a serialized config dict, or an instance."""
    if isinstance(identifier, Initializer):
        return identifier
    if isinstance(identifier, str):
        cls_name, config = _ALIASES.get(identifier, identifier), {}
    elif isinstance(identifier, dict) and "class_name" in identifier:
        cls_name = _ALIASES.get(identifier["class_name"], identifier["class_name"])
        config = dict(identifier.get("config") or {})
    else:
        cls_name, config = None, None
    cls = _CLASSES.get(cls_name)
    if cls is None:
        raise ValueError(
            f"Unknown `{arg}`. Expected a Keras initializer name such as "
            f"{sorted(_ALIASES)[:6]}... or a serialized initializer dict. "
            f"Received: {arg}={identifier!r}"
        )
    try:
        return cls(**config)
    except TypeError as exc:
        raise ValueError(
            f"Invalid config for `{arg}` ({cls_name}): {exc}. Received: {arg}={identifier!r}"
        ) from None


def serialize(init):
    """The Keras 3 serialized form of an Initializer."""
    return {"module": "keras.initializers", "class_name": type(init).__name__,
            "config": init.get_config(), "registered_name": None}
