"""The CUDA kernels under numba's simulator against the float64 reference.

Runs only when ``NUMBA_ENABLE_CUDASIM=1`` was set before the interpreter started
(numba reads it once at import)::

    NUMBA_ENABLE_CUDASIM=1 python -m pytest tests/test_cuda_sim.py -q

Both kernels run: the warp-per-unit kernel (``cuda_warp``, the default; its warp
shuffles emulated in shared memory, ``shuffle=False``) and the first version
(``cuda_kernels``, explicit ``Plan``).  Tiny sizes (B <= 3, T <= 3, U <= 8) and few threads: each simulated thread costs
~0.1 ms per launch and each syncthreads a few ms.  The persistent kernel runs as
one block (the simulator's grid barrier is only correct for one block); the
multi-block partition is tested through the per-step driver, which runs the very
same ``step_block`` device function.
"""
import math
import os
import sys

import numpy as np
import pytest

if os.environ.get("NUMBA_ENABLE_CUDASIM", "0") in ("", "0"):
    pytest.skip("needs NUMBA_ENABLE_CUDASIM=1 at interpreter start", allow_module_level=True)

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import naive  # noqa: E402
from gpulstm import dispatch  # noqa: E402
from gpulstm._cuda_backend import register  # noqa: E402
from gpulstm.activations import CODES  # noqa: E402
from gpulstm.kernels import cuda as kc  # noqa: E402

pytestmark = pytest.mark.cudasim
sys.setswitchinterval(1e-4)  # simulated threads hand over the GIL far more often
register()
assert kc.SIM, "numba was imported before NUMBA_ENABLE_CUDASIM=1 took effect"

HS = {"hard_sigmoid_k3": ("hard_sigmoid", "keras3"), "hard_sigmoid_k2": ("hard_sigmoid", "keras2")}


def _case(rng, B, T, D, U, pattern="none", scale=0.6):
    x = rng.standard_normal((B, T, D)).astype(np.float32)
    W = (scale * rng.standard_normal((D, 4 * U))).astype(np.float32)
    R = (scale * rng.standard_normal((U, 4 * U))).astype(np.float32)
    b = (scale * rng.standard_normal(4 * U)).astype(np.float32)
    h0 = rng.standard_normal((B, U)).astype(np.float32)
    c0 = rng.standard_normal((B, U)).astype(np.float32)
    mask = None
    if pattern == "left":
        mask = np.ones((B, T), bool)
        mask[0, 0] = False
        mask[-1, : T - 1] = False
    elif pattern == "right":
        mask = np.ones((B, T), bool)
        mask[-1, 1:] = False
    elif pattern == "holes":
        mask = rng.random((B, T)) > 0.4
        mask[0, :] = False  # one row never unmasked: output zeros, state = initial
    return x, W, R, b, h0, c0, mask


def _ref_names(code_name):
    name, flavour = HS.get(code_name, (code_name, "keras3"))
    return name, flavour


def _check(got, ref):
    seq_or_last, h, c = got
    out_ref, h_ref, c_ref = ref
    tol = 1e-5 * max(1.0, float(np.abs(out_ref).max()), float(np.abs(c_ref).max()))
    assert np.abs(seq_or_last - out_ref).max() <= tol
    assert np.abs(h - h_ref).max() <= tol
    assert np.abs(c - c_ref).max() <= tol


def _run_and_check(case, act="tanh", ract="sigmoid", go_backwards=False, zofm=False,
                   return_sequences=True, plan=None):
    x, W, R, b, h0, c0, mask = case
    a_name, flav = _ref_names(act)
    r_name, flav2 = _ref_names(ract)
    seq, last, h, c = naive.lstm(x, W, R, b, h0, c0, mask, a_name, r_name, go_backwards, zofm,
                                 hard_sigmoid=flav if act in HS else flav2)
    got = kc.lstm_forward(x, W, R, b, h0, c0, mask, activation=CODES[act],
                          recurrent_activation=CODES[ract], go_backwards=go_backwards,
                          return_sequences=return_sequences, zero_output_for_mask=zofm,
                          plan=plan)
    assert got[0].shape == (seq.shape if return_sequences else last.shape)
    _check(got, (seq if return_sequences else last, h, c))


def _plan(B, U, **kw):
    return kc.make_plan(B, U, smem_optin=48 * 1024, **kw)


# -- persistent kernel, one block ------------------------------------------------
@pytest.mark.parametrize("act, ract, pattern, go_backwards, zofm, rs", [
    ("tanh", "sigmoid", "none", False, False, True),
    ("tanh", "hard_sigmoid_k3", "left", True, False, True),
    ("relu", "hard_sigmoid_k2", "holes", False, False, False),
    ("gelu", "tanh", "right", False, True, True),
    ("softsign", "sigmoid", "holes", True, True, False),
])
def test_persistent_one_block(act, ract, pattern, go_backwards, zofm, rs):
    rng = np.random.default_rng(hash((act, ract, pattern)) % 2**32)
    case = _case(rng, 2, 3, 3, 5, pattern)
    _run_and_check(case, act, ract, go_backwards, zofm, rs,
                   plan=_plan(2, 5, n_blocks=1, nthreads=16))


@pytest.mark.parametrize("barrier, w_in_smem", [("flag", True), ("cg", False)])
def test_persistent_barrier_and_global_weights(barrier, w_in_smem):
    rng = np.random.default_rng(7)
    case = _case(rng, 2, 3, 2, 4, "left")
    _run_and_check(case, plan=_plan(2, 4, n_blocks=1, nthreads=16, barrier=barrier,
                                    w_in_smem=w_in_smem))


# -- warp-per-unit kernel ------------------------------------------------------------
def _wplan(B, U, **kw):
    kw.setdefault("nthreads", 32)
    return kc.make_warp_plan(B, U, smem_optin=48 * 1024, shuffle=False, **kw)


@pytest.mark.parametrize("act, ract, pattern, gb, zofm, rs, barrier, nthreads", [
    ("tanh", "sigmoid", "holes", True, False, True, "flag", 64),   # 2 warps, 3 units: one idle
    ("relu", "hard_sigmoid_k3", "left", False, True, False, "cg", 32),
    ("gelu", "hard_sigmoid_k2", "right", True, True, True, "flag", 32),
    ("softsign", "sigmoid", "holes", False, True, True, "tag", 64),  # tag exchange
])
def test_warp_persistent_one_block(act, ract, pattern, gb, zofm, rs, barrier, nthreads):
    rng = np.random.default_rng(hash((act, ract, "warp")) % 2**32)
    case = _case(rng, 2, 2, 3, 3, pattern)
    _run_and_check(case, act, ract, gb, zofm, rs,
                   plan=_wplan(2, 3, n_blocks=1, nthreads=nthreads, barrier=barrier))


@pytest.mark.parametrize("B, U, n_blocks, rb, w_units", [
    (3, 5, 3, 2, 1),   # ragged last block, 2 row passes, one unit per block in smem
    (1, 4, 2, 1, 0),   # weights from global memory only
])
def test_warp_step_driver_multi_block(B, U, n_blocks, rb, w_units):
    rng = np.random.default_rng(B * 10 + U)
    plan = _wplan(B, U, n_blocks=n_blocks, rb=rb, w_units=w_units, driver="step")
    assert plan.n_blocks == n_blocks
    _run_and_check(_case(rng, B, 3, 2, U, "holes"), "tanh", "sigmoid", True, plan=plan)


def test_warp_tag_exchange_row_chunks_and_step_driver():
    # tags published per (row, unit) and read chunk by chunk (B=3, rb=2: two chunks);
    # the step driver runs the multi-block partition (each launch finds its tags set)
    rng = np.random.default_rng(33)
    case = _case(rng, 3, 3, 2, 5, "holes")
    _run_and_check(case, "tanh", "hard_sigmoid_k3", True, False, True,
                   plan=_wplan(3, 5, n_blocks=1, rb=2, barrier="tag"))
    _run_and_check(case, "tanh", "sigmoid", False, True, True,
                   plan=_wplan(3, 5, n_blocks=3, rb=2, w_units=1, barrier="tag",
                               driver="step"))


def test_unknown_barrier_is_refused():
    rng = np.random.default_rng(34)
    with pytest.raises(ValueError, match="Received: barrier='spin'"):
        _run_and_check(_case(rng, 1, 2, 2, 3), plan=_wplan(1, 3, n_blocks=1, barrier="spin"))


def test_warp_graph_driver_runs_the_step_launches():
    # under the simulator the graph driver launches the steps without a capture
    # (CuPy cannot run here); the capture itself: tests/test_cuda_graph.py and the
    # real-GPU test in tests/test_cuda_gpu.py
    rng = np.random.default_rng(21)
    plan = _wplan(2, 5, n_blocks=3, rb=2, w_units=0, driver="graph")
    _run_and_check(_case(rng, 2, 3, 2, 5, "left"), "tanh", "sigmoid", False, plan=plan)


def test_warp_user_callable_and_prepared():
    rng = np.random.default_rng(15)
    x, W, R, b, h0, c0, _ = _case(rng, 1, 2, 2, 2)

    def my_act(v):
        return math.tanh(v) * 0.5

    seq, _, h, c = naive.lstm(x, W, R, b, h0, c0, None, lambda v: np.tanh(v) * 0.5, "sigmoid")
    prep = kc.prepare(W, R, b)
    got = kc.lstm_forward(x, None, None, None, h0, c0, None, activation=my_act,
                          recurrent_activation=CODES["sigmoid"], return_sequences=True,
                          plan=_wplan(1, 2, n_blocks=1), prepared=prep)
    _check(got, (seq, h, c))
    assert list(prep._packed) == [(1, 2)]


def test_warp_plan_choices():
    # fewer, fatter blocks; rows per pass; weights on chip as far as they fit
    p = kc.make_warp_plan(4, 512, n_sm=132, smem_optin=227 * 1024)
    assert (p.n_blocks, p.upb, p.nthreads, p.rb, p.w_units) == (64, 8, 256, 4, 8)
    p = kc.make_warp_plan(1, 1024, n_sm=132, smem_optin=227 * 1024)
    assert (p.n_blocks, p.upb, p.rb, p.w_units) == (128, 8, 1, 8)
    p = kc.make_warp_plan(3, 2048, n_sm=132, smem_optin=227 * 1024)
    assert p.upb == 16 and p.nthreads == 512 and p.rb == 4 and 0 < p.w_units < 16
    assert 16 * p.w_units * 2048 + 4 * 4 * 2048 <= 227 * 1024
    assert kc.make_warp_plan(33, 64).rb == 8
    assert kc.make_warp_plan(1, 3).n_blocks == 1
    with pytest.raises(ValueError, match="shuffle=False"):
        kc.lstm_forward(None, None, np.zeros((2, 8), np.float32), None, np.zeros((1, 2)),
                        np.zeros((1, 2)), None, activation=1, recurrent_activation=2,
                        x_proj=np.zeros((1, 1, 8), np.float32),
                        plan=kc.make_warp_plan(1, 2, n_blocks=1))


# -- the same step_block over several blocks, one launch per step ------------------
@pytest.mark.parametrize("U, n_blocks, nthreads, bchunk", [
    (5, 3, 16, 2),   # ragged last block (units 4..5), ksplit > 1
    (8, 4, 8, 1),    # batch staged one row at a time
    (6, 6, 4, 2),    # one unit per block, ksplit = 2
    (7, 2, 2, 2),    # more items than threads: several passes, ksplit = 1
])
def test_step_driver_multi_block(U, n_blocks, nthreads, bchunk):
    rng = np.random.default_rng(U * 100 + n_blocks)
    case = _case(rng, 2, 3, 3, U, "holes")
    plan = _plan(2, U, n_blocks=n_blocks, nthreads=nthreads, bchunk=bchunk, driver="step")
    assert plan.n_blocks == n_blocks
    _run_and_check(case, "tanh", "sigmoid", go_backwards=True, plan=plan)


def test_default_plan_and_last_output():
    rng = np.random.default_rng(3)
    _run_and_check(_case(rng, 1, 2, 2, 3), return_sequences=False)


def test_x_proj_and_rec_masks():
    rng = np.random.default_rng(11)
    B, T, D, U = 2, 3, 2, 4
    x, W, R, b, h0, c0, mask = _case(rng, B, T, D, U, "right")
    in_masks = (rng.random((4, B, 1, D)) > 0.3).astype(np.float32) / 0.7
    rec_masks = ((rng.random((B, 4, U)) > 0.3) / 0.7).astype(np.float32)
    x_proj = np.concatenate([(x * in_masks[g]) @ W[:, g * U:(g + 1) * U] for g in range(4)],
                            axis=-1) + b
    # reference: per-gate masked recurrent product, unrolled here in float64
    h, c = h0.astype(np.float64), c0.astype(np.float64)
    out_prev = np.zeros((B, U))
    seq = np.zeros((B, T, U))
    for t in range(T):
        z = x_proj[:, t].astype(np.float64) + np.concatenate(
            [(h * rec_masks[:, g]) @ R[:, g * U:(g + 1) * U] for g in range(4)], axis=-1)
        sg = 1 / (1 + np.exp(-z))
        c_new = sg[:, U:2 * U] * c + sg[:, :U] * np.tanh(z[:, 2 * U:3 * U])
        h_new = sg[:, 3 * U:] * np.tanh(c_new)
        keep = mask[:, t][:, None]
        h, c = np.where(keep, h_new, h), np.where(keep, c_new, c)
        out_prev = np.where(keep, h_new, out_prev)
        seq[:, t] = out_prev
    for plan in (_plan(B, U, n_blocks=1, nthreads=16),
                 _plan(B, U, n_blocks=2, nthreads=8, driver="step")):
        got = kc.lstm_forward(None, None, R, None, h0, c0, mask, activation=CODES["tanh"],
                              recurrent_activation=CODES["sigmoid"], return_sequences=True,
                              x_proj=x_proj, rec_masks=rec_masks, plan=plan)
        _check(got, (seq, h, c))


def test_user_callable_activation():
    rng = np.random.default_rng(5)
    x, W, R, b, h0, c0, mask = _case(rng, 1, 2, 2, 3, "none")

    def my_act(v):
        return math.tanh(v) * 0.5

    def my_ract(v):
        return 1.0 / (1.0 + math.exp(-v))

    seq, _, h, c = naive.lstm(x, W, R, b, h0, c0, None, lambda v: np.tanh(v) * 0.5, "sigmoid")
    got = kc.lstm_forward(x, W, R, b, h0, c0, None, activation=my_act,
                          recurrent_activation=my_ract, return_sequences=True,
                          plan=_plan(1, 3, n_blocks=1, nthreads=8))
    _check(got, (seq, h, c))


@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
@given(B=st.integers(1, 2), T=st.integers(1, 3), D=st.integers(1, 3), U=st.integers(1, 8),
       ract=st.sampled_from(["sigmoid", "hard_sigmoid_k3", "hard_sigmoid_k2", "linear"]),
       pattern=st.sampled_from(["none", "left", "right", "holes"]), gb=st.booleans(),
       zofm=st.booleans(), blocks=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_property_step_driver(B, T, D, U, ract, pattern, gb, zofm, blocks, seed):
    rng = np.random.default_rng(seed)
    plan = _plan(B, U, n_blocks=min(blocks, U), nthreads=8, driver="step")
    _run_and_check(_case(rng, B, T, D, U, pattern), "tanh", ract, gb, zofm, plan=plan)


# -- the layer and the dispatcher under the simulator --------------------------------
def test_layer_keras_published_values():
    import gpulstm

    # keras-team/keras lstm_test.py::test_correctness (constant initializers)
    x = np.arange(72).reshape((3, 6, 4)).astype("float32")
    layer = gpulstm.LSTM(3, backend="cuda")
    layer.build(x.shape)
    layer.set_weights([np.full((4, 12), 0.01, np.float32), np.full((3, 12), 0.02, np.float32),
                       np.concatenate([np.full(3, 0.03), np.ones(3), np.full(6, 0.03)]
                                      ).astype(np.float32)])
    out = layer(x)
    expected = np.repeat(np.array([0.6288687, 0.86899155, 0.9460773])[:, None], 3, axis=1)
    np.testing.assert_allclose(out, expected, atol=1e-5, rtol=1e-5)
    assert layer.last_backend == "cuda"


def test_explicit_cuda_runs_simulator_but_auto_never_does():
    name, why = dispatch.resolve_backend("cuda")
    assert name == "cuda"
    assert dispatch.BACKENDS["cuda"].availability()[0]
    assert "simulator" in dispatch.BACKENDS["cuda"].availability()[1]
    name, why = dispatch.resolve_backend("auto", np.zeros((2, 3, 4), np.float32))
    assert name == "cpu"
