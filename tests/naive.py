"""Float64 NumPy reference for Keras's LSTM, written from the Keras equations.

This module shares no code with ``gpulstm`` on purpose: it is the independent
oracle every backend is compared with.  It is slow (a Python loop over time) and
meant for small shapes only.

Per step, in Keras gate order i, f, c, o::

    z = x_t @ kernel + h_tm1 @ recurrent_kernel + bias     # z is (B, 4U)
    i = ract(z_i); f = ract(z_f); g = act(z_c); o = ract(z_o)
    c = f * c_tm1 + i * g
    h = o * act(c)

Masking follows Keras's CPU path: at a masked step h and c are carried over, the
output is the previous step's *output* (zeros before the first unmasked step, not
the initial h), or zeros with ``zero_output_for_mask=True``.
"""
import math

import numpy as np

_SQRT2 = math.sqrt(2.0)
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946
_erf = np.vectorize(math.erf, otypes=[np.float64])


def _sigmoid(x):
    # Split on sign so exp never overflows.
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-x[pos]))
    e = np.exp(x[~pos])
    out[~pos] = e / (1.0 + e)
    return out


def _softplus(x):
    return np.logaddexp(0.0, x)


def _elu(x, alpha=1.0):
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0.0)))


def _hard_sigmoid_k3(x):
    return np.clip(x / 6.0 + 0.5, 0.0, 1.0)


def _hard_sigmoid_k2(x):
    return np.clip(0.2 * x + 0.5, 0.0, 1.0)


ACTIVATIONS = {
    "linear": lambda x: x,
    "tanh": np.tanh,
    "sigmoid": _sigmoid,
    "hard_sigmoid_k3": _hard_sigmoid_k3,
    "hard_sigmoid_k2": _hard_sigmoid_k2,
    "relu": lambda x: np.maximum(x, 0.0),
    "softsign": lambda x: x / (1.0 + np.abs(x)),
    "softplus": _softplus,
    "elu": _elu,
    "selu": lambda x: _SELU_SCALE * _elu(x, _SELU_ALPHA),
    "silu": lambda x: x * _sigmoid(x),
    "gelu": lambda x: 0.5 * x * (1.0 + _erf(x / _SQRT2)),
    "exponential": np.exp,
    "relu6": lambda x: np.clip(x, 0.0, 6.0),
    "hard_silu": lambda x: x * _hard_sigmoid_k3(x),
    "leaky_relu": lambda x: np.where(x >= 0, x, 0.2 * x),
    "log_sigmoid": lambda x: -_softplus(-x),
    "mish": lambda x: x * np.tanh(_softplus(x)),
    "hard_tanh": lambda x: np.clip(x, -1.0, 1.0),
    "celu": lambda x: np.maximum(x, 0.0) + np.minimum(np.expm1(np.minimum(x, 0.0)), 0.0),
}
_ALIASES = {None: "linear", "swish": "silu", "hard_swish": "hard_silu"}


def softmax(x):
    """Keras softmax over the last axis: exp(x - max) / sum (a NaN or +inf in a row makes
    the row NaN)."""
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def get_activation(name, hard_sigmoid="keras3"):
    """The NumPy function for a Keras activation name (or a callable, returned as is).

    ``hard_sigmoid`` picks the formula "hard_sigmoid" means: "keras3"
    (clip(x/6 + 0.5, 0, 1)) or "keras2" / "tf_keras" (clip(0.2x + 0.5, 0, 1)).
    """
    if callable(name):
        return name
    if name == "softmax":  # over the last axis, not elementwise (so not in ACTIVATIONS)
        return softmax
    name = _ALIASES.get(name, name)
    if name == "hard_sigmoid":
        if hard_sigmoid not in ("keras3", "keras2", "tf_keras"):
            raise ValueError(f"hard_sigmoid must be 'keras3' or 'keras2', got {hard_sigmoid!r}")
        name = "hard_sigmoid_k3" if hard_sigmoid == "keras3" else "hard_sigmoid_k2"
    return ACTIVATIONS[name]


def flavour_from_version(keras_version):
    """'keras2' for a Keras 1.x/2.x version string, else 'keras3'."""
    if keras_version is None:
        return "keras3"
    return "keras2" if int(str(keras_version).split(".")[0]) <= 2 else "keras3"


def lstm(x, kernel, recurrent_kernel, bias=None, h0=None, c0=None, mask=None,
         activation="tanh", recurrent_activation="sigmoid", go_backwards=False,
         zero_output_for_mask=False, hard_sigmoid="keras3", rec_masks=None):
    """Run one LSTM layer in float64.

    Parameters
    ----------
    x : array (B, T, D), batch-major (transpose time-major input first).
    kernel : (D, 4U); recurrent_kernel : (U, 4U); bias : (4U,) or None.
    h0, c0 : (B, U) or None (zeros).
    mask : bool (B, T) or None.
    rec_masks : (B, 4, U) or None: recurrent dropout (training mode), Keras 2's
        implementation 1: gate g's recurrent product is ``(h_tm1 * rec_masks[:, g]) @ R_g``.

    Returns
    -------
    seq : (B, T, U) outputs in processing order (reversed time with go_backwards).
    last : (B, U) output at the last processed step.
    h, c : (B, U) final states.
    """
    x = np.asarray(x, dtype=np.float64)
    W = np.asarray(kernel, dtype=np.float64)
    R = np.asarray(recurrent_kernel, dtype=np.float64)
    B, T, _ = x.shape
    U = R.shape[0]
    b = np.zeros(4 * U) if bias is None else np.asarray(bias, dtype=np.float64)
    act = get_activation(activation, hard_sigmoid)
    ract = get_activation(recurrent_activation, hard_sigmoid)
    h = np.zeros((B, U)) if h0 is None else np.array(h0, dtype=np.float64)
    c = np.zeros((B, U)) if c0 is None else np.array(c0, dtype=np.float64)
    m = np.ones((B, T), dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    steps = range(T - 1, -1, -1) if go_backwards else range(T)
    out_prev = np.zeros((B, U))
    seq = np.zeros((B, T, U))
    for k, t in enumerate(steps):
        # Garbage at masked steps may overflow here; np.where below discards it.
        with np.errstate(invalid="ignore", over="ignore"):
            z = x[:, t] @ W + _rec_product(h, R, rec_masks, range(4)) + b  # z is (B, 4U)
            z_i, z_f, z_c, z_o = z[:, :U], z[:, U:2 * U], z[:, 2 * U:3 * U], z[:, 3 * U:]
            i, f, g, o = ract(z_i), ract(z_f), act(z_c), ract(z_o)
            c_new = f * c + i * g
            h_new = o * act(c_new)
        keep = m[:, t][:, None]
        # np.where, never a multiply: NaN/inf at masked steps must not leak.
        h = np.where(keep, h_new, h)
        c = np.where(keep, c_new, c)
        out = np.where(keep, h_new, 0.0 if zero_output_for_mask else out_prev)
        seq[:, k] = out
        out_prev = out
    last = seq[:, -1].copy() if T else np.zeros((B, U))
    return seq, last, h, c


def keras_outputs(seq, last, h, c, return_sequences=False, return_state=False):
    """Arrange ``lstm()`` results the way a Keras LSTM layer returns them."""
    out = seq if return_sequences else last
    return [out, h, c] if return_state else [out]


def dense(x, kernel, bias=None, activation="linear", hard_sigmoid="keras3"):
    """Keras Dense: act(x @ kernel + bias) on the last axis."""
    y = np.asarray(x, dtype=np.float64) @ np.asarray(kernel, dtype=np.float64)
    if bias is not None:
        y = y + np.asarray(bias, dtype=np.float64)
    return get_activation(activation, hard_sigmoid)(y)


def embedding(ids, embeddings, mask_zero=False):
    """Keras Embedding lookup; returns (vectors, mask or None)."""
    ids = np.asarray(ids)
    vec = np.asarray(embeddings, dtype=np.float64)[ids]
    return vec, (ids != 0 if mask_zero else None)


def bidirectional(x, fw, bw, mask=None, merge_mode="concat", return_sequences=False,
                  activation="tanh", recurrent_activation="sigmoid", hard_sigmoid="keras3"):
    """Keras Bidirectional(LSTM): ``fw`` and ``bw`` are (kernel, recurrent_kernel, bias).

    The backward sequence is flipped back to input order before merging, and
    Keras sets zero_output_for_mask on both layers when sequences are returned.
    """
    kw = dict(mask=mask, activation=activation, recurrent_activation=recurrent_activation,
              zero_output_for_mask=return_sequences, hard_sigmoid=hard_sigmoid)
    seq_f, last_f, _, _ = lstm(x, *fw, **kw)
    seq_b, last_b, _, _ = lstm(x, *bw, go_backwards=True, **kw)
    y_f, y_b = (seq_f, seq_b[:, ::-1]) if return_sequences else (last_f, last_b)
    if merge_mode == "concat":
        return np.concatenate([y_f, y_b], axis=-1)
    if merge_mode == "sum":
        return y_f + y_b
    if merge_mode == "mul":
        return y_f * y_b
    if merge_mode == "ave":
        return (y_f + y_b) / 2.0
    if merge_mode is None:
        return [y_f, y_b]
    raise ValueError(f"unknown merge_mode {merge_mode!r}")


def gru(x, kernel, recurrent_kernel, bias=None, h0=None, mask=None, activation="tanh",
        recurrent_activation="sigmoid", reset_after=True, go_backwards=False,
        zero_output_for_mask=False, hard_sigmoid="keras3", rec_masks=None):
    """Run one Keras GRU layer in float64, gate order z, r, h.

    kernel (D, 3U); recurrent_kernel (U, 3U); bias (2, 3U) [input; recurrent] when
    ``reset_after`` else (3U,), or None.  Per step::

        x_z, x_r, x_h = split(x_t @ kernel + b_in)
        reset_after:  r_z, r_r, r_h = split(h_tm1 @ recurrent_kernel + b_rec)
                      z = ract(x_z + r_z); r = ract(x_r + r_r); hh = act(x_h + r * r_h)
        otherwise:    z = ract(x_z + h_tm1 @ R_z); r = ract(x_r + h_tm1 @ R_r)
                      hh = act(x_h + (r * h_tm1) @ R_h)
        h = z * h_tm1 + (1 - z) * hh

    ``rec_masks`` (B, 3, U): every ``h_tm1`` inside a product above is ``h_tm1 *
    rec_masks[:, g]`` for that product's gate g (without ``reset_after``,
    ``(r * (h_tm1 * m_h)) @ R_h``); the last line keeps the unmasked h_tm1.
    Masks as in ``lstm``.  Returns ``(seq, last, h)`` like ``lstm`` without c.
    """
    x = np.asarray(x, dtype=np.float64)
    W = np.asarray(kernel, dtype=np.float64)
    R = np.asarray(recurrent_kernel, dtype=np.float64)
    B, T, _ = x.shape
    U = R.shape[0]
    if bias is None:
        b_in, b_rec = np.zeros(3 * U), np.zeros(3 * U)
    elif reset_after:
        b_in, b_rec = np.asarray(bias, dtype=np.float64)
    else:
        b_in, b_rec = np.asarray(bias, dtype=np.float64), np.zeros(3 * U)
    act = get_activation(activation, hard_sigmoid)
    ract = get_activation(recurrent_activation, hard_sigmoid)
    h = np.zeros((B, U)) if h0 is None else np.array(h0, dtype=np.float64)
    m = np.ones((B, T), dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    steps = range(T - 1, -1, -1) if go_backwards else range(T)
    out_prev = np.zeros((B, U))
    seq = np.zeros((B, T, U))
    for k, t in enumerate(steps):
        with np.errstate(invalid="ignore", over="ignore"):
            xz = x[:, t] @ W + b_in  # (B, 3U)
            if reset_after:
                rz = _rec_product(h, R, rec_masks, range(3)) + b_rec
                z = ract(xz[:, :U] + rz[:, :U])
                r = ract(xz[:, U:2 * U] + rz[:, U:2 * U])
                hh = act(xz[:, 2 * U:] + r * rz[:, 2 * U:])
            else:
                rz = _rec_product(h, R, rec_masks, range(2))
                z = ract(xz[:, :U] + rz[:, :U])
                r = ract(xz[:, U:2 * U] + rz[:, U:2 * U])
                h_h = h if rec_masks is None else h * rec_masks[:, 2]
                hh = act(xz[:, 2 * U:] + (r * h_h) @ R[:, 2 * U:])
            h_new = z * h + (1.0 - z) * hh
        h, out_prev = _masked_step(m[:, t], h_new, h, out_prev, zero_output_for_mask)
        seq[:, k] = out_prev
    last = seq[:, -1].copy() if T else np.zeros((B, U))
    return seq, last, h


def _rec_product(h, R, rec_masks, gates):
    """``[(h * rec_masks[:, g]) @ R_g for g in gates]`` side by side (R_g: gate g's U
    columns of R); without masks ``h @ R`` over those columns."""
    U = R.shape[0]
    parts = []
    for g in gates:
        h_g = h if rec_masks is None else h * np.asarray(rec_masks, dtype=np.float64)[:, g]
        parts.append(h_g @ R[:, g * U:(g + 1) * U])
    return np.concatenate(parts, axis=1)


def _masked_step(keep, h_new, h, out_prev, zero_output_for_mask):
    """Keras's masked step: ``(h, output)``; a masked row keeps h and outputs its previous
    output (zeros with ``zero_output_for_mask``)."""
    keep = keep[:, None]
    return (np.where(keep, h_new, h),
            np.where(keep, h_new, 0.0 if zero_output_for_mask else out_prev))


def simple_rnn(x, kernel, recurrent_kernel, bias=None, h0=None, mask=None, activation="tanh",
               go_backwards=False, zero_output_for_mask=False, hard_sigmoid="keras3",
               rec_masks=None):
    """Run one Keras SimpleRNN layer in float64.

    kernel (D, U); recurrent_kernel (U, U); bias (U,) or None.  Per step::

        h = act(x_t @ kernel + bias + h_tm1 @ recurrent_kernel)

    ``rec_masks`` (B, 1, U): ``h_tm1 * rec_masks[:, 0]`` in the product.  Masks as in
    ``lstm``.  Returns ``(seq, last, h)`` like ``gru``.
    """
    x = np.asarray(x, dtype=np.float64)
    W = np.asarray(kernel, dtype=np.float64)
    R = np.asarray(recurrent_kernel, dtype=np.float64)
    B, T, _ = x.shape
    U = R.shape[0]
    b = np.zeros(U) if bias is None else np.asarray(bias, dtype=np.float64)
    act = get_activation(activation, hard_sigmoid)
    h = np.zeros((B, U)) if h0 is None else np.array(h0, dtype=np.float64)
    m = np.ones((B, T), dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    out_prev = np.zeros((B, U))
    seq = np.zeros((B, T, U))
    for k in range(T):
        t = T - 1 - k if go_backwards else k
        with np.errstate(invalid="ignore", over="ignore"):
            h_new = act(x[:, t] @ W + b + _rec_product(h, R, rec_masks, range(1)))
        h, out_prev = _masked_step(m[:, t], h_new, h, out_prev, zero_output_for_mask)
        seq[:, k] = out_prev
    last = seq[:, -1].copy() if T else np.zeros((B, U))
    return seq, last, h


def _conv_channels_last(x, w, strides, dilation, padding):
    """Keras/TF convolution of channels-last ``x`` (B, *S, C) with ``w`` (*k, C, F), float64,
    written out position by position ("same" pads total // 2 before, the rest after)."""
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    ks = w.shape[:-2]
    spatial = x.shape[1:-1]
    before, outs = [], []
    for n, k, s, d in zip(spatial, ks, strides, dilation):
        span = d * (k - 1) + 1
        if padding == "same":
            o = -(-n // s)
            total = max((o - 1) * s + span - n, 0)
            before.append(total // 2)
        else:
            o = (n - span) // s + 1
            before.append(0)
        outs.append(o)
    y = np.zeros((x.shape[0],) + tuple(outs) + (w.shape[-1],))
    for pos in np.ndindex(*outs):
        acc = np.zeros((x.shape[0], w.shape[-1]))
        for off in np.ndindex(*ks):
            src = [p * s + o * d - b for p, s, o, d, b in zip(pos, strides, off, dilation, before)]
            if all(0 <= i < n for i, n in zip(src, spatial)):
                acc += x[(slice(None),) + tuple(src)] @ w[off]
        y[(slice(None),) + pos] = acc
    return y


def conv_lstm(x, kernel, recurrent_kernel, bias=None, strides=1, padding="valid",
              dilation_rate=1, data_format="channels_last", h0=None, c0=None, mask=None,
              activation="tanh", recurrent_activation="sigmoid", go_backwards=False,
              zero_output_for_mask=False, hard_sigmoid="keras3"):
    """Keras's ConvLSTM{1,2,3}D in float64 (gate order i, f, c, o; the recurrent
    convolution with stride 1 and "same" padding, no dilation).

    x : (B, T, *S, C) channels last, or (B, T, C, *S) channels first; h0, c0 in the layer's
    format.  Returns ``(seq, last, h, c)`` like :func:`lstm`, in the layer's data format.
    """
    x = np.asarray(x, dtype=np.float64)
    rank = x.ndim - 3
    first = data_format == "channels_first"

    def cl(a):  # channels first -> last on every non-batch axis after the leading ones
        return np.moveaxis(a, a.ndim - rank - 1, -1) if first else a

    def back(a):
        return np.moveaxis(a, -1, a.ndim - rank - 1) if first else a

    strides = (strides,) * rank if np.isscalar(strides) else tuple(strides)
    dil = (dilation_rate,) * rank if np.isscalar(dilation_rate) else tuple(dilation_rate)
    x = cl(x)
    B, T = x.shape[:2]
    W = np.asarray(kernel, dtype=np.float64)
    R = np.asarray(recurrent_kernel, dtype=np.float64)
    F = R.shape[-1] // 4
    b = np.zeros(4 * F) if bias is None else np.asarray(bias, dtype=np.float64)
    act = get_activation(activation, hard_sigmoid)
    ract = get_activation(recurrent_activation, hard_sigmoid)
    zx = [_conv_channels_last(x[:, t], W, strides, dil, padding) + b for t in range(T)]
    frame = zx[0].shape[:-1] + (F,)
    h = np.zeros(frame) if h0 is None else cl(np.array(h0, dtype=np.float64))
    c = np.zeros(frame) if c0 is None else cl(np.array(c0, dtype=np.float64))
    m = np.ones((B, T), dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    out_prev = np.zeros(frame)
    seq = np.zeros((B, T) + frame[1:])
    ones = (1,) * rank
    for k, t in enumerate(range(T - 1, -1, -1) if go_backwards else range(T)):
        z = zx[t] + _conv_channels_last(h, R, ones, ones, "same")
        i, f = ract(z[..., :F]), ract(z[..., F:2 * F])
        g, o = act(z[..., 2 * F:3 * F]), ract(z[..., 3 * F:])
        c_new = f * c + i * g
        h_new = o * act(c_new)
        keep = m[:, t].reshape((B,) + (1,) * (h.ndim - 1))
        h, c = np.where(keep, h_new, h), np.where(keep, c_new, c)
        out = np.where(keep, h_new, 0.0 if zero_output_for_mask else out_prev)
        seq[:, k] = out
        out_prev = out
    return back(seq), back(out_prev), back(h), back(c)
