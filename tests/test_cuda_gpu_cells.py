"""GRU and SimpleRNN on the persistent CUDA driver, real GPU, against the float64 reference
(skipped without one; ``scripts/gpu_session.sh`` runs it)::

    python -m pytest -m gpu tests/test_cuda_gpu_cells.py

Every barrier and driver over several blocks, shared-memory and L2 weights, both
``reset_after`` settings (two phases per step without it), masks, go_backwards,
training-mode recurrent dropout masks (the LSTM too, on explicit warp plans), device
arrays in and out, and the layer on ``backend="cuda"``.
"""
import dataclasses

import numpy as np
import pytest

from gpu_skip import real_gpu

pytestmark = pytest.mark.gpu

if not real_gpu():
    pytest.skip("needs a real CUDA device with numba-cuda and CuPy", allow_module_level=True)

import cupy  # noqa: E402

import naive  # noqa: E402
from gpulstm._cuda_backend import register  # noqa: E402
from gpulstm.activations import CODES  # noqa: E402
from gpulstm.kernels import cuda as kc  # noqa: E402

register()
KW = dict(activation=CODES["tanh"], recurrent_activation=CODES["sigmoid"])


def _close(got, ref):
    got = cupy.asnumpy(got) if isinstance(got, cupy.ndarray) else got
    assert np.abs(got - ref).max() <= 1e-5 * max(1.0, float(np.abs(ref).max()))


def _data(rng, B, T, D, U, G, bias_shape):
    s = 1.5 / np.sqrt(U)
    x = rng.standard_normal((B, T, D)).astype(np.float32)
    W = rng.uniform(-s, s, (D, G)).astype(np.float32)
    R = rng.uniform(-s, s, (U, G)).astype(np.float32)
    b = rng.uniform(-s, s, bias_shape).astype(np.float32)
    h0 = rng.standard_normal((B, U)).astype(np.float32)
    mask = rng.random((B, T)) > 0.3
    mask[0] = False
    return x, W, R, b, h0, mask


def _plans(B, U, gates, two_phase):
    base = kc.make_warp_plan(B, U, n_blocks=4, gates=gates)
    plans = [kc.make_warp_plan(B, U, gates=gates), base,
             dataclasses.replace(base, barrier="cg"),
             dataclasses.replace(base, w_units=1),
             dataclasses.replace(base, driver="graph", w_units=0),
             dataclasses.replace(base, driver="step")]
    if not two_phase:
        plans.append(dataclasses.replace(base, barrier="tag"))
    return plans


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("B, U", [(3, 40), (9, 130)])
def test_gru_every_plan(reset_after, B, U):
    rng = np.random.default_rng(U + reset_after)
    x, W, R, b, h0, mask = _data(rng, B, 7, 5, U, 3 * U, (2, 3 * U) if reset_after else 3 * U)
    for gb in (False, True):
        seq, _, h = naive.gru(x, W, R, b, h0, mask, reset_after=reset_after, go_backwards=gb)
        for plan in _plans(B, U, 3, not reset_after):
            out, h_t = kc.gru_forward(x, W, R, b, h0, mask, reset_after=reset_after,
                                      go_backwards=gb, return_sequences=True, plan=plan, **KW)
            _close(out, seq)
            _close(h_t, h)


def test_simple_rnn_every_plan():
    rng = np.random.default_rng(4)
    B, U = 5, 70
    x, W, R, b, h0, mask = _data(rng, B, 6, 4, U, U, U)
    seq, _, h = naive.simple_rnn(x, W, R, b, h0, mask)
    for plan in _plans(B, U, 1, False):
        out, h_t = kc.rnn_forward(x, W, R, b, h0, mask, activation=CODES["tanh"],
                                         return_sequences=True, plan=plan)
        _close(out, seq)
        _close(h_t, h)


def test_recurrent_dropout_masks_every_plan():
    # training-mode recurrent dropout on the warp driver's masked variant, every cell
    # (the LSTM's plans by hand: its default for masks is still the first version)
    rng = np.random.default_rng(15)
    B, T, U = 3, 6, 40
    for cell, gates in (("lstm", 4), ("gru", 3), ("gru_reset_before", 3), ("simple_rnn", 1)):
        shape = (2, 3 * U) if cell == "gru" else gates * U
        x, W, R, b, h0, mask = _data(rng, B, T, 5, U, gates * U, shape)
        rec = ((rng.random((B, gates, U)) > 0.3) / 0.7).astype(np.float32)
        c0 = rng.standard_normal((B, U)).astype(np.float32)
        if cell == "lstm":
            seq, _, h, _ = naive.lstm(x, W, R, b, h0, c0, mask, rec_masks=rec)
        elif cell == "simple_rnn":
            seq, _, h = naive.simple_rnn(x, W, R, b, h0, mask, rec_masks=rec)
        else:
            seq, _, h = naive.gru(x, W, R, b, h0, mask, reset_after=cell == "gru",
                                  rec_masks=rec)
        for plan in _plans(B, U, gates, cell == "gru_reset_before"):
            kw = dict(return_sequences=True, plan=plan, rec_masks=rec)
            if cell == "lstm":
                out, h_t, _ = kc.lstm_forward(x, W, R, b, h0, c0, mask, **KW, **kw)
            elif cell == "simple_rnn":
                out, h_t = kc.rnn_forward(x, W, R, b, h0, mask, activation=CODES["tanh"], **kw)
            else:
                out, h_t = kc.gru_forward(x, W, R, b, h0, mask, reset_after=cell == "gru",
                                          **KW, **kw)
            _close(out, seq)
            _close(h_t, h)


def test_gru_layer_device_arrays_in_and_out():
    import gpulstm

    rng = np.random.default_rng(8)
    x = rng.standard_normal((4, 9, 6)).astype(np.float32)
    for reset_after in (True, False):
        kw = dict(reset_after=reset_after, return_sequences=True, return_state=True)
        cpu, gpu = gpulstm.GRU(32, backend="cpu", **kw), gpulstm.GRU(32, backend="cuda", **kw)
        cpu.build(x.shape)
        gpu.build(x.shape)
        gpu.set_weights(cpu.get_weights())
        want = cpu(x)
        got = gpu(cupy.asarray(x))
        assert all(isinstance(a, cupy.ndarray) for a in got) and gpu.last_backend == "cuda"
        for a, r in zip(got, want):
            _close(a, r)
