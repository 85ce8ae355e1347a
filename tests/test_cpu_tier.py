"""The CPU backend's NumPy tier and the rule that hands over to numba (cpu_entry).

The tier's numerics are checked against tests/naive.py in test_cpu_backend.py (every
test there runs on both tiers) and on the Keras fixtures in test_golden.py.
"""
import os
import subprocess
import sys

import numpy as np
import pytest

import gpulstm
import naive
from gpulstm.kernels import cpu, cpu_entry, cpu_numpy

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _close(got, ref):
    tol = 1e-5 * max(1.0, float(np.abs(ref).max()))
    np.testing.assert_allclose(got, ref, rtol=0, atol=tol)


def _problem(B=2, T=5, D=3, U=4, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(B, T, D)).astype(np.float32)
    kernel = rng.normal(0, 0.5, (D, 4 * U)).astype(np.float32)
    rk = rng.normal(0, 0.5, (U, 4 * U)).astype(np.float32)
    bias = rng.normal(0, 0.5, 4 * U).astype(np.float32)
    zeros = np.zeros((B, U), np.float32)
    return x, kernel, rk, bias, zeros


@pytest.fixture
def switch(fresh_tier, monkeypatch):
    """A process where numba's kernels are not loaded yet; records which tier ran."""
    ran = []
    real_numpy, real_load = cpu_numpy.lstm_forward, cpu_entry.load_numba

    def numpy_forward(*a, **k):
        ran.append("numpy")
        return real_numpy(*a, **k)

    def load():
        ran.append("numba")
        return real_load()

    monkeypatch.setattr(cpu_numpy, "lstm_forward", numpy_forward)
    monkeypatch.setattr(cpu_entry, "load_numba", load)
    return ran


def _call(x, kernel, rk, bias, zeros, activation=1, prepared=None):
    return cpu_entry.lstm_forward(x, kernel, rk, bias, zeros, zeros, None,
                                  activation=activation, recurrent_activation=2,
                                  prepared=prepared)


def test_rents_while_the_tier_costs_less_than_loading_numba(switch, monkeypatch):
    args = _problem()
    monkeypatch.setattr(cpu_entry, "estimate_s", lambda B, T, D, U: 0.04)
    monkeypatch.setattr(cpu_entry, "_spent", 0.95)
    _call(*args)  # 0.95 + 0.04 <= 1.0
    assert switch == ["numpy"] and cpu_entry._spent > 0.95
    monkeypatch.setattr(cpu_entry, "_spent", 0.97)
    _call(*args)  # 0.97 + 0.04 > 1.0: numba from now on
    assert switch == ["numpy", "numba"]


def test_a_large_first_call_goes_straight_to_numba(switch):
    x, kernel, rk, bias, _ = _problem(B=1, T=1, D=3, U=4)
    big = np.zeros((1, 40_000, 3), np.float32)  # 40k steps: ~1.2 s on the tier
    assert cpu_entry.estimate_s(1, 40_000, 3, 4) > cpu_entry.LOAD_COST_S
    _call(big, kernel, rk, bias, np.zeros((1, 4), np.float32))
    assert switch == ["numba"]


@pytest.mark.parametrize("value", ["0", "off", "False"])
def test_the_environment_variable_turns_the_tier_off(switch, monkeypatch, value):
    monkeypatch.setenv(cpu_entry.ENV_VAR, value)
    _call(*_problem())
    assert switch == ["numba"]


def test_gelu_runs_on_numba(switch):
    # correct on the tier too (test_cpu_backend.py), but erf has no NumPy ufunc
    _call(*_problem(), activation=gpulstm.activations.CODES["gelu"])
    assert switch == ["numba"]


def test_custom_activations_need_numba(switch):
    import math

    out, h, c = _call(*_problem(), activation=lambda v: math.tanh(v))
    assert switch == ["numba"]
    ref = naive.lstm(*_problem()[:4])
    _close(out, ref[1])


def test_loaded_numba_ends_the_tier(monkeypatch):
    monkeypatch.setenv(cpu_entry.ENV_VAR, "1")
    monkeypatch.setattr(cpu_entry, "_spent", 0.0)
    assert cpu_entry.numba_loaded()  # this test module imported gpulstm.kernels.cpu
    assert not cpu_entry._use_tier(np.zeros((1, 1, 1), np.float32), np.zeros((1, 4), np.float32),
                                   None, 1, 2)


def test_prepared_weights_are_packed_once_when_numba_first_runs(switch):
    x, kernel, rk, bias, zeros = _problem()
    prepared = cpu_entry.prepare(kernel, rk, bias)
    assert prepared._prepared is None
    cpu_entry._spent = cpu_entry.LOAD_COST_S  # the rent is spent
    _call(x, kernel, rk, bias, zeros, prepared=prepared)
    packed = prepared._prepared
    assert isinstance(packed, cpu.Prepared)
    _call(x, kernel, rk, bias, zeros, prepared=prepared)
    assert prepared._prepared is packed


def test_recurrent_dropout_masks_on_the_tier():
    x, kernel, rk, bias, zeros = _problem(B=3, T=6, D=2, U=5, seed=4)
    rng = np.random.default_rng(5)
    x_proj = (x @ kernel + bias).astype(np.float32)
    rec = ((rng.random((3, 4, 5)) > 0.3) / 0.7).astype(np.float32)
    kw = dict(activation=1, recurrent_activation=2, return_sequences=True, x_proj=x_proj,
              rec_masks=rec)
    got = cpu_numpy.lstm_forward(None, kernel, rk, bias, zeros, zeros, None, **kw)
    ref = cpu.lstm_forward(None, kernel, rk, bias, zeros, zeros, None, **kw)
    # float64 by hand: h_tm1 masked per gate before the recurrent product
    h = np.zeros((3, 5))
    c = np.zeros((3, 5))
    R = rk.astype(np.float64)
    for t in range(6):
        z = x_proj[:, t].astype(np.float64) + np.concatenate(
            [(h * rec[:, g]) @ R[:, g * 5:(g + 1) * 5] for g in range(4)], axis=1)
        sig = 1 / (1 + np.exp(-z))
        c = sig[:, 5:10] * c + sig[:, :5] * np.tanh(z[:, 10:15])
        h = sig[:, 15:] * np.tanh(c)
    for g, r in zip(got, ref):
        _close(g, r)
    _close(got[1], h)
    _close(got[2], c)


def test_stateful_layer_keeps_its_state_across_the_switch(switch, monkeypatch):
    x, kernel, rk, bias, _ = _problem(B=2, T=6, D=3, U=4, seed=2)
    layer = gpulstm.LSTM(4, stateful=True, return_sequences=True, backend="cpu")
    layer.build((2, 3, 3))
    layer.set_weights([kernel, rk, bias])
    first = layer(x[:, :3])
    cpu_entry._spent = cpu_entry.LOAD_COST_S  # the next call loads numba
    second = layer(x[:, 3:])
    assert switch == ["numpy", "numba"]
    seq = naive.lstm(x, kernel, rk, bias)[0]
    _close(np.concatenate([first, second], axis=1), seq)


def test_a_fresh_process_answers_without_importing_numba():
    code = (
        "import sys, json, numpy as np, gpulstm\n"
        "rng = np.random.default_rng(0)\n"
        "layer = gpulstm.LSTM(8, return_sequences=True)\n"
        "x = rng.normal(size=(2, 7, 3)).astype(np.float32)\n"
        "y = layer(x)\n"
        "print(json.dumps({'numba': 'numba' in sys.modules, 'backend': layer.last_backend,\n"
        "                  'y': y.tolist(), 'w': [w.tolist() for w in layer.get_weights()]}))\n")
    import json

    # the cpu backend explicitly: on a GPU machine "auto" picks cuda, which needs numba
    env = dict(os.environ, GPULSTM_BACKEND="cpu")
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    for tier, numba_expected in (("1", False), ("0", True)):
        env[cpu_entry.ENV_VAR] = tier
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env=env, timeout=300, cwd=ROOT)
        assert out.returncode == 0, out.stderr
        res = json.loads(out.stdout.strip().splitlines()[-1])
        assert res["numba"] is numba_expected and res["backend"] == "cpu"
        kernel, rk, bias = (np.asarray(w, np.float32) for w in res["w"])
        x = np.random.default_rng(0).normal(size=(2, 7, 3)).astype(np.float32)
        _close(np.asarray(res["y"]), naive.lstm(x, kernel, rk, bias)[0])


def test_threads_calling_one_layer_on_the_tier(numpy_tier):
    from concurrent.futures import ThreadPoolExecutor

    x, kernel, rk, bias, _ = _problem(B=3, T=9, D=3, U=4, seed=6)
    layer = gpulstm.LSTM(4, return_sequences=True, backend="cpu")
    layer.build(x.shape)
    layer.set_weights([kernel, rk, bias])
    ref = naive.lstm(x, kernel, rk, bias)[0]
    with ThreadPoolExecutor(4) as pool:
        outs = list(pool.map(lambda _: layer(x), range(16)))
    for out in outs:
        _close(out, ref)
    assert numpy_tier.calls == 16 and cpu_entry._spent > 0


def test_a_broken_numba_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(cpu_entry, "_cpu", None)
    monkeypatch.setattr(cpu_entry, "_NUMBA", "gpulstm.kernels.no_such_module")
    with pytest.raises(gpulstm.BackendUnavailableError, match="numba kernels cannot be imported"):
        cpu_entry.load_numba()
