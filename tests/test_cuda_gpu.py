"""The CUDA backend on a real GPU against the float64 reference (skipped without one).

    python -m pytest -m gpu tests/test_cuda_gpu.py
"""
import dataclasses
import threading

import numpy as np
import pytest

from gpu_skip import real_gpu

pytestmark = pytest.mark.gpu

if not real_gpu():
    pytest.skip("needs a real CUDA device with numba-cuda and CuPy", allow_module_level=True)

import cupy  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import naive  # noqa: E402
from gpulstm._cuda_backend import register  # noqa: E402
from gpulstm.activations import CODES  # noqa: E402
from gpulstm.kernels import cuda as kc  # noqa: E402

register()
HS = {"hard_sigmoid_k3": ("hard_sigmoid", "keras3"), "hard_sigmoid_k2": ("hard_sigmoid", "keras2")}


def _case(rng, B, T, D, U, pattern="none"):
    s = 1.5 / np.sqrt(U)
    x = rng.standard_normal((B, T, D)).astype(np.float32)
    W = rng.uniform(-s, s, (D, 4 * U)).astype(np.float32)
    R = rng.uniform(-s, s, (U, 4 * U)).astype(np.float32)
    b = rng.uniform(-s, s, 4 * U).astype(np.float32)
    h0 = rng.standard_normal((B, U)).astype(np.float32)
    c0 = rng.standard_normal((B, U)).astype(np.float32)
    mask = None
    if pattern == "left":
        mask = np.ones((B, T), bool)
        for r in range(B):
            mask[r, : (r * T) // (B + 1)] = False
    elif pattern == "holes":
        mask = rng.random((B, T)) > 0.3
        mask[0] = False
    return x, W, R, b, h0, c0, mask


def _check_against_naive(case, act="tanh", ract="sigmoid", gb=False, zofm=False, plan=None,
                         device=False):
    x, W, R, b, h0, c0, mask = case
    a_name, fl = HS.get(act, (act, "keras3"))
    r_name, fl2 = HS.get(ract, (ract, "keras3"))
    seq, _, h, c = naive.lstm(x, W, R, b, h0, c0, mask, a_name, r_name, gb, zofm,
                              hard_sigmoid=fl if act in HS else fl2)
    args = [cupy.asarray(a) if (device and a is not None) else a
            for a in (x, W, R, b, h0, c0, mask)]
    got = kc.lstm_forward(*args, activation=CODES[act], recurrent_activation=CODES[ract],
                          go_backwards=gb, return_sequences=True, zero_output_for_mask=zofm,
                          plan=plan)
    if device:
        assert all(isinstance(g, cupy.ndarray) for g in got)
        got = [g.get() for g in got]
    else:
        assert all(isinstance(g, np.ndarray) for g in got)
    tol = 1e-5 * max(1.0, float(np.abs(seq).max()), float(np.abs(c).max()))
    for g, r in zip(got, (seq, h, c)):
        assert np.abs(g - r).max() <= tol


@pytest.mark.parametrize("B, T, U, pattern", [
    (1, 20, 1, "none"), (2, 30, 7, "holes"), (3, 50, 64, "left"), (4, 100, 256, "holes"),
    (2, 1000, 128, "left"), (1, 50, 1024, "none"), (33, 20, 200, "holes"),
])
def test_sizes_against_reference(B, T, U, pattern):
    rng = np.random.default_rng(B * 1000 + U)
    _check_against_naive(_case(rng, B, T, 16, U, pattern), gb=U % 2 == 1)


@pytest.mark.parametrize("barrier", ["cg", "flag"])
@pytest.mark.parametrize("U, n_blocks, w_in_smem", [(512, 128, True), (300, 77, True),
                                                    (256, 64, False), (1536, 128, None)])
def test_plans(barrier, U, n_blocks, w_in_smem):
    rng = np.random.default_rng(U)
    case = _case(rng, 4, 40, 8, U, "holes")
    plan = kc.make_plan(4, U, n_blocks=n_blocks, barrier=barrier)
    if w_in_smem is not None:
        plan = dataclasses.replace(plan, w_in_smem=w_in_smem)
    _check_against_naive(case, plan=plan, device=True)


@pytest.mark.parametrize("barrier", ["cg", "flag", "tag"])
@pytest.mark.parametrize("B, U, kw", [
    (4, 512, {}), (3, 300, {"n_blocks": 77}), (2, 1536, {}),   # 1536: part of the weights in L2
    (9, 256, {"w_units": 0}),                                 # 2 passes of 8 rows, global weights
    (2, 96, {"shuffle": False}),                              # simulator exchanges on a GPU
    (5, 200, {"rb": 1, "min_upb": 40}),                       # 16 warps loop over 40 units
])
def test_warp_plans(barrier, B, U, kw):
    rng = np.random.default_rng(U + B)
    plan = kc.make_warp_plan(B, U, barrier=barrier, **kw)
    _check_against_naive(_case(rng, B, 30, 8, U, "holes"), gb=True, plan=plan, device=True)


def test_prepared_weights_are_reused():
    rng = np.random.default_rng(21)
    x, W, R, b, h0, c0, mask = _case(rng, 2, 20, 8, 128, "left")
    prep = kc.prepare(W, R, b)
    seq, _, h, c = naive.lstm(x, W, R, b, h0, c0, mask)
    for _ in range(2):
        got = kc.lstm_forward(x, None, None, None, h0, c0, mask, activation=CODES["tanh"],
                              recurrent_activation=CODES["sigmoid"], return_sequences=True,
                              prepared=prep)
        assert np.abs(got[0] - seq).max() <= 1e-5 and np.abs(got[2] - c).max() <= 1e-5
    assert len(prep._packed) == 1


@pytest.mark.parametrize("act, ract", [("tanh", "hard_sigmoid_k3"), ("relu", "hard_sigmoid_k2"),
                                       ("gelu", "sigmoid"), ("selu", "tanh"), ("mish", "linear")])
def test_activations(act, ract):
    rng = np.random.default_rng(3)
    _check_against_naive(_case(rng, 2, 30, 8, 96, "left"), act, ract, zofm=True)


def test_step_driver_on_device():
    rng = np.random.default_rng(4)
    plan = kc.make_plan(2, 64, n_blocks=8, driver="step")
    _check_against_naive(_case(rng, 2, 10, 8, 64, "holes"), plan=plan, device=True)


@pytest.mark.parametrize("B, T, U, kw", [
    (2, 30, 2048, {"w_units": 0}),    # weights from L2, 64 KiB of h staging (smem opt-in)
    (3, 25, 96, {"rb": 2}),           # two row passes per step
    (1, 1, 64, {}),                   # one step: no graph at all
])
def test_graph_driver_captures_once_and_replays(B, T, U, kw):
    from gpulstm.kernels import cuda_graph

    rng = np.random.default_rng(B + U)
    case = _case(rng, B, T, 8, U, "holes")
    plan = kc.make_warp_plan(B, U, driver="graph", **kw)
    before = dict(cuda_graph.stats)
    for _ in range(3):  # CuPy's pool gives the same buffers: the 2nd and 3rd replay
        _check_against_naive(case, gb=True, plan=plan, device=True)
    captured = cuda_graph.stats["captured"] - before["captured"]
    replayed = cuda_graph.stats["replayed"] - before["replayed"]
    if T == 1:
        assert captured == replayed == 0
    else:
        assert captured >= 1 and captured + replayed == 3


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(B=st.integers(1, 9), T=st.integers(1, 40), D=st.integers(1, 9), U=st.integers(1, 300),
       ract=st.sampled_from(["sigmoid", "hard_sigmoid_k3", "hard_sigmoid_k2"]),
       pattern=st.sampled_from(["none", "left", "holes"]), gb=st.booleans(), zofm=st.booleans(),
       seed=st.integers(0, 2**16))
def test_property(B, T, D, U, ract, pattern, gb, zofm, seed):
    rng = np.random.default_rng(seed)
    _check_against_naive(_case(rng, B, T, D, U, pattern), "tanh", ract, gb, zofm, device=seed % 2 == 0)


def test_torch_tensor_in_cupy_out_on_caller_stream():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(9)
    x, W, R, b, h0, c0, _ = _case(rng, 2, 12, 4, 32)
    seq, _, h, c = naive.lstm(x, W, R, b, h0, c0)
    s = cupy.cuda.Stream(non_blocking=True)
    with s:
        out = kc.lstm_forward(torch.from_numpy(x).cuda(), W, R, b, h0, c0, None,
                              activation=CODES["tanh"], recurrent_activation=CODES["sigmoid"],
                              return_sequences=True)
        s.synchronize()
    assert isinstance(out[0], cupy.ndarray)
    assert np.abs(out[0].get() - seq).max() < 1e-5


def test_threads_share_nothing():
    rng = np.random.default_rng(10)
    cases = [_case(rng, 2, 30, 4, 64, "holes") for _ in range(4)]
    errors = []

    def work(case):
        try:
            for _ in range(3):
                _check_against_naive(case)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(c,)) for c in cases]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_out_of_memory_is_a_clear_error():
    U = 64
    huge = cupy.broadcast_to(cupy.zeros((1, 1, 4 * U), np.float32), (400_000, 100_000, 4 * U))
    with pytest.raises(MemoryError, match="out of memory"):
        kc.lstm_forward(None, None, np.zeros((U, 4 * U), np.float32), None,
                        cupy.zeros((400_000, U), np.float32), cupy.zeros((400_000, U), np.float32),
                        None, activation=1, recurrent_activation=2, x_proj=huge)


def test_layer_auto_picks_cuda_and_matches():
    import gpulstm

    rng = np.random.default_rng(12)
    x, W, R, b, h0, c0, mask = _case(rng, 3, 40, 64, 64, "left")
    layer = gpulstm.LSTM(64, return_sequences=True, return_state=True)
    layer.build(x.shape)
    layer.set_weights([W, R, b])
    out, h, c = layer(x, mask=mask, initial_state=[h0, c0])
    assert layer.last_backend == "cuda"
    seq, _, hr, cr = naive.lstm(x, W, R, b, h0, c0, mask)
    assert np.abs(np.asarray(out) - seq).max() < 1e-5
    assert np.abs(np.asarray(c) - cr).max() < 1e-5


# -- a whole model on the device (the path tests/test_device_resident.py checks
# against a fake CuPy): Dense/Embedding/merge layers run in CuPy between the LSTMs.
def _device_model():
    from gpulstm import (LSTM, Bidirectional, Concatenate, Dense, Embedding, Input, Model,
                         TimeDistributed)

    tokens = Input(shape=(9,), dtype="int32")
    feats = Input(shape=(9, 5))
    e = Embedding(30, 6, mask_zero=True)(tokens)
    seq = Bidirectional(LSTM(7, return_sequences=True))(e)
    both = Concatenate()([seq, TimeDistributed(Dense(5, activation="gelu"))(feats)])
    out, h, c = LSTM(8, return_state=True)(both)
    dec = LSTM(8, return_sequences=True)(feats, initial_state=[h, c])
    model = Model([tokens, feats], [Dense(3, activation="softmax")(out), dec])
    rng = np.random.default_rng(21)
    model.set_weights([rng.normal(0, 0.3, w.shape).astype(np.float32)
                       for w in model.get_weights()])
    ids = rng.integers(1, 30, (6, 9))
    ids[:2, -3:] = 0  # right padding: the mask reaches the LSTMs
    return model, [ids, rng.standard_normal((6, 9, 5)).astype(np.float32)]


def test_model_predict_on_device_matches_cpu():
    model, xs = _device_model()
    want = model.predict(xs, backend="cpu", verbose=0)
    got = model.predict(xs, backend="cuda", verbose=0)
    for g, w in zip(got, want):
        assert isinstance(g, np.ndarray)
        assert np.abs(g - w).max() <= 1e-5 * max(1.0, float(np.abs(w).max()))


def test_model_call_keeps_device_arrays(monkeypatch):
    model, xs = _device_model()
    want = model(xs, backend="cpu")
    copies = []
    real = cupy.asnumpy
    monkeypatch.setattr(cupy, "asnumpy", lambda a, *k, **kw: copies.append(a.shape) or real(a, *k, **kw))
    got = model([cupy.asarray(xs[0]), cupy.asarray(xs[1])], backend="cuda")
    assert all(isinstance(g, cupy.ndarray) for g in got)
    assert not copies, f"device-to-host copies inside the model: {copies}"
    for g, w in zip(got, want):
        assert np.abs(g.get() - w).max() <= 1e-5 * max(1.0, float(np.abs(w).max()))
