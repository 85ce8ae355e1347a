"""Every size-chosen path of the CPU backend, and every tile remainder, vs the reference.

Paths (see gpulstm.kernels.cpu.lstm_forward): B == 1 runs an axpy GEMV over the
recurrent kernel; B >= 2 runs register tiles on the packed copy (4 x 4 with
WIDE_TILES, else 4 x 2) over column blocks (64 columns up to U = 128, fewer above,
16 from U = 512), the 1-3 rows left over by the axpy GEMV; B >= PARALLEL_MIN_B
with more than one thread splits rows over threads; (rows per thread) x U >=
BLAS_MIN_WORK (AVX2) runs one BLAS GEMM per step and row block (the tests force
that at 32 rows: B = 31 / 32 / 33 around it).  Small problems project the input
inside the loop, others with one NumPy GEMM or (PROJECT_ON_TILES) up front on the
tiles (rows = B * T: every remainder again).
On AVX2 + FMA and AVX-512 hosts float32 instead runs the register-blocked panel
kernels (``cpu_micro``, [x_t | h_tm1] @ [kernel; rk] per step; 8 or 16 lanes); the
``wide`` fixture runs every test that takes it on all four products, whatever this
machine has.
Sizes below make B % 4, U % 4 and G % (column block) take every remainder (and
G % 16 = 0, 4, 8, 12 for the panels' last, zero-padded panel).
"""
import numpy as np
import pytest

import naive
from gpulstm.activations import resolve
from gpulstm.kernels import cpu


def _case(B, T, D, U, seed, dtype=np.float32, scale=0.5):
    rng = np.random.default_rng(seed)
    kernel = rng.normal(0, scale, (D, 4 * U)).astype(dtype)
    rk = rng.normal(0, scale, (U, 4 * U)).astype(dtype)
    bias = rng.normal(0, scale, 4 * U).astype(dtype)
    x = rng.normal(size=(B, T, D)).astype(dtype)
    h0 = rng.normal(size=(B, U)).astype(dtype)
    c0 = rng.normal(size=(B, U)).astype(dtype)
    mask = rng.random((B, T)) < 0.7
    mask[:, 0] = rng.random(B) < 0.5  # some rows start masked (zeros before first step)
    return x, kernel, rk, bias, h0, c0, mask


def _check(out, ref, tol=1e-5):
    ref = np.asarray(ref)
    np.testing.assert_allclose(out, ref, rtol=0, atol=tol * max(1.0, float(np.abs(ref).max())))


def _both(x, kernel, rk, bias, h0, c0, mask, act="tanh", ract="sigmoid", go_backwards=False,
          zofm=False, prepared=None, x_proj=None):
    """(seq, last, h, c) from two calls (return_sequences True and False)."""
    a, r = resolve(act)[0], resolve(ract)[0]
    kw = dict(activation=a, recurrent_activation=r, go_backwards=go_backwards,
              zero_output_for_mask=zofm, prepared=prepared, x_proj=x_proj)
    seq, h, c = cpu.lstm_forward(x, kernel, rk, bias, h0, c0, mask, return_sequences=True, **kw)
    last, h2, c2 = cpu.lstm_forward(x, kernel, rk, bias, h0, c0, mask,
                                    return_sequences=False, **kw)
    np.testing.assert_array_equal(h, h2)
    np.testing.assert_array_equal(c, c2)
    return seq, last, h, c


# (go_backwards, zero_output_for_mask, masked?)
_VARIANTS = ((False, False, False), (True, True, True), (False, False, True))


def _check_variants(x, kernel, rk, bias, h0, c0, mask, variants=_VARIANTS):
    """Both return_sequences calls against the reference, for each variant."""
    for go_backwards, zofm, masked in variants:
        m = mask if masked else None
        got = _both(x, kernel, rk, bias, h0, c0, m, go_backwards=go_backwards, zofm=zofm)
        ref = naive.lstm(x, kernel, rk, bias, h0, c0, m, go_backwards=go_backwards,
                         zero_output_for_mask=zofm)
        for g, r in zip(got, ref):
            _check(g, r)


@pytest.fixture(params=list(cpu.KERNELS))
def wide(request, monkeypatch):
    """The per-step product: panel kernels (16 or 8 lanes) or dot-product tiles (4 x 4
    or 4 x 2), forced through GPULSTM_CPU_KERNEL whatever this host has."""
    monkeypatch.setenv(cpu.KERNEL_ENV, request.param)
    return request.param


@pytest.fixture(params=["blas", "tiles", "fused"])
def fuse(request, monkeypatch):
    """Project the input with one NumPy GEMM, up front on the kernel's tiles, or
    inside the loop (small problems)."""
    limit = 10**9 if request.param == "fused" else 0
    monkeypatch.setattr(cpu, "FUSE_MAX_ROWS", limit)
    monkeypatch.setattr(cpu, "FUSE_MAX_MACS", limit)
    monkeypatch.setattr(cpu, "PROJECT_ON_TILES", request.param == "tiles")
    return request.param


@pytest.fixture
def one_thread(monkeypatch):
    monkeypatch.setattr(cpu, "_threads", lambda: 1)
    monkeypatch.setattr(cpu, "ROW_SPLIT_MIN_WORK", 0)  # tiny sizes on the threaded paths
    monkeypatch.setattr(cpu, "PARALLEL_MIN_B", 8)


# U=17: G=68 (one 64-column block + 4); U=35: G=140 (two blocks + 12); U=16: G=64
# exactly; U=2: G=8; U=2, 17, 35 leave 2, 1, 3 rows for the GEMV's remainder loop.  B=2,3 only leftover rows; 5,6,7 tiles + 1..3 rows.
@pytest.mark.parametrize("B", [1, 2, 3, 4, 5, 6, 7, 8, 11, 13])
@pytest.mark.parametrize("U", [2, 16, 17, 35])
def test_serial_paths_every_remainder(B, U, wide, fuse, one_thread):
    T, D = 6, 3
    x, kernel, rk, bias, h0, c0, mask = _case(B, T, D, U, seed=100 * B + U)
    _check_variants(x, kernel, rk, bias, h0, c0, mask)


# U=150: blocks of 52 columns, G=600 leaves a block of 28; U=520: blocks of 16.
@pytest.mark.parametrize("U", [150, 520])
def test_wide_units_smaller_column_blocks(U, wide, one_thread):
    x, kernel, rk, bias, h0, c0, mask = _case(5, 3, 4, U, seed=U, scale=0.1)
    got = _both(x, kernel, rk, bias, h0, c0, mask)
    ref = naive.lstm(x, kernel, rk, bias, h0, c0, mask)
    for g, r in zip(got, ref):
        _check(g, r)


@pytest.mark.parametrize("B,threads", [(8, 2), (9, 2), (13, 3), (16, 2), (10, 8)])
def test_parallel_path(B, threads, wide, fuse, monkeypatch):
    monkeypatch.setattr(cpu, "_threads", lambda: threads)
    monkeypatch.setattr(cpu, "ROW_SPLIT_MIN_WORK", 0)  # tiny sizes on the threaded paths
    monkeypatch.setattr(cpu, "PARALLEL_MIN_B", 8)
    calls = []
    real = cpu.run_parallel
    monkeypatch.setattr(cpu, "run_parallel",
                        lambda *a: calls.append(a[-3].copy()) or real(*a))
    T, D, U = 5, 4, 17
    x, kernel, rk, bias, h0, c0, mask = _case(B, T, D, U, seed=B + threads)
    _check_variants(x, kernel, rk, bias, h0, c0, mask)
    assert calls, "the parallel entry point was not used"
    bounds = calls[0]
    assert bounds[0] == 0 and bounds[-1] == B and np.all(np.diff(bounds) > 0)


@pytest.mark.parametrize("wide_d", [False, True])
def test_parallel_path_projection(wide_d, wide, monkeypatch):
    # tile path with threads: BLAS is never called; the kernel projects per step when it fits
    # L2 (D * G <= 128 Ki), else up front on its tiles (here D * G = 1000 * 140)
    monkeypatch.setattr(cpu, "_threads", lambda: 2)
    monkeypatch.setattr(cpu, "ROW_SPLIT_MIN_WORK", 0)  # tiny sizes on the threaded paths
    monkeypatch.setattr(cpu, "PARALLEL_MIN_B", 8)
    monkeypatch.setattr(cpu, "FUSE_MAX_ROWS", 0)
    monkeypatch.setattr(cpu, "FUSE_MAX_MACS", 0)
    D = 1000 if wide_d else 20
    x, kernel, rk, bias, h0, c0, mask = _case(9, 3, D, 35, seed=D, scale=0.05)
    got = _both(x, kernel, rk, bias, h0, c0, mask)
    ref = naive.lstm(x, kernel, rk, bias, h0, c0, mask)
    for g, r in zip(got, ref):
        _check(g, r)


def test_row_bounds_cover_rows_on_tile_multiples():
    for B in range(8, 80):
        for n in (2, 3, 4):
            n_eff = min(n, B // 4)
            b = cpu._row_bounds(B, n_eff)
            assert b[0] == 0 and b[-1] == B and len(b) == n_eff + 1
            assert np.all(np.diff(b) >= 4)
            assert np.all(b[1:-1] % 4 == 0)


@pytest.mark.parametrize("B", [1, 6])
def test_prepared_weights_match_unprepared(B, wide, one_thread):
    x, kernel, rk, bias, h0, c0, mask = _case(B, 7, 5, 9, seed=3)
    prepared = cpu.prepare(kernel, rk, bias)
    assert prepared.shape == rk.T.shape and prepared.dtype == rk.dtype
    a = _both(x, kernel, rk, bias, h0, c0, mask)
    b = _both(x, kernel, rk, bias, h0, c0, mask, prepared=prepared)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    if B > 1 and wide.startswith("panels"):  # packed once, on first use: [kernel; rk] in panels
        assert True in prepared._panels  # the calls above used (and kept) the panels
        panels = prepared.panels(kernel)
        assert panels is prepared.panels(kernel) and panels.shape == (3, 5 + 9, 16)
        np.testing.assert_array_equal(
            panels.transpose(1, 0, 2).reshape(14, 48)[:, :36], np.concatenate((kernel, rk)))
    elif B > 1:  # the tiled path packed it once, on first use
        np.testing.assert_array_equal(prepared.packed(), rk.T)
        assert prepared.packed() is prepared.packed()


def test_prepared_of_other_weights_is_refused():
    x, kernel, rk, bias, h0, c0, _ = _case(4, 2, 3, 5, seed=4)
    other = cpu.prepare(None, np.zeros((6, 24), np.float32))
    for wrong in (other, np.zeros((20, 5), np.float32)):
        with pytest.raises(ValueError, match="prepared"):
            cpu.lstm_forward(x, kernel, rk, bias, h0, c0, None, activation=1,
                             recurrent_activation=2, prepared=wrong)


@pytest.mark.parametrize("B", [1, 5])
@pytest.mark.parametrize("act,ract,keras", [("relu", "hard_sigmoid", "3"), ("gelu", "tanh", "3"),
                                            ("tanh", "softsign", "3"),
                                            ("linear", "hard_sigmoid", "2")])
def test_generic_activations_on_every_path(B, act, ract, keras, wide, one_thread):
    # relu, linear and both hard_sigmoid formulas have their own vectorised loops
    x, kernel, rk, bias, h0, c0, mask = _case(B, 5, 3, 6, seed=len(act + ract) + B, scale=0.3)
    a, r = resolve(act, keras)[0], resolve(ract, keras)[0]
    kw = dict(activation=a, recurrent_activation=r)
    seq, h, c = cpu.lstm_forward(x, kernel, rk, bias, h0, c0, mask, return_sequences=True, **kw)
    ref = naive.lstm(x, kernel, rk, bias, h0, c0, mask, activation=act,
                     recurrent_activation=ract, hard_sigmoid=f"keras{keras}")
    for g, want in zip((seq, h, c), (ref[0], ref[2], ref[3])):
        _check(g, want)


@pytest.mark.parametrize("B", [1, 6])
def test_float64_exact_on_every_path(B, one_thread):
    # float64 never takes the rational activations: libm accuracy end to end
    x, kernel, rk, bias, h0, c0, mask = _case(B, 20, 4, 9, seed=11, dtype=np.float64, scale=1.0)
    got = _both(x, kernel, rk, bias, h0, c0, mask)
    ref = naive.lstm(x, kernel, rk, bias, h0, c0, mask)
    for g, r in zip(got, ref):
        assert g.dtype == np.float64
        np.testing.assert_allclose(g, r, rtol=0, atol=1e-12)


@pytest.mark.parametrize("B", [1, 6])
def test_x_proj_and_no_bias(B, fuse, wide, one_thread):
    x, kernel, rk, bias, h0, c0, mask = _case(B, 4, 3, 5, seed=12)
    ref = naive.lstm(x, kernel, rk, bias, h0, c0, mask)
    x_proj = (x.astype(np.float64) @ kernel + bias).astype(np.float32)
    got = _both(None, kernel, rk, None, h0, c0, mask, x_proj=x_proj)
    for g, r in zip(got, ref):
        _check(g, r)
    ref = naive.lstm(x, kernel, rk, None, h0, c0, mask)
    got = _both(x, kernel, rk, None, h0, c0, mask)
    for g, r in zip(got, ref):
        _check(g, r)


@pytest.mark.parametrize("B,threads", [(1, 1), (6, 1), (8, 2)])
def test_nan_inf_semantics_on_every_path(B, threads, fuse, wide, monkeypatch):
    monkeypatch.setattr(cpu, "_threads", lambda: threads)
    monkeypatch.setattr(cpu, "ROW_SPLIT_MIN_WORK", 0)  # tiny sizes on the threaded paths
    monkeypatch.setattr(cpu, "PARALLEL_MIN_B", 8)
    x, kernel, rk, bias, h0, c0, _ = _case(B, 6, 3, 9, seed=13)
    mask = np.ones((B, 6), bool)
    mask[:, 2] = False
    x[:, 2] = np.nan  # masked: must not leak
    x[0, 3, 1] = np.inf  # unmasked inf: saturates the gates like Keras, stays finite
    for zofm in (False, True):
        got = _both(x, kernel, rk, bias, h0, c0, mask, zofm=zofm)
        ref = naive.lstm(x, kernel, rk, bias, h0, c0, mask, zero_output_for_mask=zofm)
        for g, r in zip(got, ref):
            assert np.isfinite(r).all()
            _check(g, r)
    x[-1, 4, 0] = np.nan  # unmasked NaN: NaN out for that row only, from that step on
    seq, last, h, c = _both(x, kernel, rk, bias, h0, c0, mask)
    assert np.isnan(seq[-1, 4:]).all() and np.isnan(h[-1]).all() and np.isnan(c[-1]).all()
    assert np.isfinite(seq[-1, :4]).all() and np.isfinite(seq[:-1]).all()


def test_long_sequence_error_stays_bounded(one_thread):
    # rational tanh/sigmoid over 400 steps: rounding must not accumulate past tolerance
    x, kernel, rk, bias, h0, c0, _ = _case(5, 400, 4, 12, seed=14, scale=0.4)
    for B in (1, 5):
        got = _both(x[:B], kernel, rk, bias, h0[:B], c0[:B], None)
        ref = naive.lstm(x[:B], kernel, rk, bias, h0[:B], c0[:B])
        for g, r in zip(got, ref):
            _check(g, r)


@pytest.fixture
def blas_at_32(monkeypatch):
    """The BLAS path from 32 rows per thread (rows x U >= 32 U), on every machine."""
    flags = []  # (threads, BLAS?) per decision
    real = cpu._use_blas
    monkeypatch.setenv(cpu.KERNEL_ENV, "tiles4x2")  # the BLAS path serves only these tiles

    def spy(B, n, U):
        monkeypatch.setattr(cpu, "BLAS_MIN_WORK", 32 * U)
        flags.append((n, real(B, n, U)))
        return flags[-1][1]

    monkeypatch.setattr(cpu, "_use_blas", spy)
    return flags


# B=31 stays on the tiles (7 quads + 3 rows), 32 and 33 take BLAS; U=17 and 35 leave
# U % 4 = 1 and 3.  Input projected by BLAS per row block, or given as x_proj.
@pytest.mark.parametrize("B", [31, 32, 33])
@pytest.mark.parametrize("U", [17, 35])
def test_blas_path_around_threshold(B, U, blas_at_32, one_thread):
    T, D = 5, 3
    x, kernel, rk, bias, h0, c0, mask = _case(B, T, D, U, seed=7 * B + U, scale=0.3)
    _check_variants(x, kernel, rk, bias, h0, c0, mask)
    assert blas_at_32 and all(f == (B >= 32) for _, f in blas_at_32)
    # x_proj given, no bias
    x_proj = (x.astype(np.float64) @ kernel).astype(np.float32)
    got = _both(None, kernel, rk, None, h0, c0, mask, x_proj=x_proj)
    ref = naive.lstm(x, kernel, rk, None, h0, c0, mask)
    for g, r in zip(got, ref):
        _check(g, r)


@pytest.mark.parametrize("B,threads", [(63, 2), (64, 2), (70, 2)])
def test_blas_path_threads(B, threads, blas_at_32, monkeypatch):
    # 2 threads: BLAS once every row block holds >= 32 rows (B // threads)
    monkeypatch.setattr(cpu, "_threads", lambda: threads)
    monkeypatch.setattr(cpu, "ROW_SPLIT_MIN_WORK", 0)  # tiny sizes on the threaded paths
    monkeypatch.setattr(cpu, "PARALLEL_MIN_B", 8)
    x, kernel, rk, bias, h0, c0, mask = _case(B, 4, 5, 9, seed=B, scale=0.4)
    got = _both(x, kernel, rk, bias, h0, c0, mask, go_backwards=True)
    ref = naive.lstm(x, kernel, rk, bias, h0, c0, mask, go_backwards=True)
    for g, r in zip(got, ref):
        _check(g, r)
    assert set(blas_at_32) == {(threads, B // threads >= 32)}


def test_blas_path_float64_and_nan(blas_at_32, one_thread):
    x, kernel, rk, bias, h0, c0, mask = _case(33, 8, 4, 9, seed=15, dtype=np.float64, scale=1.0)
    got = _both(x, kernel, rk, bias, h0, c0, mask)
    ref = naive.lstm(x, kernel, rk, bias, h0, c0, mask)
    for g, r in zip(got, ref):
        assert g.dtype == np.float64
        np.testing.assert_allclose(g, r, rtol=0, atol=1e-12)
    x = x.astype(np.float32)
    kernel, rk, bias, h0, c0 = (a.astype(np.float32) * 0.5 for a in (kernel, rk, bias, h0, c0))
    mask[:, 2] = False
    x[:, 2] = np.nan  # masked: must not leak
    x[-1, 4, 0] = np.nan  # unmasked NaN: NaN out for that row only, from that step on
    mask[-1, 4:] = True
    seq, last, h, c = _both(x, kernel, rk, bias, h0, c0, mask)
    assert np.isnan(seq[-1, 4:]).all() and np.isnan(h[-1]).all() and np.isnan(c[-1]).all()
    assert np.isfinite(seq[-1, :4]).all() and np.isfinite(seq[:-1]).all()
    assert all(f for _, f in blas_at_32)


def test_blas_threads_limited_and_restored():
    from gpulstm.kernels import cpu_blas
    if not cpu_blas.available():
        pytest.skip("SciPy's BLAS thread count cannot be set here")
    threadpoolctl = pytest.importorskip("threadpoolctl")
    before = [d["num_threads"] for d in threadpoolctl.threadpool_info()]
    with cpu_blas.limit(1):
        with cpu_blas.limit(1):  # nested (or concurrent) calls share the setting
            pass
        inside = [d["num_threads"] for d in threadpoolctl.threadpool_info()
                  if "scipy.libs" in d["filepath"] or "scipy/.dylibs" in d["filepath"]]
    after = [d["num_threads"] for d in threadpoolctl.threadpool_info()]
    if not inside:
        pytest.skip("SciPy does not bundle its BLAS here")
    assert all(n == 1 for n in inside)
    assert after == before


@pytest.mark.parametrize("B", [2, 5, 9])
@pytest.mark.parametrize("kind", ["panels16", "panels8"])
def test_wide_inputs_project_first_on_panels(B, kind, monkeypatch):
    # D > PROJECT_FIRST_RATIO * U: x @ kernel up front on the kernel's panels, in row
    # blocks that fit L2 (D = 2000: 32 rows a block, so 35 rows of a thread take two),
    # then h @ U per step; 2 threads from B = 8
    monkeypatch.setenv(cpu.KERNEL_ENV, kind)
    monkeypatch.setattr(cpu, "_threads", lambda: 2)
    monkeypatch.setattr(cpu, "ROW_SPLIT_MIN_WORK", 0)  # tiny sizes on the threaded paths
    monkeypatch.setattr(cpu, "PARALLEL_MIN_B", 8)
    x, kernel, rk, bias, h0, c0, mask = _case(B, 7, 2000, 5, seed=B, scale=0.02)
    seen = []  # the pfirst argument of each compiled call
    real_rows, real_par = cpu.cpu_fast.run_rows, cpu.run_parallel
    monkeypatch.setattr(cpu.cpu_fast, "run_rows",
                        lambda *a: seen.append(a[16]) or real_rows(*a))
    monkeypatch.setattr(cpu, "run_parallel",  # (args, bounds, n, ticket)
                        lambda args, *a: seen.append(args[16]) or real_par(args, *a))
    for ratio in (3, 10**6):  # up front / stacked per step
        monkeypatch.setattr(cpu, "PROJECT_FIRST_RATIO", ratio)
        seen.clear()
        _check_variants(x, kernel, rk, bias, h0, c0, mask, variants=_VARIANTS[:2])
        assert seen and all(f == (ratio == 3) for f in seen)


@pytest.mark.parametrize("wide_panels", [True, False])
def test_gemm_panels_every_block_shape(wide_panels):
    """``cpu_micro.gemm_panels`` (the per-step product of the panel paths) against NumPy
    in float64: every row remainder of its 8- / 4-row blocks (1..17 rows), K on both
    sides of the single row's 8-panel threshold (W8_MAX_K), G with and without a narrow
    last panel (the masked micro-kernels), a panel slice with a row stride (P[:, D:],
    as the projected-first path passes it), columns beyond G left alone, and the panel
    groups in both orders (``rev``, alternated by the recurrences step by step)."""
    from gpulstm.kernels import cpu_micro
    rng = np.random.default_rng(7)
    kmax = cpu_micro.W8_MAX_K
    for nb in range(1, 18):
        for K in (3, kmax, kmax + 1):
            for G in (4, 140, 256, 268, 1040):
                W = rng.normal(size=(K + 5, G)).astype(np.float32)
                P = cpu_micro.packed_panels(W)[:, 5:]  # rows 5.. of W: a strided slice
                A = rng.normal(size=(nb + 1, K + 3)).astype(np.float32)
                z0 = rng.normal(size=(nb + 1, G)).astype(np.float32)
                want = z0[:nb].astype(np.float64) + A[:nb, :K].astype(np.float64) @ W[5:]
                for rev in (False, True):
                    z = z0.copy()
                    cpu_micro.gemm_panels(P, A, z, nb, wide_panels, rev)
                    np.testing.assert_allclose(z[:nb], want, rtol=0,
                                               atol=2e-5 * max(1, abs(want).max()))
                    np.testing.assert_array_equal(z[nb:], z0[nb:])  # row nb untouched
