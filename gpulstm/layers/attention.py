"""Keras's dot-product and additive attention layers: Attention and AdditiveAttention.

Called on ``[query, value]`` or ``[query, value, key]`` (batch, T, dim); masks
``[query_mask, value_mask]`` as Keras takes them: masked values get no weight, masked
queries give zeros, and the output carries the query's mask.
"""
import numbers

import numpy as np

from gpulstm import _xp, initializers
from gpulstm.layers._checked import CheckedLayer


class Attention(CheckedLayer):
    """``softmax(scores(query, key)) @ value``; scores ``query @ key^T`` ("dot", times the
    learned scalar ``scale`` if ``use_scale``) or ``concat_score_weight * sum(tanh(scale *
    (q + k)))`` ("concat").  Call with ``use_causal_mask=True`` for causal attention and
    ``return_attention_scores=True`` for the weights too.  ``dropout`` applies in training.
    """

    call_kwargs = ("return_attention_scores", "use_causal_mask")  # kept in graph nodes

    def __init__(self, use_scale=False, score_mode="dot", dropout=0.0, seed=None, causal=False,
                 **kwargs):
        super().__init__(**kwargs)
        self.causal = bool(causal)  # tf_keras 2's constructor flag for use_causal_mask=True
        if score_mode not in ("dot", "concat"):
            raise ValueError("Invalid value for argument score_mode. Expected one of "
                             f"{{'dot', 'concat'}}. Received: score_mode={score_mode!r}")
        if isinstance(dropout, bool) or not isinstance(dropout, numbers.Real) or \
                not 0 <= dropout < 1:
            raise ValueError("Expected `dropout` in [0, 1). Received: "
                             f"dropout={dropout!r}")
        self.use_scale, self.score_mode = bool(use_scale), score_mode
        self.dropout, self.seed = float(dropout), seed
        self._rng = np.random.default_rng(seed)

    def __call__(self, inputs, mask=None, training=None, **kwargs):
        # compute_output_shape must know whether the scores are a second output
        self._want_scores = bool(kwargs.get("return_attention_scores"))
        try:
            return super().__call__(inputs, mask=mask, training=training, **kwargs)
        finally:
            self._want_scores = False

    def _to_arrays(self, inputs):
        if not isinstance(inputs, (list, tuple)):
            raise ValueError(f"{type(self).__name__} layer must be called on a list of inputs, "
                             "namely [query, value] or [query, value, key]. Received: inputs "
                             f"of type {type(inputs).__name__}")
        return [_xp.asarray(x) for x in inputs]

    def input_shape_error(self, input_shape):
        if not isinstance(input_shape, (list, tuple)) or not 2 <= len(input_shape) <= 3 or \
                not all(isinstance(s, (list, tuple)) for s in input_shape):
            return ("expected a list [query, value] or [query, value, key]. Received: "
                    f"input_shape={input_shape!r}")
        q, v = input_shape[0], input_shape[1]
        k = input_shape[2] if len(input_shape) > 2 else v
        if q[-1] is None or (q[-1] != k[-1] and k[-1] is not None):
            return f"query and key need the same known last axis. Received: {q} and {k}"
        if v[-2] != k[-2] and None not in (v[-2], k[-2]):
            return f"value and key need the same number of steps. Received: {v} and {k}"
        return None

    def _weight_specs(self, input_shape):
        specs = [("scale", (), "ones")] if self.use_scale else []
        if self.score_mode == "concat":
            specs.append(("concat_score_weight", (), "ones"))
        return specs

    def _build(self, input_shape):
        specs = self._weight_specs(input_shape)
        rng = np.random.default_rng()
        self._weights = [initializers.get(init)(shape, self.dtype, rng)
                         for _, shape, init in specs]
        self._weight_names = [n for n, _, _ in specs]

    def _named(self, xp):
        ws = self._weights if xp is np else _xp.weights_on(self, xp)
        return dict(zip(self._weight_names, ws))

    def _scores(self, q, k, xp):
        w = self._named(xp)
        if self.score_mode == "dot":
            scores = q @ xp.swapaxes(k, -2, -1)
            return scores * w["scale"] if "scale" in w else scores
        s = q[..., :, None, :] + k[..., None, :, :]
        if "scale" in w:
            s = w["scale"] * s
        return w["concat_score_weight"] * xp.tanh(s).sum(axis=-1)

    def call(self, inputs, mask=None, training=None, return_attention_scores=False,
             use_causal_mask=False):
        xp = _xp.array_module(inputs[0])
        q, v = (xp.asarray(a, dtype=self.dtype) for a in inputs[:2])
        k = xp.asarray(inputs[2], dtype=self.dtype) if len(inputs) > 2 else v
        q_mask, v_mask = (list(mask) + [None, None])[:2] if mask else (None, None)
        scores = self._scores(q, k, xp)                     # (B, Tq, Tv)
        keep = None if v_mask is None else xp.asarray(v_mask, dtype=bool)[..., None, :]
        if use_causal_mask or self.causal:
            tq, tv = scores.shape[-2:]
            causal = xp.tri(tq, tv, dtype=bool)[None]  # made on the input's device
            keep = causal if keep is None else keep & causal
        if keep is not None:
            scores = xp.where(keep, scores, scores - 1.0e9)
        e = xp.exp(scores - scores.max(axis=-1, keepdims=True))
        weights = e / e.sum(axis=-1, keepdims=True)
        if training and self.dropout > 0:
            drop = _xp.to_module(self._rng.random(weights.shape) >= self.dropout, xp)
            weights = xp.where(drop, weights / (1.0 - self.dropout), 0.0)
        out = weights @ v
        if q_mask is not None:
            out = xp.where(xp.asarray(q_mask, dtype=bool)[..., None], out, 0.0)
        out = xp.asarray(out, dtype=self.dtype)
        return [out, xp.asarray(weights, dtype=self.dtype)] if return_attention_scores else out

    def compute_mask(self, inputs, mask=None):
        if not mask or mask[0] is None:
            return None
        return mask[0]

    def compute_output_shape(self, input_shape):
        out = tuple(input_shape[0][:-1]) + (input_shape[1][-1],)
        if getattr(self, "_want_scores", False):
            key = input_shape[2] if len(input_shape) > 2 else input_shape[1]
            return [out, tuple(input_shape[0][:-1]) + (key[-2],)]
        return out

    def get_config(self):
        cfg = {**self._base_config(), "use_scale": self.use_scale,
               "score_mode": self.score_mode, "dropout": self.dropout, "seed": self.seed}
        if self.causal:  # only tf_keras configs have it (Keras 3 refuses the key)
            cfg["causal"] = True
        return cfg


class AdditiveAttention(Attention):
    """Bahdanau attention: scores ``sum(scale * tanh(q + k))`` with a learned ``scale``
    of shape (dim,) when ``use_scale`` (default True)."""

    def __init__(self, use_scale=True, dropout=0.0, **kwargs):
        kwargs.pop("score_mode", None)
        super().__init__(use_scale=use_scale, dropout=dropout, **kwargs)

    def _weight_specs(self, input_shape):
        return [("scale", (int(input_shape[0][-1]),), "glorot_uniform")] if self.use_scale \
            else []

    def _scores(self, q, k, xp):
        s = xp.tanh(q[..., :, None, :] + k[..., None, :, :])
        w = self._named(xp)
        return (w["scale"] * s if "scale" in w else s).sum(axis=-1)

    def get_config(self):
        cfg = super().get_config()
        del cfg["score_mode"]
        return cfg
