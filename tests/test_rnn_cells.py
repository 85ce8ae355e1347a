"""gpulstm.RNN over LSTMCell / GRUCell / SimpleRNNCell / StackedRNNCells against Keras 3 and
tf_keras 2 (tests/fixtures_rnn, scripts/make_rnn_fixtures.py), the LSTM / GRU / SimpleRNN
layers they route to, and the float64 references of tests/naive.py."""
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
from gpulstm.models.serialization import deserialize_layer, serialize_layer

CASES = sorted(os.path.basename(p)[:-4] for p in glob.glob(os.path.join(HERE, "*_rnn_*.npz")))


def test_fixtures_present():
    want = {"lstm", "gru", "simple", "stacked", "stacked_h0", "cells_list"}
    assert {f"{g}_rnn_{n}" for g in ("k3", "tf2") for n in want} <= set(CASES)


@pytest.mark.parametrize("name", CASES)
def test_matches_keras(name):
    d, cfg, meta = _load(name)
    layer = deserialize_layer(cfg)
    assert isinstance(layer, gpulstm.RNN)
    layer.set_weights(_weights(d))  # builds the unbuilt layer from the kernel's shape
    assert layer.count_params() == meta["count_params"]
    check_call(layer, d)


def test_nested_initial_state_as_keras3_takes_it():
    d, cfg, _ = _load("k3_rnn_stacked_h0")
    layer = deserialize_layer(cfg)
    layer.set_weights(_weights(d))
    h = [d[f"h0_{i}"] for i in range(4)]
    res = layer(d["x"], initial_state=[[h[0], h[1]], [h[2]], [h[3]]])
    for i, r in enumerate(res):
        _close(r, d[f"out_{i}"])


@pytest.mark.parametrize("gen", ["k3", "tf2"])
@pytest.mark.parametrize("name", ["lstm", "gru", "simple", "stacked"])
def test_config_round_trip(gen, name):
    _, cfg, _ = _load(f"{gen}_rnn_{name}")
    layer = deserialize_layer(cfg)
    ours = serialize_layer(layer)
    assert ours["class_name"] == "RNN"
    again = deserialize_layer(ours)
    assert again.get_config() == layer.get_config()
    theirs, mine = cfg["config"], ours["config"]
    extra = {"time_major", "zero_output_for_mask"} if gen == "tf2" else set()
    assert set(theirs) ^ set(mine) <= extra
    cells = (theirs["cell"]["config"].get("cells") or [theirs["cell"]])
    my_cells = (mine["cell"]["config"].get("cells") or [mine["cell"]])
    for c, m in zip(cells, my_cells, strict=True):
        assert c["class_name"] == m["class_name"]
        extra = {"implementation", "seed"} if gen == "tf2" else set()
        assert set(c["config"]) ^ set(m["config"]) <= extra
        assert {k: v for k, v in c["config"].items() if k in ("units", "activation")} == \
            {k: v for k, v in m["config"].items() if k in ("units", "activation")}


def test_rnn_lstm_cell_is_the_lstm_layer():
    """RNN(LSTMCell) and LSTM with the same weights give the same numbers, every flag."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 6, 4)).astype("float32")
    mask = rng.random((3, 6)) > 0.3
    h0 = [rng.standard_normal((3, 5)).astype("float32") for _ in range(2)]
    for kw in ({"return_sequences": True}, {"go_backwards": True, "return_state": True},
               {"return_sequences": True, "zero_output_for_mask": True}):
        rnn = gpulstm.RNN(gpulstm.LSTMCell(5, recurrent_activation="hard_sigmoid"), **kw)
        lstm = gpulstm.LSTM(5, recurrent_activation="hard_sigmoid", **kw)
        lstm.build((None, None, 4))
        rnn.set_weights(lstm.get_weights())
        a = rnn(x, mask=mask, initial_state=h0)
        b = lstm(x, mask=mask, initial_state=h0)
        for u, v in zip(a if isinstance(a, list) else [a], b if isinstance(b, list) else [b]):
            np.testing.assert_array_equal(u, v)


def test_stacked_cells_against_naive():
    """Stacked cells over a masked sequence, backwards: each cell's float64 reference on
    the one below's outputs (processing order, shared mask)."""
    rng = np.random.default_rng(2)
    B, T, D = 4, 7, 3
    x = rng.standard_normal((B, T, D)).astype("float32")
    mask = rng.random((B, T)) > 0.3
    mask[0, :2] = False
    layer = gpulstm.RNN([gpulstm.SimpleRNNCell(6, activation="relu"),
                         gpulstm.GRUCell(5, reset_after=False), gpulstm.LSTMCell(4)],
                        go_backwards=True, return_sequences=True, return_state=True)
    out, *states = layer(x, mask=mask)
    w = layer.get_weights()
    xr, mr = x[:, ::-1], mask[:, ::-1]
    s1, _, h1 = naive.simple_rnn(xr, *w[0:3], mask=mr, activation="relu")
    s2, _, h2 = naive.gru(s1, *w[3:6], mask=mr, reset_after=False)
    s3, _, h3, c3 = naive.lstm(s2, *w[6:9], mask=mr)
    _close(out, s3)
    for got, ref in zip(states, [h1, h2, h3, c3]):
        _close(got, ref)
    assert [s.shape for s in states] == [(B, 6), (B, 5), (B, 4), (B, 4)]
    assert layer.compute_output_shape((B, T, D)) == [(B, T, 4), (B, 6), (B, 5), (B, 4), (B, 4)]


def test_stateful_stack_and_reset_states():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 4, 3)).astype("float32")
    layer = gpulstm.RNN(gpulstm.StackedRNNCells([gpulstm.LSTMCell(3), gpulstm.GRUCell(2)]),
                        stateful=True, return_state=True)
    first = layer(x)
    second = layer(x)
    h = [np.zeros((2, 3), "f4"), np.zeros((2, 3), "f4"), np.zeros((2, 2), "f4")]
    layer.reset_states([[h[0], h[1]], [h[2]]])
    for a, b in zip(layer(x), first):
        _close(a, b)
    _close(layer(x)[0], second[0])
    with pytest.raises(ValueError, match="expects `states` to hold 3 arrays"):
        layer.reset_states([h[0]])


def test_unknown_and_custom_cells_fail_clearly():
    cfg = {"class_name": "RNN", "config": {"name": "r", "cell": {
        "module": "my_pkg", "class_name": "MinimalRNNCell", "config": {"units": 3}}}}
    with pytest.raises(ValueError, match="Unknown RNN cell class 'MinimalRNNCell'.*custom_objects"):
        deserialize_layer(cfg)
    with pytest.raises(ValueError, match="a cell written on gpulstm.Layer.*Received: cell="):
        gpulstm.RNN(object())


def test_cuda_request_refused_for_cpu_cells():
    from gpulstm.dispatch import BackendUnavailableError

    with pytest.raises(BackendUnavailableError, match="RNN"):
        gpulstm.RNN(gpulstm.GRUCell(3), backend="cuda")


def test_cell_configs_and_defaults():
    cell = gpulstm.GRUCell(4)
    cfg = cell.get_config()
    assert cfg["reset_after"] is True and cfg["name"].startswith("gru_cell")
    assert gpulstm.GRUCell.from_config(cfg).get_config() == cfg
    assert gpulstm.LSTMCell(3).state_size == [3, 3] and gpulstm.SimpleRNNCell(2).state_size == 2
    assert "recurrent_activation" not in gpulstm.SimpleRNNCell(2).get_config()
    with pytest.raises(TypeError):
        gpulstm.SimpleRNNCell(2, return_sequences=True)


def test_functional_model_with_nested_initial_state():
    """Input -> RNN(StackedRNNCells) with the cells' initial states as model inputs."""
    rng = np.random.default_rng(4)
    x = gpulstm.Input((5, 3))
    hs = [gpulstm.Input((4,)), gpulstm.Input((4,)), gpulstm.Input((2,))]
    rnn = gpulstm.RNN(gpulstm.StackedRNNCells([gpulstm.LSTMCell(4), gpulstm.SimpleRNNCell(2)]),
                      return_sequences=True)
    model = gpulstm.Model([x] + hs, rnn(x, initial_state=[[hs[0], hs[1]], [hs[2]]]))
    xv = rng.standard_normal((2, 5, 3)).astype("float32")
    hv = [rng.standard_normal((2, u)).astype("float32") for u in (4, 4, 2)]
    _close(model.predict([xv] + hv), rnn(xv, initial_state=hv))
    with pytest.raises(ValueError, match=r"shape \(batch, 2\)"):
        rnn(x, initial_state=[hs[0], hs[1], hs[0]])


def test_states_as_model_outputs_time_major_and_dropout():
    rng = np.random.default_rng(5)
    xv = rng.standard_normal((2, 5, 3)).astype("float32")
    rnn = gpulstm.RNN([gpulstm.GRUCell(4), gpulstm.LSTMCell(2)], return_state=True)
    x = gpulstm.Input((5, 3))
    model = gpulstm.Model(x, rnn(x))
    for got, ref in zip(model.predict(xv), rnn(xv), strict=True):
        _close(got, ref)
    tm = gpulstm.RNN.from_config(dict(rnn.get_config(), time_major=True))
    tm.set_weights(rnn.get_weights())
    for got, ref in zip(tm(np.swapaxes(xv, 0, 1)), rnn(xv), strict=True):
        _close(got, ref)
    drop = gpulstm.RNN(gpulstm.SimpleRNNCell(4, dropout=0.5, seed=3))
    ref = drop(xv)
    assert np.max(np.abs(drop(xv, training=True) - ref)) > 1e-3
    _close(drop(xv), ref)  # inference ignores the rate
