"""gpulstm.from_torch: nn.LSTM state dicts (fixtures from torch 2.13) and live modules."""
import json
import os

import numpy as np
import pytest

import gpulstm
from gpulstm.io import ModelFileError, UnsupportedModelError, from_torch

FIX = os.path.join(os.path.dirname(__file__), "fixtures_io")
CASES = ["torch_l2_bi", "torch_l1_tm"]


def _case(name):
    z = np.load(os.path.join(FIX, name + ".npz"))
    sd = {k[len("state."):]: z[k] for k in z.files if k.startswith("state.")}
    return z, sd, json.loads(str(z["hparams"]))


def _close(a, ref):
    np.testing.assert_allclose(a, ref, rtol=0, atol=1e-5 * max(1.0, float(np.abs(ref).max())))


@pytest.mark.parametrize("name", CASES)
def test_state_dict_matches_torch_outputs(name):
    z, sd, hp = _case(name)
    model = from_torch(sd, batch_first=hp["batch_first"], return_state=True)
    y, h, c = model.predict(z["x"])
    _close(y, z["y"])
    _close(h, z["h_n"])
    _close(c, z["c_n"])
    assert model.num_layers == hp["num_layers"]
    assert model.count_params() == sum(
        v.size for k, v in sd.items() if k.startswith("weight")) + sum(
        v.size for k, v in sd.items() if k.startswith("bias_ih"))


@pytest.mark.parametrize("name", CASES)
def test_saved_files(name):
    pytest.importorskip("safetensors")
    z, _, hp = _case(name)
    y = from_torch(os.path.join(FIX, name + ".safetensors"), batch_first=hp["batch_first"]).predict(z["x"])
    _close(y, z["y"])


def test_pt_file_with_weights_only_loader():
    pytest.importorskip("torch")
    z, _, hp = _case("torch_l2_bi")
    y = from_torch(os.path.join(FIX, "torch_l2_bi.pt"), batch_first=True).predict(z["x"])
    _close(y, z["y"])


def test_prefix_and_initial_state():
    z, sd, hp = _case("torch_l1_tm")
    wrapped = {"encoder.lstm." + k: v for k, v in sd.items()}
    wrapped["head.weight"] = np.ones((2, 5), np.float32)
    model = from_torch(wrapped, return_state=True)  # batch_first defaults to False like torch
    y, h, c = model.predict(z["x"])
    _close(y, z["y"])
    # Continuing from the final state equals running the concatenated sequence.
    x2 = z["x"][:3]
    y_a, h_a, c_a = model.predict(np.concatenate([z["x"], x2]))
    y_b, h_b, c_b = model.predict(x2, initial_state=(h, c))
    _close(y_b, y_a[len(z["x"]):])
    _close(h_b, h_a)


def test_hyperparameter_mismatch_and_bad_weights():
    _, sd, _ = _case("torch_l2_bi")
    with pytest.raises(ValueError, match="hidden_size"):
        from_torch(sd, hidden_size=7)
    bad = dict(sd)
    bad["weight_hh_l1"] = bad["weight_hh_l1"][:, :3]
    with pytest.raises(ModelFileError, match="weight_hh_l1"):
        from_torch(bad)
    bad = dict(sd)
    del bad["bias_hh_l0_reverse"]
    with pytest.raises(ModelFileError, match="bias_hh_l0_reverse"):
        from_torch(bad)
    bad = dict(sd)
    bad["weight_ih_l0"] = bad["weight_ih_l0"].copy()
    bad["weight_ih_l0"][0, 0] = np.nan
    with pytest.raises(ModelFileError, match="NaN"):
        from_torch(bad)
    proj = dict(sd)
    proj["weight_hr_l0"] = np.zeros((2, 4), np.float32)
    with pytest.raises(UnsupportedModelError, match="proj_size"):
        from_torch(proj)
    with pytest.raises(ModelFileError, match="no nn.LSTM, nn.GRU or nn.RNN weights"):
        from_torch({"fc.weight": np.zeros((2, 2))})


def test_no_bias_state_dict():
    _, sd, _ = _case("torch_l1_tm")
    nob = {k: v for k, v in sd.items() if not k.startswith("bias")}
    model = from_torch(nob, batch_first=True)
    assert not model.get_layer("lstm_l0").use_bias
    assert model.count_params() == nob["weight_ih_l0"].size + nob["weight_hh_l0"].size
    x = np.random.default_rng(0).standard_normal((2, 4, 2)).astype(np.float32)
    assert model.predict(x).shape == (2, 4, 5)


def test_live_module_matches():
    torch = pytest.importorskip("torch")
    torch.manual_seed(3)
    m = torch.nn.LSTM(3, 5, num_layers=2, bidirectional=True, batch_first=True, dropout=0.3).eval()
    x = torch.randn(2, 6, 3)
    with torch.no_grad():
        y, (h, c) = m(x)
    got = from_torch(m, return_state=True).predict(x.numpy())
    for a, b in zip(got, (y, h, c)):
        _close(a, b.numpy())
    with pytest.raises(UnsupportedModelError, match="proj_size"):
        from_torch(torch.nn.LSTM(3, 5, proj_size=2))


@pytest.mark.parametrize("name", CASES)
def test_is_a_keras_functional_model(name):
    z, sd, hp = _case(name)
    model = from_torch(sd, batch_first=hp["batch_first"], return_state=True)
    assert isinstance(model, gpulstm.Model)
    # Ordinary Keras layers: LSTM per torch layer, or Bidirectional(concat) when bidirectional.
    kinds = [type(layer).__name__ for layer in model.layers]
    want = "Bidirectional" if hp["bidirectional"] else "LSTM"
    assert kinds[0] == "InputLayer" and kinds.count(want) == hp["num_layers"]
    # Keras order: per layer, [kernel, recurrent_kernel, bias] forward then reverse.
    w = model.get_weights()
    assert len(w) == 3 * hp["num_layers"] * (2 if hp["bidirectional"] else 1)
    np.testing.assert_array_equal(w[0], sd["weight_ih_l0"].T)
    np.testing.assert_array_equal(w[1], sd["weight_hh_l0"].T)
    np.testing.assert_allclose(w[2], sd["bias_ih_l0"] + sd["bias_hh_l0"], rtol=1e-6)
    if hp["bidirectional"]:
        np.testing.assert_array_equal(w[3], sd["weight_ih_l0_reverse"].T)
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert f"Total params: {model.count_params():,}" in text
    assert f"batch_first={hp['batch_first']}" in text
    # The graph itself is batch-major Keras: (B, T, dirs*H) and (B, layers*dirs, H).
    n = hp["num_layers"] * (2 if hp["bidirectional"] else 1)
    H = hp["hidden_size"]
    assert model.output_shape == [(None, None, z["y"].shape[-1]), (None, n, H), (None, n, H)]


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("batch_size", [1, 2])
def test_predict_batches_split_the_batch_axis(name, batch_size):
    # B = 3 > batch_size: with batch_first=False the batch is axis 1 of x and of y.
    z, sd, hp = _case(name)
    model = from_torch(sd, batch_first=hp["batch_first"], return_state=True)
    y, h, c = model.predict(z["x"], batch_size=batch_size)
    _close(y, z["y"])
    _close(h, z["h_n"])
    _close(c, z["c_n"])
    y1, h1, c1 = model(z["x"])
    _close(y1, z["y"])
    _close(h1, z["h_n"])
    _close(model.predict_on_batch(z["x"])[2], z["c_n"])
    only_y = from_torch(sd, batch_first=hp["batch_first"]).predict(z["x"], batch_size=batch_size)
    _close(only_y, z["y"])


def test_to_json_round_trip_is_the_batch_major_keras_model():
    z, sd, hp = _case("torch_l1_tm")
    model = from_torch(sd, return_state=True)  # batch_first=False
    plain = gpulstm.model_from_json(model.to_json())
    plain.set_weights(model.get_weights())
    assert type(plain) is gpulstm.Model
    y, h, c = plain.predict(np.swapaxes(z["x"], 0, 1), batch_size=2)
    _close(np.swapaxes(y, 0, 1), z["y"])
    _close(np.swapaxes(h, 0, 1), z["h_n"])
    _close(np.swapaxes(c, 0, 1), z["c_n"])


def test_bad_inputs_and_states_are_refused():
    z, sd, hp = _case("torch_l2_bi")
    model = from_torch(sd, batch_first=True)
    with pytest.raises(ValueError, match="F=3"):
        model.predict(z["x"][..., :2])
    with pytest.raises(ValueError, match="3-d|shape"):
        model.predict(z["x"][0])
    h0 = np.zeros((4, 3, 4), np.float32)
    with pytest.raises(ValueError, match=r"\(4, 3, 4\)"):
        model.predict(z["x"], initial_state=(h0[:2], h0))
    with pytest.raises(ValueError, match="batch_first"):
        from_torch(sd, batch_first=True).predict(np.swapaxes(z["x"], 0, 1)[..., :2])


LIVE = [  # num_layers, bidirectional, batch_first
    (1, False, True), (1, True, False), (2, False, False), (2, True, True), (3, True, False)]


@pytest.mark.parametrize("num_layers,bidirectional,batch_first", LIVE)
def test_live_torch_layouts_and_initial_state(num_layers, bidirectional, batch_first):
    torch = pytest.importorskip("torch")
    torch.manual_seed(num_layers * 2 + bidirectional)
    m = torch.nn.LSTM(3, 4, num_layers=num_layers, bidirectional=bidirectional,
                      batch_first=batch_first).eval()
    B, T, n = 5, 6, num_layers * (2 if bidirectional else 1)
    x = torch.randn((B, T, 3) if batch_first else (T, B, 3))
    h0, c0 = torch.randn(n, B, 4), torch.randn(n, B, 4)
    with torch.no_grad():
        y, (h, c) = m(x)
        y_s, (h_s, c_s) = m(x, (h0, c0))
    model = from_torch(m, return_state=True)
    assert model.batch_first == batch_first and model.num_layers == num_layers
    assert model.count_params() == sum(p.numel() for p in m.parameters()) - 4 * 4 * n
    for got, ref in zip(model.predict(x.numpy(), batch_size=2), (y, h, c)):
        _close(got, ref.numpy())
    got = model.predict(x.numpy(), batch_size=3, initial_state=(h0.numpy(), c0.numpy()))
    for a, ref in zip(got, (y_s, h_s, c_s)):
        _close(a, ref.numpy())
