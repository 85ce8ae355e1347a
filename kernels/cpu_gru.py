"""The numba CPU GRU: the whole time loop in one compiled call, Keras gate order z, r, h.

Per row block, ``x @ kernel + b_in`` is projected up front (all timesteps), then
each step runs the recurrent product on the ``cpu_micro`` panel kernels (float32 on
AVX2 + FMA / AVX-512: ``gemm_panels``) or, for float64 and the ``tiles*`` kernel
kinds, the 4-row-unrolled axpy of ``cpu_tiles.recur_axpy``:

* ``reset_after`` (Keras's default): ``h_tm1 @ recurrent_kernel + b_rec`` for all three
  gates at once; the h gate's recurrent part is multiplied by r before it is added.
* otherwise: ``h_tm1 @ R[:, :2U]`` for z and r, then ``(r * h_tm1) @ R[:, 2U:]``.

On the panels from 2 rows with D <= ``cpu.PROJECT_FIRST_RATIO`` U, nothing is projected
up front: each step stacks [x_t | h_tm1] and runs z and r (input and recurrent parts
summed) on one product, x_t @ K_h on another (both settings; ``run_rows``' ``stacked``).
Below ``cpu.PARALLEL_MIN_B`` rows with 2+ threads, ``cpu_split`` shares each step.

The gate pass uses the float32 rational tanh of ``cpu_fast`` (sigmoid as
``0.5 tanh(x / 2) + 0.5``) for float32 tanh / sigmoid, every other activation (and
float64) the exact shared scalar switch ``activate``.  Masked steps carry h over and
output the previous output (zeros before the first unmasked step), as Keras does.
Only ``fastmath`` flags that keep NaN and inf semantics are used.
"""
import numba
import numpy as np

from gpulstm.kernels import _cache  # noqa: F401  (first: before any cached kernel)
from gpulstm.kernels import cpu, cpu_chunks, cpu_driver, cpu_micro, cpu_split
from gpulstm.kernels.cpu_driver import LEAF, product, project
from gpulstm.kernels.cpu_gru_gates import gates_after, gates_before, gates_stacked, reset_rows
from gpulstm.kernels.cpu_rows import emit_last, emit_step, fill_rows, stack_rows

_JIT = dict(cache=True, error_model="numpy", nogil=True)


@numba.njit(**_JIT)
def run_rows(x, PK, K, b_in, P1, W1, b_rec, P2, W2, h, mask, act, ract, fast, panel, wide,
             reset_after, stacked, go_backwards, return_sequences, zero_output_for_mask, out,
             T, b0, b1):
    """Run rows [b0, b1) of a GRU through the whole sequence.

    x (B * T, D) (row b * T + t); K (D, 3U) the kernel and PK its panels; b_in (3U,)
    or (0,).  reset_after: W1 = recurrent_kernel (U, 3U), P1 its panels, b_rec (3U,)
    or (0,), W2 / P2 unused; otherwise W1 = R[:, :2U], W2 = R[:, 2U:] (each with
    panels P1 / P2).  Panels are used when ``panel`` (float32 only); empty (0, 0, 0)
    otherwise.  ``stacked`` (panels): no projection up front; each step runs [x_t |
    h_tm1] @ [K; R] for z and r (P1, K = D + U), x_t @ K_h (PK) and, with reset_after,
    h_tm1 @ R_h (P2) into one (nb, 4U) block, b_in its bias (4U,) = [b_z + b_rz | b_r +
    b_rr | b_h | b_rh] (or zeros); without it b_in is the bias (3U,) and (r * h_tm1) @
    R_h runs on P2 (W2 unused).  h (B, U) initial state, overwritten with the final one;
    mask (B, T) uint8 or (0, 0); out (B, T, U) in processing order or (B, 1, U) (written).
    """
    nb = b1 - b0
    U = h.shape[1]
    G = 3 * U
    dt = h.dtype
    has_mask = mask.shape[0] > 0
    prev = np.zeros((nb if has_mask else 0, U), dt)
    H = h[b0:b1]
    zc = np.empty((nb if not reset_after else 0, U), dt)  # (r * h_tm1) @ R_h
    RH = np.empty((nb if not reset_after else 0, U), dt)  # r * h_tm1
    if stacked:
        D = x.shape[1]
        xh = np.empty((nb, D + U), dt)  # [x_t | h_tm1] rows
        # reset_after: [z | r | x_h | h_h] of a step; otherwise zh = z and r, xs1 =
        # [b_z | b_r | x_h + b_h] (the input part of the gates; z and r in zh with theirs)
        S = np.empty((nb if reset_after else 0, 4 * U), dt)
        zh = np.empty((nb if not reset_after else 0, 2 * U), dt)
        xs1 = np.empty((zh.shape[0], 1, 3 * U), dt)
        if not reset_after:
            fill_rows(xs1[:, 0, :2 * U], b_in[:2 * U])
        for s in range(T):
            t = T - 1 - s if go_backwards else s
            stack_rows(x, H, xh, b0, T, t)
            rev = cpu_micro.step_reversed(s)  # then the products run in reverse order too
            if reset_after:
                fill_rows(S, b_in)
                if rev:
                    cpu_micro.gemm_panels(P2, H, S[:, 3 * U:], nb, wide, rev)
                cpu_micro.gemm_panels(P1, xh, S[:, :2 * U], nb, wide, rev)
                cpu_micro.gemm_panels(PK, xh, S[:, 2 * U:3 * U], nb, wide, rev)  # K = D: x_t
                if not rev:
                    cpu_micro.gemm_panels(P2, H, S[:, 3 * U:], nb, wide, rev)
                gates_stacked(S, H, mask, b0, t, has_mask, act, ract, fast)
            else:
                zh[:] = 0.0
                cpu_micro.gemm_panels(P1, xh, zh, nb, wide, rev)
                xs_h = xs1[:, 0, 2 * U:]
                fill_rows(xs_h, b_in[2 * U:])
                cpu_micro.gemm_panels(PK, xh, xs_h, nb, wide, rev)  # K = D: x_t only
                _reset_before(xs1, 0, zh, zc, H, RH, P2, W2, mask, b0, t, has_mask, act,
                              ract, fast, True, wide, rev)
            emit_step(H, prev, out, mask, b0, t, s, has_mask, zero_output_for_mask,
                      return_sequences)
        if not return_sequences:
            emit_last(H, prev, out, b0, has_mask, T)
        return
    xs3 = project(x, PK, K, b_in, b0, b1, T, panel, wide)  # (nb, T, 3U)
    G1 = W1.shape[1]
    zh = np.empty((nb, G1), dt)  # the recurrent product(s) of a step
    for s in range(T):
        t = T - 1 - s if go_backwards else s
        fill_rows(zh, b_rec)  # the recurrent bias (or zeros), then += h @ R
        product(P1, W1, H, zh, nb, panel, wide, cpu_micro.step_reversed(s))
        # the gates read step t's input part in place: xs3[r, t] (no per-step copy)
        if reset_after:
            gates_after(xs3, t, zh, H, 0, U, mask, b0, t, has_mask, act, ract, fast)
        else:
            _reset_before(xs3, t, zh, zc, H, RH, P2, W2, mask, b0, t, has_mask, act, ract,
                          fast, panel, wide, cpu_micro.step_reversed(s))
        emit_step(H, prev, out, mask, b0, t, s, has_mask, zero_output_for_mask,
                  return_sequences)
    if not return_sequences:
        emit_last(H, prev, out, b0, has_mask, T)


@numba.njit(**LEAF)
def _reset_before(xs, tx, zh, zc, H, RH, P2, W2, mask, b0, t, has_mask, act, ract, fast, panel,
                  wide, rev):
    """A step's gates without reset_after, once zh holds h_tm1 @ R_zr (+ any input part
    not in xs): z, r and RH = r * h_tm1, zc = RH @ R_h, then h (``gates_before``)."""
    U = H.shape[1]
    reset_rows(xs, tx, zh, H, RH, 0, U, ract, fast)
    zc[:, :] = 0.0
    product(P2, W2, RH, zc, H.shape[0], panel, wide, rev)
    gates_before(xs, tx, zh, zc, H, 0, U, mask, b0, t, has_mask, act, fast)


run_parallel = cpu_driver.parallel(run_rows, "gru_run_parallel")


# -- Python entry ---------------------------------------------------------------------
_EMPTY = cpu_driver.EMPTY


class Prepared:
    """The weights' panels (and split recurrent kernel), made once per set of weights."""

    def __init__(self, kernel, recurrent_kernel):
        self.kernel = np.ascontiguousarray(kernel)
        self.recurrent_kernel = np.ascontiguousarray(recurrent_kernel)
        self._cache = {}

    def parts(self, reset_after, panel):
        """``(PK, W1, P1, W2, P2)`` for ``run_rows``."""
        key = (bool(reset_after), bool(panel))
        if key not in self._cache:
            rk, U = self.recurrent_kernel, self.recurrent_kernel.shape[0]
            if reset_after:
                w1, w2 = rk, np.zeros((0, 0), rk.dtype)
            else:
                w1 = np.ascontiguousarray(rk[:, :2 * U])
                w2 = np.ascontiguousarray(rk[:, 2 * U:])
            pk = cpu_driver.panels(self.kernel, panel)
            p1 = cpu_driver.panels(w1, panel)
            p2 = cpu_driver.panels(w2, panel and not reset_after)
            self._cache[key] = (pk, w1, p1, w2, p2)
        return self._cache[key]

    def stacked_parts(self):
        """``(P_kh, P_zr, P_rh)``: the panels of the kernel's h columns (D, U), of [kernel;
        recurrent_kernel]'s z and r columns (D + U, 2U) and of the recurrent h columns
        (U, U), for ``run_rows``' stacked steps (float32)."""
        key = "stacked"
        if key not in self._cache:
            k, rk = self.kernel, self.recurrent_kernel
            U = rk.shape[0]
            self._cache[key] = (cpu_micro.packed_panels(k[:, 2 * U:]),
                                cpu_micro.packed_panels(np.concatenate((k[:, :2 * U],
                                                                        rk[:, :2 * U]))),
                                cpu_micro.packed_panels(rk[:, 2 * U:]))
        return self._cache[key]

    def split_panels(self, uc, reset_after):
        """``(P, PH)`` for ``cpu_split.forward_gru``: [kernel; recurrent_kernel] in its
        (z, r, h) chunk order of ``uc`` units, packed (float32), and without reset_after
        the recurrent h columns' ``cpu_split.h_panels`` (else None)."""
        key = ("split", uc)
        if key not in self._cache:
            U = self.recurrent_kernel.shape[0]
            cols = cpu_chunks.chunk_columns(U, uc, 3)[2]
            self._cache[key] = cpu_split.panels(self.kernel, self.recurrent_kernel, cols)
        if reset_after:
            return self._cache[key], None
        hkey = ("split_h", uc)
        if hkey not in self._cache:
            self._cache[hkey] = cpu_split.h_panels(self.recurrent_kernel, uc)
        return self._cache[key], self._cache[hkey]


def prepare(kernel, recurrent_kernel, bias=None):
    """A ``Prepared`` for these weights, to pass back as ``gru_forward(..., prepared=)``."""
    return Prepared(kernel, recurrent_kernel)


def gru_forward(x, kernel, recurrent_kernel, bias, h0, mask, *, activation,
                recurrent_activation, reset_after=True, go_backwards=False,
                return_sequences=False, zero_output_for_mask=False, prepared=None):
    """CPU GRU forward pass: ``(output, h_T)``; output (B, T, U) in processing order
    when ``return_sequences``, else (B, U).

    x (B, T, D); kernel (D, 3U); recurrent_kernel (U, 3U); bias (2, 3U) when
    ``reset_after`` else (3U,), or None; h0 (B, U); mask (B, T) bool or None;
    activation codes of ``gpulstm.activations.CODES`` (callables: see
    ``cpu_gru_numpy``).
    """
    dtype = recurrent_kernel.dtype
    char = dtype.char
    B, T, D = x.shape
    U = recurrent_kernel.shape[0]
    if prepared is None:
        prepared = Prepared(kernel, recurrent_kernel)
    panel, wide = cpu_driver.kind(char)
    if panel and not callable(activation) and not callable(recurrent_activation):
        # below PARALLEL_MIN_B rows the threads share each step over unit chunks (two
        # phases a step without reset_after)
        n = cpu._split_threads(B, x, None, U)
        if n > 1:
            uc = cpu._split_units(U, n)
            with cpu._parallel_region():
                out, h = cpu_split.forward_gru(
                    x, prepared.kernel, prepared.recurrent_kernel, bias, h0, mask,
                    np.int64(activation), np.int64(recurrent_activation), reset_after,
                    go_backwards, return_sequences, zero_output_for_mask, n, uc, wide,
                    prepared.split_panels)
            return out, h
    pk, w1, p1, w2, p2 = prepared.parts(reset_after, panel)
    # B >= 2 rows with inputs not much wider than U: [x_t | h_tm1] per step (no
    # projection buffer), as the LSTM (cpu.PROJECT_FIRST_RATIO)
    stacked = panel and B >= 2 and D <= cpu.PROJECT_FIRST_RATIO * U
    if stacked:
        pk, p1, p2 = prepared.stacked_parts()
        if reset_after:
            b = np.zeros((2, 3 * U), dtype) if bias is None else np.asarray(bias, dtype)
            b_in = np.concatenate((b[0, :2 * U] + b[1, :2 * U], b[0, 2 * U:], b[1, 2 * U:]))
        else:
            b_in = np.zeros(3 * U, dtype) if bias is None else np.asarray(bias, dtype)
        b_rec = _EMPTY[char]
    elif bias is None:
        b_in = b_rec = _EMPTY[char]
    elif reset_after:
        b_in = np.ascontiguousarray(bias[0], dtype)
        b_rec = np.ascontiguousarray(bias[1], dtype)
    else:
        b_in, b_rec = np.ascontiguousarray(bias, dtype), _EMPTY[char]
    x2, h, m, out = cpu_driver.buffers(x, h0, mask, U, dtype, return_sequences)
    args = (x2, pk, prepared.kernel, b_in, p1, w1, b_rec, p2, w2, h, m,
            np.int64(activation), np.int64(recurrent_activation), char == "f", panel, wide,
            bool(reset_after), bool(stacked), bool(go_backwards), bool(return_sequences),
            bool(zero_output_for_mask), out, T)
    cpu_driver.run(run_rows, run_parallel, args, B, B * T * 3 * U * (D + U), panel and wide)
    return (out if return_sequences else out[:, 0]), h
