"""Bidirectional and TimeDistributed against the float64 reference."""
import numpy as np
import pytest

from gpulstm import LSTM, Bidirectional, Dense, Input, Model, TimeDistributed
from tests import naive

rng = np.random.default_rng(11)
MASK = np.array([[1, 1, 1, 0, 0], [0, 1, 1, 1, 1], [1, 0, 1, 0, 1]], bool)


def tol(ref):
    return 1e-5 * max(1.0, float(np.max(np.abs(ref))))


def _random_weights(layer):
    layer.set_weights([rng.normal(0, 0.5, w.shape).astype("float32")
                       for w in layer.get_weights()])


@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave", None])
@pytest.mark.parametrize("return_sequences", [True, False])
def test_bidirectional_matches_reference_with_mask(merge_mode, return_sequences):
    x = rng.normal(size=(3, 5, 2)).astype("float32")
    layer = Bidirectional(LSTM(3, return_sequences=return_sequences), merge_mode=merge_mode)
    layer.build((None, 5, 2))
    _random_weights(layer)
    # Keras forces zero_output_for_mask = return_sequences on both directions.
    assert layer.forward_layer.zero_output_for_mask is return_sequences
    assert layer.backward_layer.zero_output_for_mask is return_sequences
    assert layer.backward_layer.go_backwards and layer.forward_layer.name == "forward_" + \
        layer.forward_layer.name[len("forward_"):]
    w = layer.get_weights()
    y = layer(x, mask=MASK)
    ref = naive.bidirectional(x, w[:3], w[3:], mask=MASK, merge_mode=merge_mode,
                              return_sequences=return_sequences)
    ys, refs = (y, ref) if merge_mode is None else ([y], [ref])
    for a, r in zip(ys, refs):
        assert a.shape == r.shape
        assert np.max(np.abs(a - r)) <= tol(r)
    assert layer.count_params() == 2 * (4 * 3 * (2 + 3) + 12)


def test_bidirectional_backward_layer_and_states():
    fw = LSTM(2, return_state=True)
    bw = LSTM(2, return_state=True, go_backwards=True, activation="relu")
    layer = Bidirectional(fw, backward_layer=bw)
    x = rng.normal(size=(2, 4, 3)).astype("float32")
    inp = Input((4, 3))
    out = layer(inp)
    assert [t.shape for t in out] == [(None, 4)] + [(None, 2)] * 4
    _random_weights(layer)
    y, h_f, c_f, h_b, c_b = Model(inp, out).predict(x, verbose=0)
    w = layer.get_weights()
    _, last_f, hf, cf = naive.lstm(x, *w[:3])
    _, last_b, hb, cb = naive.lstm(x, *w[3:], go_backwards=True, activation="relu")
    for a, r in [(y, np.concatenate([last_f, last_b], -1)), (h_f, hf), (c_f, cf), (h_b, hb),
                 (c_b, cb)]:
        assert np.max(np.abs(a - r)) <= tol(r)
    with pytest.raises(ValueError, match="go_backwards"):
        Bidirectional(LSTM(2), backward_layer=LSTM(2))
    with pytest.raises(ValueError, match="merge mode"):
        Bidirectional(LSTM(2), merge_mode="max")


def test_time_distributed_dense():
    td = TimeDistributed(Dense(2, activation="relu"))
    x = rng.normal(size=(3, 4, 5)).astype("float32")
    y = td(x)
    k, b = td.get_weights()
    ref = naive.dense(x, k, b, "relu")
    assert y.shape == (3, 4, 2) and np.max(np.abs(y - ref)) <= tol(ref)
    assert td.count_params() == 12
    assert td.compute_output_shape((None, 4, 5)) == (None, 4, 2)
    with pytest.raises(ValueError, match="at least 3 dimensions"):
        TimeDistributed(Dense(2))(Input((5,)))
