"""gpulstm.from_torch on nn.GRU: live modules against torch, state dicts against tests/naive.py."""
import numpy as np
import pytest

import gpulstm
import naive
from gpulstm.io import ModelFileError, from_torch
from test_io_torch import _close


def _state_dict(rng, D, H, num_layers, dirs, bias=True, gates=3):
    """A torch state dict of random weights (gates: 3 for nn.GRU, 1 for nn.RNN)."""
    sd = {}
    for k in range(num_layers):
        for d in range(dirs):
            sfx = f"_l{k}" + ("_reverse" if d else "")
            sd["weight_ih" + sfx] = rng.uniform(-1, 1, (gates * H, D if k == 0 else dirs * H)).astype(np.float32)
            sd["weight_hh" + sfx] = rng.uniform(-1, 1, (gates * H, H)).astype(np.float32)
            if bias:
                sd["bias_ih" + sfx] = rng.uniform(-1, 1, gates * H).astype(np.float32)
                sd["bias_hh" + sfx] = rng.uniform(-1, 1, gates * H).astype(np.float32)
    return sd


def _naive_torch_gru(sd, x, h0, dirs):
    """One torch GRU layer (batch-first x) from tests/naive.py: torch's r, z, n blocks are
    Keras's r, z, h swapped to z, r, h; torch's GRU is Keras's reset_after=True."""
    H = sd["weight_hh_l0"].shape[1]
    order = np.r_[H:2 * H, 0:H, 2 * H:3 * H]
    ys, hs = [], []
    for d in range(dirs):
        sfx = "_l0" + ("_reverse" if d else "")
        bias = np.stack([sd["bias_ih" + sfx][order], sd["bias_hh" + sfx][order]])
        seq, _, h = naive.gru(x, sd["weight_ih" + sfx][order].T, sd["weight_hh" + sfx][order].T, bias,
                              h0=h0[d], go_backwards=d == 1)
        ys.append(seq[:, ::-1] if d else seq)
        hs.append(h)
    return np.concatenate(ys, axis=-1), np.stack(hs)


def test_state_dict_matches_naive():
    rng = np.random.default_rng(21)
    sd = _state_dict(rng, 3, 4, 1, 2)
    x = rng.standard_normal((2, 5, 3)).astype(np.float32)
    h0 = rng.standard_normal((2, 2, 4)).astype(np.float32)
    model = from_torch(sd, batch_first=True, return_state=True)
    assert model.mode == "GRU" and model.name == "torch_gru"
    assert [type(layer).__name__ for layer in model.layers][:2] == ["InputLayer", "Bidirectional"]
    gru = model.layers[1].forward_layer
    assert type(gru) is gpulstm.GRU and gru.reset_after and gru.get_weights()[2].shape == (2, 12)
    y, h = model.predict(x, initial_state=h0)
    y_ref, h_ref = _naive_torch_gru(sd, x, h0, 2)
    _close(y, y_ref)
    _close(h, h_ref)
    assert model.count_params() == sum(v.size for v in sd.values())  # both biases kept, as in torch
    lines = []
    model.summary(print_fn=lines.append)
    assert lines[-1] == ("Converted from torch nn.GRU: predict takes and returns (B, T, F) (batch_first=True); "
                         "h_n is (num_layers * dirs, B, H).")
    plain = gpulstm.model_from_json(model.to_json())
    plain.set_weights(model.get_weights())
    _close(plain.predict(x)[0], model.predict(x)[0])  # batch-major Keras: x (B, T, F) here too


def test_bad_weights_and_states():
    rng = np.random.default_rng(22)
    sd = _state_dict(rng, 3, 4, 2, 1)
    bad = dict(sd, weight_hh_l0=np.zeros((20, 4), np.float32))
    with pytest.raises(ModelFileError, match=r"weight_hh_l0\]: shape \(20, 4\) is none of nn.LSTM's"):
        from_torch(bad)
    bad = dict(sd, weight_hh_l1=np.zeros((16, 4), np.float32))
    with pytest.raises(ModelFileError, match=r"weight_hh_l1\]: expected shape \(12, 4\)"):
        from_torch(bad)
    model = from_torch(sd)
    x = np.zeros((5, 2, 3), np.float32)
    with pytest.raises(ValueError, match=r"Expected initial_state=\(h_0\) of shape \(2, 2, 4\)"):
        model.predict(x, initial_state=np.zeros((1, 2, 4)))
    with pytest.raises(ValueError, match=r"initial_state=\(h_0\)"):
        model.predict(x, initial_state=(np.zeros((2, 2, 4)), np.zeros((2, 2, 4))))
    nob = {k: v for k, v in sd.items() if not k.startswith("bias")}
    assert not from_torch(nob).get_layer("gru_l0").use_bias


LIVE = [  # num_layers, bidirectional, batch_first, bias
    (1, False, True, True), (1, True, False, False), (2, True, True, True), (3, False, False, True)]


@pytest.mark.parametrize("num_layers,bidirectional,batch_first,bias", LIVE)
def test_live_torch_gru(num_layers, bidirectional, batch_first, bias):
    torch = pytest.importorskip("torch")
    torch.manual_seed(num_layers * 4 + bidirectional * 2 + bias)
    m = torch.nn.GRU(3, 4, num_layers=num_layers, bidirectional=bidirectional, batch_first=batch_first,
                     bias=bias, dropout=0.2 if num_layers > 1 else 0.0).eval()
    B, T, n = 5, 6, num_layers * (2 if bidirectional else 1)
    x = torch.randn((B, T, 3) if batch_first else (T, B, 3))
    h0 = torch.randn(n, B, 4)
    with torch.no_grad():
        y, h = m(x)
        y_s, h_s = m(x, h0)
    model = from_torch(m, return_state=True)
    assert model.batch_first == batch_first and model.num_layers == num_layers and model.mode == "GRU"
    assert model.count_params() == sum(p.numel() for p in m.parameters())
    for got, ref in zip(model.predict(x.numpy(), batch_size=2), (y, h)):
        _close(got, ref.numpy())
    got = model.predict(x.numpy(), batch_size=3, initial_state=h0.numpy())
    assert len(got) == 2
    for a, ref in zip(got, (y_s, h_s)):
        _close(a, ref.numpy())
    _close(from_torch(m.state_dict(), batch_first=batch_first).predict(x.numpy()), y.numpy())


def test_live_module_checks():
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError, match="nonlinearity is an nn.RNN setting; these weights are GRU's"):
        from_torch(torch.nn.GRU(3, 4), nonlinearity="relu")
    with pytest.raises(ValueError, match=r"Expected hidden_size=4"):
        from_torch(torch.nn.GRU(3, 4), hidden_size=5)
