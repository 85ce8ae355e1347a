"""Threads sharing each step (kernels/cpu_split.py) and claimed row blocks, vs the reference.

Below PARALLEL_MIN_B rows with several threads, the units are cut into chunks that
threads claim step by step; the tests force that path at tiny sizes (SPLIT_MIN_WORK
= 0) and check every chunk remainder, masks, directions, x_proj, and that a prange
whose iterations run one after the other (one numba thread) still finishes.
"""
import numpy as np
import pytest

import naive
from gpulstm.activations import resolve
from gpulstm.kernels import cpu, cpu_chunks, cpu_split
from test_cpu_paths import _VARIANTS, _case, _check


@pytest.fixture
def split(monkeypatch):
    monkeypatch.setattr(cpu, "SPLIT_MIN_WORK", 0)
    seen = []
    real = cpu_split.forward
    monkeypatch.setattr(cpu_split, "forward", lambda *a: seen.append(a[-4:-1]) or real(*a))
    return seen


def _run(x, kernel, rk, bias, h0, c0, mask, go_backwards, zofm, return_sequences, x_proj=None):
    return cpu.lstm_forward(x, kernel, rk, bias, h0, c0, mask, activation=resolve("tanh")[0],
                            recurrent_activation=resolve("sigmoid")[0], go_backwards=go_backwards,
                            zero_output_for_mask=zofm, return_sequences=return_sequences,
                            x_proj=x_proj)


# U=9 with 2 threads: chunks of 4 units (last of 1); U=37, 3 threads: 8 units (last 5)
@pytest.mark.parametrize("B,U,threads", [(1, 9, 2), (3, 37, 3), (2, 64, 2), (7, 20, 2)])
@pytest.mark.parametrize("kind", ["panels16", "panels8"])
def test_split_matches_reference(B, U, threads, kind, split, monkeypatch):
    monkeypatch.setenv(cpu.KERNEL_ENV, kind)
    monkeypatch.setattr(cpu, "_threads", lambda: threads)
    x, kernel, rk, bias, h0, c0, mask = _case(B, 6, 5, U, seed=B * U)
    for go_backwards, zofm, masked in _VARIANTS:
        m = mask if masked else None
        ref = naive.lstm(x, kernel, rk, bias, h0, c0, m, go_backwards=go_backwards,
                         zero_output_for_mask=zofm)
        for rs in (True, False):
            y, h, c = _run(x, kernel, rk, bias, h0, c0, m, go_backwards, zofm, rs)
            _check(y, ref[0] if rs else ref[1])
            _check(h, ref[2])
            _check(c, ref[3])
    # x_proj given, no bias
    x_proj = (x.astype(np.float64) @ kernel).astype(np.float32)
    y, h, c = _run(None, kernel, rk, None, h0, c0, mask, True, False, True, x_proj=x_proj)
    ref = naive.lstm(x, kernel, rk, None, h0, c0, mask, go_backwards=True)
    _check(y, ref[0])
    _check(c, ref[3])
    assert split and all(n == threads for n, _, _ in split)


def test_split_every_step_masked_and_zero_steps(split, monkeypatch):
    monkeypatch.setattr(cpu, "_threads", lambda: 2)
    x, kernel, rk, bias, h0, c0, mask = _case(2, 5, 3, 12, seed=5)
    mask[:] = False
    y, h, c = _run(x, kernel, rk, bias, h0, c0, mask, False, False, False)
    np.testing.assert_array_equal(y, 0.0)  # no unmasked step: zeros, states carried
    np.testing.assert_array_equal(h, h0)
    np.testing.assert_array_equal(c, c0)


def test_serial_iterations_still_finish():
    # one thread runs both prange iterations in turn: the first claims every chunk
    import numba

    x, kernel, rk, bias, h0, c0, mask = _case(2, 9, 4, 24, seed=9)
    ref = naive.lstm(x, kernel, rk, bias, h0, c0, mask)
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        act, ract = resolve("tanh")[0], resolve("sigmoid")[0]
        y, h, c = cpu_split.forward(x, kernel, rk, bias, h0, c0, mask, act, ract, False, True,
                                    False, None, 2, 8, True)
    finally:
        numba.set_num_threads(before)
    _check(y, ref[0])
    _check(h, ref[2])


def test_chunk_columns_cover_every_gate_column_once():
    for U in (1, 4, 9, 37, 64):
        for uc in (4, 8, 16):
            nch, CW, cols = cpu_chunks.chunk_columns(U, uc)
            assert CW % 16 == 0 and cols.shape == (nch * CW,)
            assert sorted(cols[cols >= 0]) == list(range(4 * U))


def test_bidirectional_directions_side_by_side(monkeypatch):
    # the CPU backend runs a Bidirectional's two directions on two threads at once
    # (one numba thread each); results are those of the one-after-the-other run
    import numba

    import gpulstm
    from gpulstm.kernels import cpu_entry

    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs two numba threads")
    monkeypatch.setenv("GPULSTM_NUMPY_TIER", "0")
    cpu_entry.load_numba()
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3, 7, 5)).astype(np.float32)
    mask = rng.random((3, 7)) < 0.8
    layer = gpulstm.Bidirectional(gpulstm.LSTM(6, return_sequences=True, backend="cpu"))
    layer(x)
    monkeypatch.setattr(cpu_entry, "PAIR_MIN_WORK", 1 << 60)
    want = np.asarray(layer(x, mask=mask))
    used = []
    real = cpu_entry.run_pair
    monkeypatch.setattr(cpu_entry, "PAIR_MIN_WORK", 0)
    monkeypatch.setattr(cpu_entry, "run_pair", lambda *a: used.append(1) or real(*a))
    threads_before = numba.get_num_threads()
    got = np.asarray(layer(x, mask=mask))
    assert used and numba.get_num_threads() == threads_before
    np.testing.assert_array_equal(got, want)


def _gru_case(B, T, D, U, reset_after, seed):
    """Weights, x, h0 and a mask with a left-padded, a right-padded and a holed row."""
    rng = np.random.default_rng(seed)
    kernel = rng.normal(0, 0.5, (D, 3 * U)).astype(np.float32)
    rk = rng.normal(0, 0.5, (U, 3 * U)).astype(np.float32)
    bias = rng.normal(0, 0.5, (2, 3 * U) if reset_after else 3 * U).astype(np.float32)
    x = rng.normal(size=(B, T, D)).astype(np.float32)
    h0 = rng.normal(size=(B, U)).astype(np.float32)
    mask = rng.random((B, T)) < 0.7
    mask[0, :2] = False  # left padded
    mask[0, 2:] = True
    if B > 1:
        mask[1, :-2] = True  # right padded
        mask[1, -2:] = False
    return kernel, rk, bias, x, h0, mask


# The GRU on the same threads-share-each-step path (both reset_after settings: without
# it, two phases a step): U=9 with 2 threads (chunks of 4, last of 1), U=37 with 3
# (chunks of 8, last of 5)
@pytest.mark.parametrize("B,U,threads", [(1, 9, 2), (3, 37, 3), (5, 16, 2)])
@pytest.mark.parametrize("kind", ["panels16", "panels8"])
@pytest.mark.parametrize("reset_after", [True, False])
def test_gru_split_matches_reference(B, U, threads, kind, reset_after, monkeypatch):
    monkeypatch.setenv(cpu.KERNEL_ENV, kind)
    monkeypatch.setattr(cpu, "_threads", lambda: threads)
    monkeypatch.setattr(cpu, "SPLIT_MIN_WORK", 0)
    seen = []
    real = cpu_split.forward_gru
    monkeypatch.setattr(cpu_split, "forward_gru",
                        lambda *a: seen.append((a[-4], a[8])) or real(*a))
    check_gru_variants(*_gru_case(B, 6, 5, U, reset_after, seed=B * U), reset_after)
    assert seen and all(v == (threads, reset_after) for v in seen)


def check_gru_variants(kernel, rk, bias, x, h0, mask, reset_after):
    """``cpu_gru.gru_forward`` against ``naive.gru`` (both return_sequences, with and
    without bias) for each of _VARIANTS."""
    from gpulstm.kernels import cpu_gru

    codes = dict(activation=resolve("tanh")[0], recurrent_activation=resolve("sigmoid")[0])
    for go_backwards, zofm, masked in _VARIANTS:
        m = mask if masked else None
        for b in (bias, None):
            seq, last, h_ref = naive.gru(x, kernel, rk, b, h0, m, go_backwards=go_backwards,
                                         zero_output_for_mask=zofm, reset_after=reset_after)
            for rs in (True, False):
                y, h = cpu_gru.gru_forward(x, kernel, rk, b, h0, m, go_backwards=go_backwards,
                                           zero_output_for_mask=zofm, return_sequences=rs,
                                           reset_after=reset_after, **codes)
                _check(y, seq if rs else last)
                _check(h, h_ref)


def test_gru_two_phase_serial_iterations_and_other_activations():
    # without reset_after, one numba thread runs both prange iterations in turn: the
    # first claims every chunk of both phases; hard_sigmoid / relu take the scalar switch
    import numba

    kernel, rk, bias, x, h0, mask = _gru_case(3, 7, 4, 21, False, seed=21)
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        for act, ract in (("tanh", "sigmoid"), ("relu", "hard_sigmoid")):
            a, r = resolve(act)[0], resolve(ract)[0]
            ref = naive.gru(x, kernel, rk, bias, h0, mask, activation=act,
                            recurrent_activation=ract, reset_after=False, go_backwards=True)
            y, h = cpu_split.forward_gru(x, kernel, rk, bias, h0, mask, a, r, False, True,
                                         True, False, 2, 8, True)
            _check(y, ref[0])
            _check(h, ref[2])
    finally:
        numba.set_num_threads(before)
