"""gpulstm.from_torch: nn.LSTM state dicts (fixtures from torch 2.13) and live modules."""
import json
import os

import numpy as np
import pytest

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
    with pytest.raises(ModelFileError, match="no nn.LSTM weights"):
        from_torch({"fc.weight": np.zeros((2, 2))})


def test_no_bias_state_dict():
    _, sd, _ = _case("torch_l1_tm")
    nob = {k: v for k, v in sd.items() if not k.startswith("bias")}
    model = from_torch(nob, batch_first=True)
    assert not model.layers[0].use_bias
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
