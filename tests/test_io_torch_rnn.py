"""gpulstm.from_torch on nn.RNN (tanh, relu): live modules against torch, state dicts against tests/naive.py."""
import numpy as np
import pytest

import gpulstm
import naive
from gpulstm.io import from_torch
from test_io_torch import _close
from test_io_torch_gru import _state_dict


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_state_dict_matches_naive(nonlinearity):
    rng = np.random.default_rng(41)
    sd = _state_dict(rng, 3, 4, 1, 2, gates=1)
    x = rng.standard_normal((5, 2, 3)).astype(np.float32)  # batch_first=False: (T, B, F)
    model = from_torch(sd, return_state=True, nonlinearity=nonlinearity)
    assert model.mode == f"RNN_{nonlinearity.upper()}" and model.name == "torch_rnn"
    rnn = model.get_layer("bidirectional_l0").forward_layer
    assert type(rnn) is gpulstm.SimpleRNN and rnn.get_config()["activation"] == nonlinearity
    y, h = model.predict(x)
    xb, ys, hs = np.swapaxes(x, 0, 1), [], []
    for d, sfx in enumerate(("_l0", "_l0_reverse")):
        seq, _, h_d = naive.simple_rnn(xb, sd["weight_ih" + sfx].T, sd["weight_hh" + sfx].T,
                                       sd["bias_ih" + sfx].astype(np.float64) + sd["bias_hh" + sfx],
                                       activation=nonlinearity, go_backwards=d == 1)
        ys.append(seq[:, ::-1] if d else seq)
        hs.append(h_d)
    _close(y, np.swapaxes(np.concatenate(ys, axis=-1), 0, 1))
    _close(h, np.stack(hs))
    assert model.count_params() == sum(v.size for v in sd.values()) - 2 * 4  # one Keras bias per direction
    with pytest.raises(ValueError, match="Expected nonlinearity 'tanh' or 'relu'"):
        from_torch(sd, nonlinearity="sigmoid")


LIVE = [  # num_layers, bidirectional, batch_first, bias, nonlinearity
    (1, False, True, True, "tanh"), (2, True, False, False, "relu"), (2, False, True, True, "relu")]


@pytest.mark.parametrize("num_layers,bidirectional,batch_first,bias,nonlinearity", LIVE)
def test_live_torch_rnn(num_layers, bidirectional, batch_first, bias, nonlinearity):
    torch = pytest.importorskip("torch")
    torch.manual_seed(num_layers + bidirectional * 2)
    m = torch.nn.RNN(3, 4, num_layers=num_layers, bidirectional=bidirectional, batch_first=batch_first,
                     bias=bias, nonlinearity=nonlinearity).eval()
    B, T, n = 5, 6, num_layers * (2 if bidirectional else 1)
    x = torch.randn((B, T, 3) if batch_first else (T, B, 3))
    h0 = torch.randn(n, B, 4)
    with torch.no_grad():
        y_s, h_s = m(x, h0)
    model = from_torch(m, return_state=True)
    assert model.mode == m.mode
    got = model.predict(x.numpy(), batch_size=2, initial_state=h0.numpy())
    for a, ref in zip(got, (y_s, h_s)):
        _close(a, ref.numpy())
    with pytest.raises(ValueError, match=f"Expected nonlinearity='{nonlinearity}' \\(the module's\\)"):
        from_torch(m, nonlinearity="relu" if nonlinearity == "tanh" else "tanh")
    lines = []
    model.summary(print_fn=lines.append)
    assert lines[-1].startswith("Converted from torch nn.RNN: ")
