"""gpulstm.SimpleRNN against Keras 3 and tf_keras 2 (tests/fixtures_rnn,
scripts/make_rnn_fixtures.py) and the float64 reference ``naive.simple_rnn``, on the
NumPy tier, the numba kernel under every forced product kernel, and numba's threads."""
import glob
import os

import numpy as np
import pytest

import gpulstm
import naive
from rnn_fixtures import HERE, check_call
from rnn_fixtures import close as _close
from rnn_fixtures import load as _load
from rnn_fixtures import weights as _weights
from gpulstm.activations import CODES
from gpulstm.dispatch import BackendUnavailableError
from gpulstm.kernels import cpu_rnn_numpy
from gpulstm.models.serialization import deserialize_layer

CASES = sorted(os.path.basename(p)[:-4] for p in glob.glob(os.path.join(HERE, "*_simple_*.npz")))
KINDS = ("panels16", "panels8", "tiles4x4", "tiles4x2")


@pytest.fixture(params=KINDS)
def kind(request, monkeypatch):
    from gpulstm.kernels import cpu, cpu_entry

    monkeypatch.setenv(cpu.KERNEL_ENV, request.param)
    monkeypatch.setenv(cpu_entry.ENV_VAR, "0")  # the numba kernel, not the NumPy tier
    return request.param


def test_fixtures_present():
    want = {"default", "relu_seq", "backwards_mask", "return_state", "no_bias", "bidirectional",
            "bidirectional_state", "stateful"}
    assert {f"{g}_simple_{n}" for g in ("k3", "tf2") for n in want} <= set(CASES)


@pytest.mark.parametrize("name", CASES)
def test_matches_keras(name):
    d, cfg, meta = _load(name)
    layer = deserialize_layer(cfg)
    if name.endswith("stateful"):
        layer.build((d["x"].shape[1], None, d["x"].shape[-1]))
        layer.set_weights(_weights(d))
        for k in range(d["x"].shape[0]):
            _close(layer(d["x"][k]), d["out_0"][k])
        layer.reset_states()
        _close(layer(d["x"][0]), d["out_0"][0])
        return
    layer.build((None, None, d["x"].shape[-1]))
    layer.set_weights(_weights(d))
    assert layer.count_params() == meta["count_params"]
    check_call(layer, d)


@pytest.mark.parametrize("name", ["k3_simple_default", "k3_simple_relu_seq",
                                  "k3_simple_backwards_mask", "tf2_simple_return_state",
                                  "tf2_simple_no_bias"])
def test_naive_matches_keras(name):
    """The float64 reference itself reproduces Keras (so it can judge other shapes)."""
    d, cfg, _ = _load(name)
    c = cfg["config"]
    seq, last, h = naive.simple_rnn(d["x"], d["w_0"], d["w_1"], d["w_2"] if "w_2" in d.files
                                    else None, d["h0_0"] if "h0_0" in d.files else None,
                                    d["mask"] if "mask" in d.files else None,
                                    activation=c["activation"], go_backwards=c["go_backwards"])
    _close(seq if c["return_sequences"] else last, d["out_0"])
    if c["return_state"]:
        _close(h, d["out_1"])


@pytest.mark.parametrize("gen", ["k3", "tf2"])
def test_config_round_trip(gen):
    _, cfg, _ = _load(f"{gen}_simple_default")
    layer = gpulstm.SimpleRNN.from_config(cfg["config"])
    ours = layer.get_config()
    # the Keras 3 dialect: tf_keras 2 writes time_major (false) and no zero_output_for_mask
    assert set(ours) ^ set(cfg["config"]) <= ({"time_major", "zero_output_for_mask"}
                                              if gen == "tf2" else set())
    assert gpulstm.SimpleRNN.from_config(ours).get_config() == ours


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_shapes_against_naive(kind, dtype):
    """Sizes past one 16-column panel (U = 19), 9 rows, masks with holes, h0, both
    output forms, zero_output_for_mask."""
    rng = np.random.default_rng(3)
    B, T, D, U = 9, 5, 11, 19
    x = rng.standard_normal((B, T, D)).astype(dtype)
    mask = rng.random((B, T)) > 0.25
    mask[0, :2] = False
    h0 = rng.standard_normal((B, U)).astype(dtype)
    tol = 1e-12 if dtype == "float64" else None
    for seqs, zofm in ((True, False), (False, True)):
        layer = gpulstm.SimpleRNN(U, return_sequences=seqs, return_state=True, go_backwards=True,
                                  zero_output_for_mask=zofm, dtype=dtype, seed=1)
        out, h = layer(x, mask=mask, initial_state=[h0])
        assert out.dtype == dtype
        seq, last, href = naive.simple_rnn(x, *layer.get_weights(), h0=h0, mask=mask,
                                           go_backwards=True, zero_output_for_mask=zofm)
        ref = seq if seqs else last
        if tol:
            assert np.max(np.abs(out - ref)) <= tol and np.max(np.abs(h - href)) <= tol
        else:
            _close(out, ref)
            _close(h, href)


@pytest.mark.parametrize("act", ["relu", "sigmoid", "hard_sigmoid", "linear"])
def test_activations_against_naive(act):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((4, 6, 3)).astype("float32")
    layer = gpulstm.SimpleRNN(7, activation=act, return_sequences=True, seed=2)
    y = layer(x)
    seq, _, _ = naive.simple_rnn(x, *layer.get_weights(), activation=act)
    _close(y, seq)


def test_numpy_tier_against_naive():
    rng = np.random.default_rng(5)
    B, T, D, U = 3, 6, 4, 5
    x = rng.standard_normal((B, T, D)).astype("float32")
    kernel, rk = rng.standard_normal((D, U)).astype("f4"), rng.standard_normal((U, U)).astype("f4")
    bias, h0 = rng.standard_normal(U).astype("f4"), rng.standard_normal((B, U)).astype("f4")
    mask = rng.random((B, T)) > 0.3
    for seqs in (True, False):
        out, h = cpu_rnn_numpy.rnn_forward(x, kernel, rk, bias, h0, mask,
                                           activation=CODES["tanh"], go_backwards=True,
                                           return_sequences=seqs)
        seq, last, href = naive.simple_rnn(x, kernel, rk, bias, h0, mask, go_backwards=True)
        _close(out, seq if seqs else last)
        _close(h, href)


def test_first_calls_run_on_the_numpy_tier(fresh_tier, monkeypatch):
    calls = []
    real = cpu_rnn_numpy.rnn_forward
    monkeypatch.setattr(cpu_rnn_numpy, "rnn_forward",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    x = np.random.default_rng(8).standard_normal((2, 5, 3)).astype("float32")
    layer = gpulstm.SimpleRNN(4, return_sequences=True)
    y = layer(x)
    assert calls == [1]
    seq, _, _ = naive.simple_rnn(x, *layer.get_weights())
    _close(y, seq)
    monkeypatch.setattr(fresh_tier, "LOAD_COST_S", 0.0)
    _close(layer(x), seq)
    assert calls == [1]


def test_custom_activation_and_time_major():
    rng = np.random.default_rng(9)
    x = rng.standard_normal((3, 5, 2)).astype("float32")

    def softsign(v):
        return v / (1.0 + abs(v))

    layer = gpulstm.SimpleRNN(4, activation=softsign, time_major=True, return_sequences=True,
                              return_state=True, seed=4)
    y, h = layer(np.swapaxes(x, 0, 1))
    seq, _, href = naive.simple_rnn(x, *layer.get_weights(), activation=softsign)
    _close(np.swapaxes(y, 0, 1), seq)
    _close(h, href)


def test_dropout_in_training():
    rng = np.random.default_rng(10)
    x = rng.standard_normal((64, 4, 8)).astype("float32")
    base = gpulstm.SimpleRNN(6, seed=1)
    ref = base(x)
    same = gpulstm.SimpleRNN(6, dropout=0.0, recurrent_dropout=0.0, seed=1)
    same.set_weights(base.get_weights())
    _close(same(x, training=True), ref)
    outs = []
    for _ in range(2):
        layer = gpulstm.SimpleRNN(6, dropout=0.5, recurrent_dropout=0.3, seed=5)
        layer.set_weights(base.get_weights())
        outs.append(layer(x, training=True))
        _close(layer(x), ref)  # inference ignores the rates
    np.testing.assert_array_equal(outs[0], outs[1])
    assert np.max(np.abs(outs[0] - ref)) > 1e-3


def test_stateful_reset_states_with_values():
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 4, 3)).astype("float32")
    layer = gpulstm.SimpleRNN(5, stateful=True, return_state=True, seed=6)
    _, h1 = layer(x)
    h0 = rng.standard_normal((2, 5)).astype("float32")
    layer.reset_states([h0])
    out, h = layer(x)
    _close(h, naive.simple_rnn(x, *layer.get_weights(), h0=h0)[2])
    layer.reset_states()
    _close(layer(x)[1], h1)


def test_weights_shapes_and_errors():
    layer = gpulstm.SimpleRNN(3, use_bias=False)
    layer.build((None, None, 2))
    assert [w.shape for w in layer.get_weights()] == [(2, 3), (3, 3)]
    assert layer.count_params() == 15
    with pytest.raises(ValueError, match="expects `initial_state`"):
        layer(np.zeros((1, 2, 2), "f4"), initial_state=[np.zeros((1, 3)), np.zeros((1, 3))])
    with pytest.raises(TypeError):
        gpulstm.SimpleRNN(3, recurrent_activation="sigmoid")
    if not gpulstm.BACKENDS["cuda"].availability()[0]:  # no GPU: refused when built
        with pytest.raises(BackendUnavailableError, match="backend='cuda'"):
            gpulstm.SimpleRNN(3, backend="cuda")


def test_dropout_rate_observed():
    """Linear cell, identity kernel, no recurrence: each output is its input times the
    input mask (kept / (1 - rate)); the observed drop rate is within 3 sigma of it."""
    B, T, D, rate = 200, 3, 8, 0.3
    layer = gpulstm.SimpleRNN(D, activation="linear", use_bias=False, dropout=rate,
                              return_sequences=True, seed=11)
    layer.build((None, None, D))
    layer.set_weights([np.eye(D, dtype="f4"), np.zeros((D, D), "f4")])
    y = layer(np.ones((B, T, D), "f4"), training=True)
    kept = y[:, 0] != 0
    np.testing.assert_allclose(y[:, 0][kept], 1 / (1 - rate), rtol=1e-6)
    assert np.array_equal(y[:, 0], y[:, -1])  # one mask per call, shared over time
    sigma = np.sqrt(rate * (1 - rate) / kept.size)
    assert abs((1 - kept.mean()) - rate) <= 3 * sigma
