"""The fast CPU recurrence of the LSTM: ``run_rows`` and the vectorised gate pass.

Per step ``z = x_proj[:, t] + bias + h_tm1 @ U`` (or ``[x_t | h_tm1] @ [kernel; U]``),
the product on the panel micro-kernels of ``cpu_micro`` (float32 on AVX2 / AVX-512) or
the dot-product tiles of ``cpu_tiles``; the per-row copies and outputs around it are
``cpu_rows``'.  The gate pass is a few short loops over contiguous row slices so LLVM
vectorises them; float32 tanh / sigmoid use a rational approximation (max abs error
proven in scripts/tanh_sweep.py), every other activation the exact shared scalar switch.

Large row blocks (``blas``, chosen by ``cpu.BLAS_MIN_WORK``) instead run the
recurrent product and the input projection as one BLAS GEMM per step,
``np.dot([x_t | h_tm1], [kernel; U], z)`` (SciPy's BLAS, one thread per block; K =
D + U feeds the GEMM better than a separate K = D projection), the bias added to z
afterwards; the gate pass is the same.

Rows are independent work items: ``run_rows`` runs rows [b0, b1) through the whole
sequence; ``cpu.run_parallel`` (``cpu_driver``'s loop) hands threads blocks of rows (no
barrier per step).  Only ``fastmath`` flags that keep NaN and inf semantics are used.
"""
import numba
import numpy as np

from gpulstm.kernels.codes import CODES
from gpulstm.kernels import _cache  # noqa: F401  (first: before any cached kernel)
from gpulstm.kernels import cpu_blas, cpu_micro
from gpulstm.kernels.activations import activate
from gpulstm.kernels.cells import FASTMATH, lstm_c_fast
from gpulstm.kernels.cpu_rows import (add_inputs, axpy_rows, emit_last, emit_step, set_inputs,
                                      stack_rows)
from gpulstm.kernels.cpu_tiles import recur_tiles

_TANH = CODES["tanh"]
_SIGMOID = CODES["sigmoid"]
_LINEAR = CODES["linear"]
_RELU = CODES["relu"]
_HARD_SIGMOID_K3 = CODES["hard_sigmoid_k3"]
_HARD_SIGMOID_K2 = CODES["hard_sigmoid_k2"]

# reassoc lets LLVM vectorise the dot-product reductions; none of these flags
# assumes "no NaN" or "no inf" (that is what fastmath=True would add).
_FAST = FASTMATH
_JIT = dict(cache=True, error_model="numpy", nogil=True)  # released GIL: Python threads overlap
LEAF = cpu_micro.LEAF  # the step-level functions: no reference counting (see there)
_L2_FLOATS = 65536  # 256 KiB of float32: half of a 512 KiB L2


# Eigen's float32 rational tanh (the one TensorFlow's CPU kernels use): odd [13/6].
_CLAMP = np.float32(7.90531110763549805)
_TINY = np.float32(0.0004)
_A1 = np.float32(4.89352455891786e-03)
_A3 = np.float32(6.37261928875436e-04)
_A5 = np.float32(1.48572235717979e-05)
_A7 = np.float32(5.12229709037114e-08)
_A9 = np.float32(-8.60467152213735e-11)
_A11 = np.float32(2.00018790482477e-13)
_A13 = np.float32(-2.76076847742355e-16)
_B0 = np.float32(4.89352518554385e-03)
_B2 = np.float32(2.26843463243900e-03)
_B4 = np.float32(1.18534705686654e-04)
_B6 = np.float32(1.19825839466702e-06)
_HALF = np.float32(0.5)
_ONE = np.float32(1.0)


@numba.njit(fastmath=_FAST, **_JIT)
def _tanh_pq(x):
    """Eigen's float32 rational tanh as a fraction ``(p, q)``, q > 0 (callers may
    combine divisions).  Comparisons written so NaN falls through both clamps and
    stays NaN; |x| < 0.0004 gives (x, 1)."""
    y = x
    if y > _CLAMP:
        y = _CLAMP
    if y < -_CLAMP:
        y = -_CLAMP
    y2 = y * y
    p = y2 * _A13 + _A11
    p = y2 * p + _A9
    p = y2 * p + _A7
    p = y2 * p + _A5
    p = y2 * p + _A3
    p = y2 * p + _A1
    p = y * p
    q = y2 * _B6 + _B4
    q = y2 * q + _B2
    q = y2 * q + _B0
    if abs(x) < _TINY:
        p = x
        q = _ONE
    return p, q


@numba.njit(fastmath=_FAST, **_JIT)
def _tanh_f32(x):
    p, q = _tanh_pq(x)
    return p / q


# Loops run over views from index 0: with ``range(lo, hi)`` or ``z[U + j]`` LLVM
# cannot prove the index non-negative, keeps numba's wraparound select per element
# and, without AVX-512 gathers, does not vectorise (AVX2: 5-7x slower gates).
@numba.njit(fastmath=_FAST, **LEAF)
def tanh_vec(buf, lo, hi):
    """buf[lo:hi] = tanh(buf[lo:hi]) with the float32 rational tanh."""
    v = buf[lo:hi]
    for j in range(v.shape[0]):
        v[j] = _tanh_f32(v[j])


@numba.njit(fastmath=_FAST, **LEAF)
def sigmoid_vec(buf, lo, hi):
    """buf[lo:hi] = sigmoid(buf[lo:hi]) as 0.5 * tanh(0.5 x) + 0.5."""
    v = buf[lo:hi]
    for j in range(v.shape[0]):
        v[j] = _HALF * _tanh_f32(_HALF * v[j]) + _HALF


@numba.njit(**LEAF)
def _apply(code, buf, lo, hi, fast):
    if fast and code == _TANH:
        tanh_vec(buf, lo, hi)
    elif fast and code == _SIGMOID:
        sigmoid_vec(buf, lo, hi)
    elif code == _LINEAR:
        pass
    else:
        v = buf[lo:hi]
        # A constant code folds activate()'s switch away and the loop vectorises
        # (hard_sigmoid: a third of a B=8 U=256 step otherwise); other codes keep
        # the switch per element.
        if code == _HARD_SIGMOID_K3:
            for j in range(v.shape[0]):
                v[j] = activate(_HARD_SIGMOID_K3, v[j])
        elif code == _HARD_SIGMOID_K2:
            for j in range(v.shape[0]):
                v[j] = activate(_HARD_SIGMOID_K2, v[j])
        elif code == _RELU:
            for j in range(v.shape[0]):
                v[j] = activate(_RELU, v[j])
        else:
            for j in range(v.shape[0]):
                v[j] = activate(code, v[j])


@numba.njit(fastmath=_FAST, **LEAF)
def _cell(z, c_tm1, tmp, U):
    # c_t = f * c_tm1 + i * g; tmp keeps c_t for act(c_t)
    z_i, z_f, z_g = z[:U], z[U:2 * U], z[2 * U:3 * U]
    for j in range(U):
        c_t = lstm_c_fast(z_f[j], c_tm1[j], z_i[j], z_g[j])
        c_tm1[j] = c_t
        tmp[j] = c_t


@numba.njit(fastmath=_FAST, **LEAF)
def _out(z, tmp, h_tm1, U):
    z_o = z[3 * U:4 * U]
    for j in range(U):
        h_tm1[j] = z_o[j] * tmp[j]


@numba.njit(**LEAF)
def _gates(z, h_tm1, c_tm1, tmp, act, ract, fast):
    """One row's gate update from z (G,) = i, f, c, o pre-activations; h, c in place."""
    U = h_tm1.shape[0]
    _apply(ract, z, 0, 2 * U, fast)
    _apply(act, z, 2 * U, 3 * U, fast)
    _apply(ract, z, 3 * U, 4 * U, fast)
    _cell(z, c_tm1, tmp, U)
    _apply(act, tmp, 0, U, fast)
    _out(z, tmp, h_tm1, U)


@numba.njit(fastmath=_FAST, **LEAF)
def _gates_sigmoid_tanh(z, H, C, mask, b0, t, has_mask, u0, ul):
    """Every unmasked row's gate update for Keras's default activations, one fused pass.

    z (nb, >= 4 ul) rows of i, f, c, o pre-activations of units [u0, u0 + ul) of
    H, C (nb, U), updated in place.  No per-row slices (each costs reference
    counting) and unsigned indices (so ``ul + j`` needs no negative-index check and
    the loop vectorises).
    """
    nb = H.shape[0]
    u = np.uint64(ul)
    o0 = np.uint64(u0)
    for r in range(nb):
        if has_mask and mask[b0 + r, t] == 0:
            continue
        for j in range(ul):
            k = np.uint64(j)
            # sigmoid(x) = 0.5 tanh(x / 2) + 0.5 = (p + q) / 2q; c_t and h_t each take
            # one division over the product of the denominators (3 divisions a unit
            # instead of 5; every q lies in [0.0049, 1], so the products stay normal)
            pi, qi = _tanh_pq(_HALF * z[r, k])
            pf, qf = _tanh_pq(_HALF * z[r, u + k])
            pg, qg = _tanh_pq(z[r, u + u + k])
            po, qo = _tanh_pq(_HALF * z[r, u + u + u + k])
            qig = qi * qg
            c = (_HALF * (pf + qf) * C[r, o0 + k] * qig + _HALF * (pi + qi) * pg * qf) / (qf * qig)
            C[r, o0 + k] = c
            pc, qc = _tanh_pq(c)
            H[r, o0 + k] = (_HALF * (po + qo) * pc) / (qo * qc)


@numba.njit(**LEAF)
def gates_rows(z, H, C, tmp, act, ract, fast, mask, b0, t, has_mask, u0, ul):
    """The gate update of units [u0, u0 + ul) of every unmasked row r (mask[b0 + r, t])
    from z (nb, >= 4 ul); H, C (nb, U) in place."""
    if fast and act == _TANH and ract == _SIGMOID:
        _gates_sigmoid_tanh(z, H, C, mask, b0, t, has_mask, u0, ul)
        return
    for r in range(H.shape[0]):
        if has_mask and mask[b0 + r, t] == 0:
            continue
        _gates(z[r, :4 * ul], H[r, u0:u0 + ul], C[r, u0:u0 + ul], tmp, act, ract, fast)


@numba.njit(**_JIT)
def run_rows(x, W, WT, x_proj, bias, UT, P, RK, h, c, mask, act, ract, fast, wide, blas,
             pfirst, go_backwards, return_sequences, zero_output_for_mask, out, T, b0, b1):
    """Run rows [b0, b1) through the whole sequence.

    ``blas``: one ``np.dot`` per step (SciPy's BLAS; the caller limits its threads):
    z = [x_t | h_tm1] @ W with W = [kernel; RK] (D + U, G) given, else h_tm1 @ RK
    with x_proj given.
    ``P`` (G / 16, K, 16) not empty: the product runs on the ``cpu_micro`` panel
    kernels, P packing [kernel; RK] (K = D + U: [x_t | h_tm1] @ P per step, x given)
    or RK alone (K = U, x_proj given).  ``pfirst`` (P stacked, x given): these rows'
    x @ kernel is projected up front on the kernel's panels (P[:, :D]) and each step
    runs h_tm1 @ RK on the rest (P[:, D:]): wide inputs (D >> U) then read the
    kernel once instead of once per step.
    Otherwise the input projection comes one of three ways: WT (G, D) given (packed
    kernel.T): projected up front for these rows with the same register tiles (no
    BLAS, so no BLAS threads); W (D, G) alone: projected step by step (small
    problems); neither: x_proj (B, T, G) holds x_t @ kernel.  x is the input as
    (B * T, D) (row b * T + t),
    or (0, 0); bias (G,) or (0,); UT (G, U) packed ``recurrent_kernel.T``, or (0, 0)
    to stream RK (U, G) per row; h, c (B, U) initial states, overwritten with the
    final ones; mask (B, T) uint8 or (0, 0); out (B, T, U) in processing order or
    (B, 1, U) for the last output (written).
    """
    G = RK.shape[1]
    U = G // 4
    panel = P.shape[0] > 0
    # stacked: one product per step of [x_t | h_tm1] against [kernel; RK]
    stacked = (blas and W.shape[0] > 0) or (panel and P.shape[1] > U and not pfirst)
    project = WT.shape[0] > 0
    # the caller passes W empty on the panel paths, so fused is False there
    fused = W.shape[0] > 0 and not project and not blas
    nb = b1 - b0
    has_mask = mask.shape[0] > 0
    has_bias = bias.shape[0] > 0
    tiled = UT.shape[0] > 0
    dt = RK.dtype
    src = x_proj
    first = b0  # row of src that holds batch row b0
    PR = P  # the panels of each step's product
    if project:
        # xp is (nb * T, G) = x[rows of b0..b1] @ kernel
        xp = np.zeros((nb * T, G), dt)
        recur_tiles(WT, W, x[b0 * T:b1 * T], xp, nb * T, wide)
        src = xp.reshape((nb, T, G))
        first = 0
    elif pfirst:
        # xp is (nb * T, G) = x[rows of b0..b1] @ kernel, on the kernel's panels
        D0 = P.shape[1] - U
        xp = np.zeros((nb * T, G), dt)
        xr = x[b0 * T:b1 * T]
        # blocks of rows whose x (rows x D) stays in L2 while every panel passes
        step = max(4, (_L2_FLOATS // D0) // 4 * 4)
        for r0 in range(0, nb * T, step):
            r1 = min(r0 + step, nb * T)
            cpu_micro.gemm_panels(P[:, :D0], xr[r0:r1], xp[r0:r1], r1 - r0, wide)
        src = xp.reshape((nb, T, G))
        first = 0
        PR = P[:, D0:]
    z = np.empty((nb, G), dt)
    tmp = np.empty(U, dt)
    # prev holds each row's last output (zeros before its first unmasked step)
    prev = np.zeros((nb if has_mask else 0, U), dt)
    H = h[b0:b1]
    C = c[b0:b1]
    D = x.shape[1]
    # xh is (nb, D + U) = [x_t | h_tm1] rows: one GEMM per step against [kernel; RK]
    xh = np.empty((nb if stacked else 0, D + U), dt)
    for s in range(T):
        t = T - 1 - s if go_backwards else s
        if panel:
            # z = (x_proj[:, t] or 0) + bias, then += [x_t | h_tm1] @ [kernel; RK]
            # (or h_tm1 @ RK) on the register-blocked panel kernels
            set_inputs(src, bias, z, stacked, has_bias, first, t)
            if stacked:
                stack_rows(x, H, xh, b0, T, t)
                cpu_micro.gemm_panels(PR, xh, z, nb, wide, cpu_micro.step_reversed(s))
            else:
                cpu_micro.gemm_panels(PR, H, z, nb, wide, cpu_micro.step_reversed(s))
        elif blas:
            # z = [x_t | h_tm1] @ [kernel; RK] (or h_tm1 @ RK, x_proj given) by one
            # BLAS GEMM, then the bias (and x_proj) is added to it
            if stacked:
                stack_rows(x, H, xh, b0, T, t)
                cpu_blas.dot(xh, W, z)
            else:
                cpu_blas.dot(H, RK, z)
            add_inputs(src, bias, z, stacked, has_bias, first, t)
        else:
            set_inputs(src, bias, z, fused, has_bias, first, t)
        if fused:
            axpy_rows(W, x, z, b0, T, t)
        if tiled:
            recur_tiles(UT, RK, H, z, nb, wide)
        elif not blas and not panel:
            axpy_rows(RK, H, z, 0, 1, 0)
        gates_rows(z, H, C, tmp, act, ract, fast, mask, b0, t, has_mask, 0, U)
        emit_step(H, prev, out, mask, b0, t, s, has_mask, zero_output_for_mask,
                  return_sequences)
    if not return_sequences:
        emit_last(H, prev, out, b0, has_mask, T)
