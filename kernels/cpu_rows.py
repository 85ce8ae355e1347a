"""What every step does around the product, per row, for every cell's driver: copy a
step's inputs into z, stack [x_t | h_tm1], and write the step's outputs with Keras's
masked-step rule.  All LEAF functions (no reference counting: see ``cpu_micro``)."""
import numba

from gpulstm.kernels import _cache  # noqa: F401  (first: before any cached kernel)
from gpulstm.kernels.cells import FASTMATH as _FAST
from gpulstm.kernels.cpu_micro import LEAF
from gpulstm.kernels.cpu_tiles import recur_axpy


@numba.njit(**LEAF)
def copy_row(src, dst):
    """dst[:] = src without NumPy's overlap copy (which allocates, so needs NRT)."""
    for j in range(dst.shape[0]):
        dst[j] = src[j]


@numba.njit(**LEAF)
def axpy_rows(M, A, z, a0, T, t):
    """z[r] += A[(a0 + r) * T + t] @ M for every row r of z (``recur_axpy``)."""
    for r in range(z.shape[0]):
        recur_axpy(M, A[(a0 + r) * T + t], z[r])


@numba.njit(**LEAF)
def stack_rows(x, H, xh, b0, T, t):
    """xh[r] = [x_t | h_tm1] of row b0 + r: x (B * T, D) row (b0 + r) * T + t, H (nb, U)."""
    D = x.shape[1]
    for r in range(H.shape[0]):
        xr = x[(b0 + r) * T + t]
        for j in range(D):
            xh[r, j] = xr[j]
        for j in range(H.shape[1]):
            xh[r, D + j] = H[r, j]


@numba.njit(**LEAF)
def emit_step(H, prev, out, mask, b0, t, s, has_mask, zero_output_for_mask, return_sequences):
    """Step s's outputs of rows b0.. (H their new h): Keras's masked-step rule.

    A masked row outputs its previous output (zeros before its first unmasked step,
    or always with zero_output_for_mask), kept in prev (nb, U); out (B, T, U) in
    processing order, written when return_sequences."""
    for r in range(H.shape[0]):
        b = b0 + r
        if has_mask and mask[b, t] == 0:
            if zero_output_for_mask:
                prev[r, :] = 0.0
            if return_sequences:
                copy_row(prev[r], out[b, s])
            continue
        if has_mask:
            copy_row(H[r], prev[r])
        if return_sequences:
            copy_row(H[r], out[b, s])


@numba.njit(**LEAF)
def emit_last(H, prev, out, b0, has_mask, T):
    """The last output of rows b0.. into out[:, 0] (zeros when no step ran)."""
    for r in range(H.shape[0]):
        if has_mask:
            copy_row(prev[r], out[b0 + r, 0])
        elif T > 0:
            copy_row(H[r], out[b0 + r, 0])
        else:
            out[b0 + r, 0, :] = 0.0


@numba.njit(**LEAF)
def fill_rows(z, bias):
    """z[r] = bias for every row r (zeros when bias is empty)."""
    for r in range(z.shape[0]):
        for j in range(z.shape[1]):
            z[r, j] = bias[j] if bias.shape[0] > 0 else 0.0


@numba.njit(fastmath=_FAST, **LEAF)
def set_inputs(src, bias, z, fused, has_bias, first, t):
    """z[r] = src[first + r, t] + bias (just the bias when projecting step by step;
    ``has_bias`` is ``bias.shape[0] > 0``)."""
    if fused:
        fill_rows(z, bias)
        return
    G = z.shape[1]
    for r in range(z.shape[0]):
        zr = z[r]
        if has_bias:
            xr = src[first + r, t]
            for j in range(G):
                zr[j] = xr[j] + bias[j]
        else:
            copy_row(src[first + r, t], zr)


@numba.njit(fastmath=_FAST, **LEAF)
def add_inputs(src, bias, z, fused, has_bias, first, t):
    """z[r] += src[first + r, t] + bias (just the bias when projecting step by step)."""
    G = z.shape[1]
    for r in range(z.shape[0]):
        zr = z[r]
        if fused:
            if has_bias:
                for j in range(G):
                    zr[j] += bias[j]
        elif has_bias:
            xr = src[first + r, t]
            for j in range(G):
                zr[j] += xr[j] + bias[j]
        else:
            xr = src[first + r, t]
            for j in range(G):
                zr[j] += xr[j]
