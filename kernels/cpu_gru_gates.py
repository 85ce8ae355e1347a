"""The GRU's gate updates on a step's products, for every driver (one row block through
the sequence: ``cpu_gru``; unit chunks threads share: ``cpu_split``).  Keras's default
activations (float32) run the inlined loops on constant codes, so they vectorise; the
scalar math is ``cells``' (one definition for CPU and CUDA)."""
import numba
import numpy as np

from gpulstm.kernels import _cache  # noqa: F401  (first: before any cached kernel)
from gpulstm.kernels.cells import gru_candidate_fast, gru_h_fast
from gpulstm.kernels.codes import CODES
from gpulstm.kernels.cpu_driver import LEAF
from gpulstm.kernels.cpu_driver import act as _act
from gpulstm.kernels.cpu_fast import _FAST, _HALF, _tanh_pq

_TANH = CODES["tanh"]
_SIGMOID = CODES["sigmoid"]
_JIT = dict(cache=True, error_model="numpy", nogil=True)


@numba.njit(fastmath=_FAST, inline="always", **_JIT)
def _h_after(sz, sr, x_h, rec_h, h_tm1, act, ract, fast):
    """One unit's new h with reset_after from its gates' sums: z = ract(sz), r = ract(sr),
    hh = act(x_h + r * rec_h), h = z h_tm1 + (1 - z) hh.

    Keras's default pair (float32; constant codes, so the branch folds) runs on the
    fractions of the rational tanh, sigmoid(x) = (p + q) / 2q for tanh(x / 2) = p / q:
    r takes one division and h one, over qz * qh (3 divisions a unit become 2; each
    q lies in [0.0049, 1], so the product stays normal).  Zen 5, one thread, 100
    steps of 8 x 256 units: 0.16 ms against 0.30 for the three activations apart."""
    if fast and act == _TANH and ract == _SIGMOID:
        pz, qz = _tanh_pq(_HALF * sz)
        pr, qr = _tanh_pq(_HALF * sr)
        ph, qh = _tanh_pq(gru_candidate_fast(x_h, _HALF * (pr + qr) / qr, rec_h))
        return _HALF * ((pz + qz) * h_tm1 * qh + (qz - pz) * ph) / (qz * qh)
    zg = _act(ract, sz, fast)
    hh = _act(act, gru_candidate_fast(x_h, _act(ract, sr, fast), rec_h), fast)
    return gru_h_fast(zg, h_tm1, hh)


@numba.njit(fastmath=_FAST, inline="always", **_JIT)
def _after_loop(xs, tx, zh, H, u0, ul, mask, b0, t, has_mask, act, ract, fast):
    nb = H.shape[0]
    u = np.uint64(ul)
    o0 = np.uint64(u0)
    for r in range(nb):
        if has_mask and mask[b0 + r, t] == 0:
            continue
        for j in range(ul):
            k = np.uint64(j)
            H[r, o0 + k] = _h_after(xs[r, tx, k] + zh[r, k], xs[r, tx, u + k] + zh[r, u + k],
                                    xs[r, tx, u + u + k], zh[r, u + u + k], H[r, o0 + k],
                                    act, ract, fast)


@numba.njit(fastmath=_FAST, **LEAF)
def gates_after(xs, tx, zh, H, u0, ul, mask, b0, t, has_mask, act, ract, fast):
    """reset_after: z, r from x + recurrent parts, hh = act(x_h + r * rec_h); H updated.

    Units [u0, u0 + ul) of H (nb, U) (h_tm1, overwritten with h_t on the rows unmasked at
    mask[b0 + r, t]); xs (nb, T', >= 3 ul): their input parts at step tx, gate g at
    columns [g ul, (g + 1) ul); zh (nb, >= 3 ul) their recurrent parts, the same way.
    H is indexed whole (no column view: a strided view would not vectorise).

    Keras's default pair (float32) runs the inlined loop on constant codes: it vectorises."""
    if fast and act == _TANH and ract == _SIGMOID:
        _after_loop(xs, tx, zh, H, u0, ul, mask, b0, t, has_mask, _TANH, _SIGMOID, True)
    else:
        _after_loop(xs, tx, zh, H, u0, ul, mask, b0, t, has_mask, act, ract, fast)


@numba.njit(fastmath=_FAST, inline="always", **_JIT)
def _reset_loop(xs, tx, zh, H, RH, u0, ul, ract, fast):
    nb = H.shape[0]
    u = np.uint64(ul)
    o0 = np.uint64(u0)
    for r in range(nb):
        for j in range(ul):
            k = np.uint64(j)
            zh[r, k] = _act(ract, xs[r, tx, k] + zh[r, k], fast)
            g = _act(ract, xs[r, tx, u + k] + zh[r, u + k], fast)
            zh[r, u + k] = g
            RH[r, o0 + k] = g * H[r, o0 + k]


@numba.njit(fastmath=_FAST, **LEAF)
def reset_rows(xs, tx, zh, H, RH, u0, ul, ract, fast):
    """reset_before, first half: zh[:, :2 ul] become z and r; RH = r * H on units
    [u0, u0 + ul) (xs, tx, zh, H as in ``gates_after``; RH (nb, U) indexed like H).

    A constant sigmoid code (float32) lets the inlined loop vectorise."""
    if fast and ract == _SIGMOID:
        _reset_loop(xs, tx, zh, H, RH, u0, ul, _SIGMOID, True)
    else:
        _reset_loop(xs, tx, zh, H, RH, u0, ul, ract, fast)


@numba.njit(fastmath=_FAST, inline="always", **_JIT)
def _before_loop(xs, tx, zh, zc, H, u0, ul, mask, b0, t, has_mask, act, fast):
    nb = H.shape[0]
    u = np.uint64(ul)
    o0 = np.uint64(u0)
    for r in range(nb):
        if has_mask and mask[b0 + r, t] == 0:
            continue
        for j in range(ul):
            k = np.uint64(j)
            zg = zh[r, k]
            hh = _act(act, xs[r, tx, u + u + k] + zc[r, k], fast)
            H[r, o0 + k] = gru_h_fast(zg, H[r, o0 + k], hh)


@numba.njit(fastmath=_FAST, **LEAF)
def gates_before(xs, tx, zh, zc, H, u0, ul, mask, b0, t, has_mask, act, fast):
    """reset_before, second half: hh = act(x_h + (r * h) @ R_h); H updated on units
    [u0, u0 + ul) of the rows unmasked at mask[b0 + r, t].  zh holds z (``reset_rows``),
    zc (nb, >= ul) the chunk's (r * h) @ R_h."""
    if fast and act == _TANH:
        _before_loop(xs, tx, zh, zc, H, u0, ul, mask, b0, t, has_mask, _TANH, True)
    else:
        _before_loop(xs, tx, zh, zc, H, u0, ul, mask, b0, t, has_mask, act, fast)


@numba.njit(fastmath=_FAST, inline="always", **_JIT)
def _stacked_loop(S, H, mask, b0, t, has_mask, act, ract, fast):
    nb, U = H.shape
    u = np.uint64(U)
    for r in range(nb):
        if has_mask and mask[b0 + r, t] == 0:
            continue
        for j in range(U):
            k = np.uint64(j)
            H[r, k] = _h_after(S[r, k], S[r, u + k], S[r, u + u + k], S[r, u + u + u + k],
                               H[r, k], act, ract, fast)


@numba.njit(fastmath=_FAST, **LEAF)
def gates_stacked(S, H, mask, b0, t, has_mask, act, ract, fast):
    """reset_after on one stacked product: S (nb, 4U) = [z | r | x_h | h_h] (z and r with
    their input and recurrent parts summed, the h gate's two parts apart); H (nb, U)
    h_tm1, overwritten with h_t on the rows unmasked at mask[b0 + r, t]."""
    if fast and act == _TANH and ract == _SIGMOID:
        _stacked_loop(S, H, mask, b0, t, has_mask, _TANH, _SIGMOID, True)
    else:
        _stacked_loop(S, H, mask, b0, t, has_mask, act, ract, fast)
