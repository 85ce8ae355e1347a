"""The persistent CUDA driver's GRU and SimpleRNN cells under numba's simulator,
against the float64 reference (``naive.gru``, ``naive.simple_rnn``), and the layers on
``backend="cuda"``, with and without training-mode recurrent dropout masks.

Runs only with ``NUMBA_ENABLE_CUDASIM=1`` set before the interpreter started (see
``test_cuda_sim.py``).  Tiny sizes and few launches: the persistent kernel as one
block, the multi-block partition through the per-step driver (one launch per phase
and step: two phases per step for GRU without ``reset_after``).
"""
import os
import sys

import numpy as np
import pytest

if os.environ.get("NUMBA_ENABLE_CUDASIM", "0") in ("", "0"):
    pytest.skip("needs NUMBA_ENABLE_CUDASIM=1 at interpreter start", allow_module_level=True)

import naive  # noqa: E402
from gpulstm import dispatch  # noqa: E402
from gpulstm._cuda_backend import register  # noqa: E402
from gpulstm.activations import CODES  # noqa: E402
from gpulstm.kernels import cuda as kc  # noqa: E402

pytestmark = pytest.mark.cudasim
sys.setswitchinterval(1e-4)
register()
assert kc.SIM, "numba was imported before NUMBA_ENABLE_CUDASIM=1 took effect"


def _close(got, ref):
    tol = 1e-5 * max(1.0, float(np.abs(ref).max()))
    assert got.shape == ref.shape
    assert np.abs(got - ref).max() <= tol


def _data(seed, B, T, D, U, G, bias_shape, masked=True):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((B, T, D)).astype(np.float32)
    W = (0.6 * rng.standard_normal((D, G))).astype(np.float32)
    R = (0.6 * rng.standard_normal((U, G))).astype(np.float32)
    b = None if bias_shape is None else (0.6 * rng.standard_normal(bias_shape)).astype(np.float32)
    h0 = rng.standard_normal((B, U)).astype(np.float32)
    mask = None
    if masked:
        mask = rng.random((B, T)) > 0.4
        mask[0, :] = False  # a row never unmasked: zeros out, the initial state kept
    return x, W, R, b, h0, mask


def _step_plan(B, U, gates, **kw):
    kw.setdefault("driver", "step")
    return kc.make_warp_plan(B, U, smem_optin=48 * 1024, shuffle=False, gates=gates, **kw)


# -- GRU: both reset_after settings, persistent (one block) and per-step (two blocks) --------
@pytest.mark.parametrize("reset_after, act, ract, gb, zofm, rs, bias, plan_kw", [
    (True, "tanh", "sigmoid", False, False, True, True, None),
    # the tag exchange (one product per step only), rows in chunks of 2
    (True, "tanh", "sigmoid", True, False, True, True,
     dict(n_blocks=1, nthreads=32, rb=2, barrier="tag", driver="persistent")),
    (False, "tanh", "sigmoid", True, True, True, True, None),
    (True, "relu", "hard_sigmoid_k2", True, False, False, False,
     dict(n_blocks=2, nthreads=32, rb=2, w_units=1)),
    (False, "softsign", "sigmoid", False, False, True, True,
     dict(n_blocks=2, nthreads=64, rb=2, w_units=2)),
])
def test_gru(reset_after, act, ract, gb, zofm, rs, bias, plan_kw):
    B, T, D, U = 3, 3, 2, 5
    shape = ((2, 3 * U) if reset_after else (3 * U,)) if bias else None
    x, W, R, b, h0, mask = _data(11 + reset_after, B, T, D, U, 3 * U, shape)
    flavour = "keras2" if ract == "hard_sigmoid_k2" else "keras3"
    seq, last, h = naive.gru(x, W, R, b, h0, mask, activation=act,
                             recurrent_activation=ract.replace("_k2", ""),
                             reset_after=reset_after, go_backwards=gb,
                             zero_output_for_mask=zofm, hard_sigmoid=flavour)
    plan = None if plan_kw is None else _step_plan(B, U, 3, **plan_kw)
    out, h_t = kc.gru_forward(x, W, R, b, h0, mask, activation=CODES[act],
                              recurrent_activation=CODES[ract], reset_after=reset_after,
                              go_backwards=gb, return_sequences=rs, zero_output_for_mask=zofm,
                              plan=plan)
    _close(out, seq if rs else last)
    _close(h_t, h)


def test_gru_x_proj_and_prepared():
    # x_proj replaces x @ kernel + b_in (input dropout); gru_prepare splits the bias
    B, T, D, U = 2, 2, 3, 4
    x, W, R, b, h0, _ = _data(5, B, T, D, U, 3 * U, (2, 3 * U), masked=False)
    seq, last, h = naive.gru(x, W, R, b, h0)
    x_proj = (x.reshape(B * T, D).astype(np.float64) @ W + b[0]).reshape(B, T, 3 * U)
    prepared = kc.gru_prepare(W, R, b)
    out, h_t = kc.gru_forward(None, None, R, b, h0, None, activation=CODES["tanh"],
                              recurrent_activation=CODES["sigmoid"], return_sequences=True,
                              x_proj=x_proj.astype(np.float32), prepared=prepared)
    _close(out, seq)
    _close(h_t, h)


# -- SimpleRNN ----------------------------------------------------------------------------
@pytest.mark.parametrize("act, gb, zofm, plan_kw", [
    ("tanh", False, False, None),
    ("relu", True, True, dict(n_blocks=2, nthreads=32, rb=2, w_units=1)),
])
def test_simple_rnn(act, gb, zofm, plan_kw):
    B, T, D, U = 3, 3, 2, 5
    x, W, R, b, h0, mask = _data(3, B, T, D, U, U, (U,))
    seq, last, h = naive.simple_rnn(x, W, R, b, h0, mask, activation=act, go_backwards=gb,
                                    zero_output_for_mask=zofm)
    plan = None if plan_kw is None else _step_plan(B, U, 1, **plan_kw)
    out, h_t = kc.rnn_forward(x, W, R, b, h0, mask, activation=CODES[act],
                                     go_backwards=gb, return_sequences=True,
                                     zero_output_for_mask=zofm, plan=plan)
    _close(out, seq)
    _close(h_t, h)


# -- recurrent dropout: per-gate masks on h_tm1 in the warp driver's products ----------------
@pytest.mark.parametrize("cell, plan_kw", [
    # the LSTM's default for masks is the first-version kernel: the warp plan by hand
    ("lstm", dict(n_blocks=1, nthreads=32, driver="persistent")),
    ("gru", None),
    # two products per step (the candidate's mask meets r * h_tm1), over two blocks
    ("gru_reset_before", dict(n_blocks=2, nthreads=32, rb=2, w_units=1)),
    ("simple_rnn", None),
])
def test_recurrent_dropout_masks(cell, plan_kw):
    B, T, D, U = 2, 3, 2, 5
    gates = {"lstm": 4, "simple_rnn": 1}.get(cell, 3)
    reset_after = cell == "gru"
    shape = {"lstm": (4 * U,), "gru": (2, 3 * U)}.get(cell, (gates * U,))
    x, W, R, b, h0, mask = _data(21 + gates, B, T, D, U, gates * U, shape)
    mask[0, 1] = True  # a row with a step between masked ones
    rng = np.random.default_rng(gates)
    rec = ((rng.random((B, gates, U)) > 0.3) / 0.7).astype(np.float32)
    plan = None if plan_kw is None else _step_plan(B, U, gates, **plan_kw)
    kw = dict(go_backwards=True, return_sequences=True, plan=plan, rec_masks=rec)
    if cell == "lstm":
        c0 = np.random.default_rng(1).standard_normal((B, U)).astype(np.float32)
        seq, _, h, c = naive.lstm(x, W, R, b, h0, c0, mask, go_backwards=True, rec_masks=rec)
        out, h_t, c_t = kc.lstm_forward(x, W, R, b, h0, c0, mask, activation=CODES["tanh"],
                                        recurrent_activation=CODES["sigmoid"], **kw)
        _close(c_t, c)
    elif cell == "simple_rnn":
        seq, _, h = naive.simple_rnn(x, W, R, b, h0, mask, go_backwards=True, rec_masks=rec)
        out, h_t = kc.rnn_forward(x, W, R, b, h0, mask, activation=CODES["tanh"], **kw)
    else:
        seq, _, h = naive.gru(x, W, R, b, h0, mask, reset_after=reset_after, go_backwards=True,
                              rec_masks=rec)
        out, h_t = kc.gru_forward(x, W, R, b, h0, mask, activation=CODES["tanh"],
                                  recurrent_activation=CODES["sigmoid"],
                                  reset_after=reset_after, **kw)
    _close(out, seq)
    _close(h_t, h)


# -- what the driver refuses, before any launch ------------------------------------------------
def test_refusals():
    B, U = 2, 3
    x, W, R, b, h0, _ = _data(1, B, 2, 2, U, 3 * U, (3 * U,), masked=False)
    kw = dict(activation=CODES["tanh"], recurrent_activation=CODES["sigmoid"])
    with pytest.raises(ValueError, match="gates=3 for the gru_reset_before cell"):
        kc.gru_forward(x, W, R, b, h0, None, reset_after=False, **kw,
                       plan=kc.make_warp_plan(B, U, n_blocks=1, shuffle=False))
    with pytest.raises(ValueError, match="barrier 'flag' or 'cg' for the gru_reset_before"):
        kc.gru_forward(x, W, R, b, h0, None, reset_after=False, **kw,
                       plan=kc.make_warp_plan(B, U, n_blocks=1, shuffle=False, gates=3,
                                              barrier="tag"))
    with pytest.raises(ValueError, match=r"masks of shape .* \(2, 3, 3\) for the gru cell"):
        kc.gru_forward(x, W, R, b.reshape(1, -1).repeat(2, 0), h0, None, **kw,
                       rec_masks=np.ones((B, 4, U), np.float32))
    with pytest.raises(ValueError, match="WarpPlan for the gru cell"):
        kc.gru_forward(x, W, R, b.reshape(1, -1).repeat(2, 0), h0, None, **kw,
                       plan=kc.make_plan(B, U, n_blocks=1))


# -- the layers: gpulstm.GRU / SimpleRNN(backend="cuda") ----------------------------------
def _layer_pairs(rng, x, **kw):
    """``(cpu, cuda)`` layers with the same arguments and weights: GRU both ways, SimpleRNN."""
    import gpulstm

    for cls, extra in ((gpulstm.GRU, dict(reset_after=True)),
                       (gpulstm.GRU, dict(reset_after=False)), (gpulstm.SimpleRNN, {})):
        cpu, gpu = cls(5, backend="cpu", **kw, **extra), cls(5, backend="cuda", **kw, **extra)
        cpu.build(x.shape)
        gpu.build(x.shape)
        weights = [(0.5 * rng.standard_normal(w.shape)).astype(np.float32)
                   for w in cpu.get_weights()]
        cpu.set_weights(weights)
        gpu.set_weights(weights)
        yield cpu, gpu


def test_layers_on_cuda_match_cpu_and_auto_never_picks_the_simulator():
    import gpulstm

    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    mask = np.array([[True, True, False], [False, True, True]])
    h0 = rng.standard_normal((2, 5)).astype(np.float32)
    kw = dict(return_sequences=True, return_state=True, go_backwards=True)
    for cpu, gpu in _layer_pairs(rng, x, **kw):
        want = cpu(x, mask=mask, initial_state=[h0])
        got = gpu(x, mask=mask, initial_state=[h0])
        assert gpu.last_backend == "cuda" and cpu.last_backend == "cpu"
        for a, r in zip(got, want):
            _close(a, r)
    for cls in (gpulstm.GRU, gpulstm.SimpleRNN):
        auto = cls(5)
        auto(x)
        assert auto.last_backend == "cpu"
    assert dispatch.resolve_backend("auto", np.zeros((8, 100, 64), np.float32))[0] == "cpu"


def test_recurrent_dropout_layers_on_cuda_match_cpu():
    # training=True: the same seed draws the same masks on both backends
    rng = np.random.default_rng(12)
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    kw = dict(dropout=0.3, recurrent_dropout=0.4, seed=7, return_sequences=True)
    for cpu, gpu in _layer_pairs(rng, x, **kw):
        want = cpu(x, training=True)
        got = gpu(x, training=True)
        assert gpu.last_backend == "cuda"
        _close(got, want)
        assert np.abs(want - cpu(x)).max() > 1e-3  # the masks were applied
