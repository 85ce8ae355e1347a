"""The CPU backend's NumPy tier: the LSTM time loop in plain NumPy, no numba.

Loading numba and its cached kernels costs about a second in a fresh process
(``import numba``, SciPy's BLAS lookup, numba's registries); a small call costs
microseconds to milliseconds.  ``cpu_entry`` runs such calls here until running
them has cost about as much as loading numba would, then loads numba for good.
Results agree with the numba kernels to the float32 tolerance, not bit for bit.

Same contract as every backend (see ``gpulstm.dispatch``), except that custom
activation callables are numba's job and are refused here.
"""
import numpy as np

from gpulstm.kernels.codes import CODES, CUSTOM

_NAMES = {code: name for name, code in CODES.items() if name != "swish"}


def _sigmoid(z, out):
    # 1 / (1 + exp(-z)) as 0.5 * tanh(z / 2) + 0.5: never overflows, three passes
    # in place; absolute error about one ulp of 1 (the tolerance is absolute below 1)
    np.multiply(z, 0.5, out=out)
    np.tanh(out, out=out)
    out *= 0.5
    out += 0.5
    return out


def _tanh(z, out):
    return np.tanh(z, out=out)


def _other(name):
    # the rest compute like Dense's activations (array_activations)
    from gpulstm.kernels.array_activations import XP_ACTIVATIONS

    fn = XP_ACTIVATIONS[name]

    def apply(z, out):
        out[...] = fn(z, np)
        return out

    return apply


def activation_fn(code):
    """``f(z, out) -> out`` for an integer activation code of ``CODES``."""
    if code == CODES["sigmoid"]:
        return _sigmoid
    if code == CODES["tanh"]:
        return _tanh
    if isinstance(code, (int, np.integer)) and code in _NAMES:
        return _other(_NAMES[code])
    raise ValueError(
        f"The NumPy tier runs built-in activations only. Expected an integer code of "
        f"gpulstm.activations.CODES. Received: activation={code!r}")


# NumPy has no erf ufunc: gelu's elementwise Python loop would cost ~1 us per value
_SLOW = {CODES["gelu"]}


def supports(activation, recurrent_activation):
    """Whether this tier runs the pair fast (custom callables and gelu need numba)."""
    return all(not callable(a) and a != CUSTOM and a not in _SLOW
               for a in (activation, recurrent_activation))


def lstm_forward(x, kernel, recurrent_kernel, bias, h0, c0, mask, *, activation,
                 recurrent_activation, go_backwards=False, return_sequences=False,
                 zero_output_for_mask=False, x_proj=None, rec_masks=None, prepared=None):
    """NumPy LSTM forward pass; see ``gpulstm.dispatch`` for the contract.

    ``prepared`` is accepted and ignored (the numba tier's packed weights).
    """
    # numba's kernels compute NaN and inf silently; so does this tier
    with np.errstate(all="ignore"):
        return _forward(x, kernel, recurrent_kernel, bias, h0, c0, mask, activation,
                        recurrent_activation, go_backwards, return_sequences,
                        zero_output_for_mask, x_proj, rec_masks)


def _forward(x, kernel, recurrent_kernel, bias, h0, c0, mask, activation,
             recurrent_activation, go_backwards, return_sequences, zero_output_for_mask,
             x_proj, rec_masks):
    dtype = recurrent_kernel.dtype
    act = activation_fn(activation)
    ract = activation_fn(recurrent_activation)
    rk = np.asarray(recurrent_kernel)
    G = rk.shape[1]
    U = G // 4
    if x_proj is None:
        B, T, D = x.shape
        # x_proj is (B, T, G): x_t @ kernel + bias for every timestep, one GEMM
        x_proj = (np.asarray(x, dtype).reshape(B * T, D) @ np.asarray(kernel, dtype))
        if bias is not None:
            x_proj += np.asarray(bias, dtype)
        x_proj = x_proj.reshape(B, T, G)
    else:
        x_proj = np.asarray(x_proj, dtype)
    B, T = x_proj.shape[:2]
    h = np.array(h0, dtype=dtype, copy=True)
    c = np.array(c0, dtype=dtype, copy=True)
    # out is (B, T, U) in processing order; prev (B, U) the last output, zeros before
    # the first unmasked step as in Keras
    out = np.empty((B, T, U), dtype) if return_sequences else None
    prev = np.zeros((B, U), dtype)
    keep = None if mask is None else np.asarray(mask, bool)
    rec = None if rec_masks is None else np.asarray(rec_masks, dtype)  # (B, 4, U)
    z = np.empty((B, G), dtype)
    gates = np.empty((B, G), dtype)
    for s in range(T):
        t = T - 1 - s if go_backwards else s
        # z is (B, G) = x_proj[:, t] + h_tm1 @ recurrent_kernel
        if rec is None:
            np.matmul(h, rk, out=z)
        else:
            for g in range(4):
                np.matmul(h * rec[:, g], rk[:, g * U:(g + 1) * U], out=z[:, g * U:(g + 1) * U])
        z += x_proj[:, t]
        # i and f are adjacent (Keras gate order i, f, c, o): one pass for both
        ract(z[:, :2 * U], gates[:, :2 * U])
        act(z[:, 2 * U:3 * U], gates[:, 2 * U:3 * U])
        ract(z[:, 3 * U:], gates[:, 3 * U:])
        i, f, g_, o = (gates[:, k * U:(k + 1) * U] for k in range(4))
        c_t = f * c + i * g_
        h_t = o * act(c_t, np.empty_like(c_t))
        if keep is None:
            h, c = h_t, c_t
            prev = h_t
        else:
            m = keep[:, t, None]
            h = np.where(m, h_t, h)
            c = np.where(m, c_t, c)
            prev = np.where(m, h_t, 0 if zero_output_for_mask else prev)
        if return_sequences:
            out[:, s] = prev
    if not return_sequences and prev is h:
        prev = prev.copy()  # the output and the state are separate arrays, as on numba
    return (out if return_sequences else prev), h, c
