"""The plain reference loop of the CPU backend: user activations, recurrent dropout.

``_recurrence`` runs the LSTM step by step for every batch row (no tiles, no
panels).  A user callable gets its own kernel, built from this loop with the user's
function switched in for ``activate``; training-mode recurrent dropout (per-gate
masks on h) runs the compiled loop as it is.
"""
import types

import numba
import numpy as np

from gpulstm.kernels.codes import CUSTOM
from gpulstm.kernels import _cache  # noqa: F401  (first: before any cached kernel)
from gpulstm.kernels.activations import activate
from gpulstm.kernels.cells import lstm_c

_CUSTOM_RACT = CUSTOM - 1  # the code a custom recurrent_activation runs under

_JIT = dict(error_model="numpy", nogil=True)  # Python threads run kernels side by side


def _recurrence(x_proj, recurrent_kernel, h, c, mask, rec_masks, act, ract,
                go_backwards, return_sequences, zero_output_for_mask, out):
    """Run the LSTM time loop for every batch row.

    x_proj (B, T, G) holds x_t @ kernel + bias; recurrent_kernel is (U, G); h and c
    (B, U) hold the initial state and are overwritten with the final one; mask
    (B, T) uint8 (shape (0, 0) when absent); rec_masks (B, 4, U) (shape (0, 0, 0)
    when absent); out is (B, T, U) written in processing order, or (B, 1, U)
    holding the last output.
    """
    B, T, G = x_proj.shape
    U = G // 4
    has_mask = mask.shape[0] > 0
    has_rec = rec_masks.shape[0] > 0
    z = np.empty(G, dtype=x_proj.dtype)
    hm = np.empty(U, dtype=x_proj.dtype)
    prev = np.empty(U, dtype=x_proj.dtype)
    for b in range(B):
        h_tm1 = h[b]
        c_tm1 = c[b]
        prev[:] = 0.0  # Keras emits zeros before the first unmasked step
        for s in range(T):
            t = T - 1 - s if go_backwards else s
            if has_mask and mask[b, t] == 0:
                if zero_output_for_mask:
                    prev[:] = 0.0
                if return_sequences:
                    out[b, s, :] = prev
                continue
            # z is (G,) = x_proj[b, t] + h_tm1 @ recurrent_kernel
            z[:] = x_proj[b, t]
            if has_rec:
                for g in range(4):
                    for k in range(U):
                        hk = h_tm1[k] * rec_masks[b, g, k]
                        for j in range(g * U, (g + 1) * U):
                            z[j] += hk * recurrent_kernel[k, j]
            else:
                for k in range(U):
                    hk = h_tm1[k]
                    for j in range(G):
                        z[j] += hk * recurrent_kernel[k, j]
            for j in range(U):
                i = activate(ract, z[j])
                f = activate(ract, z[U + j])
                g_ = activate(act, z[2 * U + j])
                o = activate(ract, z[3 * U + j])
                c_t = lstm_c(f, c_tm1[j], i, g_)
                c_tm1[j] = c_t
                hm[j] = o * activate(act, c_t)
            h_tm1[:] = hm
            prev[:] = hm
            if return_sequences:
                out[b, s, :] = hm
        if not return_sequences:
            out[b, 0, :] = prev


_recurrence_njit = numba.njit(cache=True, **_JIT)(_recurrence)
_custom_kernels = {}


def _custom_kernel(act_fn, ract_fn):
    """The recurrence compiled with user activations switched in (cached per pair)."""
    key = (act_fn, ract_fn)
    kern = _custom_kernels.get(key)
    if kern is None:
        user_act = _compile_user(act_fn, "activation") if act_fn is not None else None
        user_ract = _compile_user(ract_fn, "recurrent_activation") if ract_fn is not None else None

        def build_switch(ua, ur):
            @numba.njit(**_JIT)
            def switch(code, x):
                if code == CUSTOM:
                    return ua(x)
                if code == _CUSTOM_RACT:
                    return ur(x)
                return activate(code, x)
            return switch

        ident = numba.njit(lambda x: x)
        switch = build_switch(user_act or ident, user_ract or ident)
        glb = dict(_recurrence.__globals__)
        glb["activate"] = switch
        body = types.FunctionType(_recurrence.__code__, glb, "_recurrence_custom")
        kern = numba.njit(**_JIT)(body)
        _custom_kernels[key] = kern
    return kern


def _compile_user(fn, arg):
    if isinstance(fn, numba.core.registry.CPUDispatcher):
        return fn
    try:
        return numba.njit(fn)
    except Exception as exc:  # pragma: no cover - njit() itself is lazy
        raise ValueError(
            f"`{arg}` must be a name or a numba-compilable scalar function. "
            f"Received: {arg}={fn!r} ({exc})"
        ) from None


def forward_plain(x, kernel, recurrent_kernel, bias, h0, c0, mask, act, ract,
                   go_backwards, return_sequences, zero_output_for_mask, x_proj, rec_masks):
    """The reference loop: user callables and training-mode recurrent dropout."""
    activation, recurrent_activation = act, ract
    dtype = recurrent_kernel.dtype
    if x_proj is None:
        B, T, D = x.shape
        # x_proj is (B, T, G): one GEMM for every timestep, outside the compiled loop
        x_proj = (x.reshape(B * T, D) @ kernel).reshape(B, T, -1)
        if bias is not None:
            x_proj += bias
    x_proj = np.ascontiguousarray(x_proj, dtype=dtype)
    B, T, G = x_proj.shape
    U = G // 4
    h = np.array(h0, dtype=dtype, order="C", copy=True)
    c = np.array(c0, dtype=dtype, order="C", copy=True)
    # out is (B, T, U), or (B, 1, U) for the last output: one rank keeps one kernel
    out = np.empty((B, T if return_sequences else 1, U), dtype=dtype)
    mask_u8 = (np.ascontiguousarray(mask, dtype=np.uint8) if mask is not None
               else np.zeros((0, 0), np.uint8))
    rec = (np.ascontiguousarray(rec_masks, dtype=dtype) if rec_masks is not None
           else np.zeros((0, 0, 0), dtype))
    kern = _recurrence_njit
    if callable(act) or callable(ract):
        kern = _custom_kernel(act if callable(act) else None,
                              ract if callable(ract) else None)
        act = CUSTOM if callable(act) else act
        ract = _CUSTOM_RACT if callable(ract) else ract
    rk = np.ascontiguousarray(recurrent_kernel, dtype=dtype)
    try:
        kern(x_proj, rk, h, c, mask_u8, rec, np.int64(act), np.int64(ract),
             bool(go_backwards), bool(return_sequences), bool(zero_output_for_mask), out)
    except numba.core.errors.TypingError as exc:
        if kern is _recurrence_njit:
            raise
        raise ValueError(
            "A custom activation could not be compiled by numba. Expected a scalar "
            "function of one float using only numba-supported operations (math.*, "
            f"arithmetic). Received: activation={activation!r}, "
            f"recurrent_activation={recurrent_activation!r}. numba said: "
            f"{str(exc).splitlines()[0]}"
        ) from None
    return (out if return_sequences else out[:, 0]), h, c
