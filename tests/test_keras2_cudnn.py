"""Keras 2 CuDNNLSTM / CuDNNGRU files (tests/fixtures_keras2, scripts/make_keras2_fixtures.py):
configs run as LSTM / GRU(reset_after=True), weights converted as tf_keras's legacy loader
converts them (the expected numbers: tests/naive.py on tf_keras's converted weights)."""
import os

import numpy as np
import pytest

import gpulstm
from gpulstm import GRU, LSTM, Bidirectional, Dense, Input, Sequential
from gpulstm.models.cudnn import convert_layer_weights

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures_keras2")


@pytest.fixture(scope="module")
def ref():
    return dict(np.load(os.path.join(HERE, "cudnn_k215.npz"), allow_pickle=False))


def _close(out, want):
    assert np.max(np.abs(out - want)) <= 1e-5 * max(1.0, float(np.max(np.abs(want))))


def _code_model(reset_after=True):
    return Sequential([Input((5, 3)), Bidirectional(LSTM(4, return_sequences=True)),
                       GRU(3, reset_after=reset_after), Dense(2)])


def test_cudnn_model_file_loads_as_lstm_and_gru(ref):
    model = gpulstm.load_model(os.path.join(HERE, "cudnn_k215.h5"))
    gru = model.get_layer("cu_dnngru_1")
    assert type(gru) is GRU and gru.reset_after and gru.recurrent_activation == "sigmoid"
    fwd = model.get_layer("bidirectional_1").forward_layer
    assert type(fwd) is LSTM and (fwd.activation, fwd.recurrent_activation) == ("tanh", "sigmoid")
    for i, w in enumerate(model.get_weights()):  # tf_keras's converted weights
        np.testing.assert_allclose(w, ref[f"w_{i}"], rtol=0, atol=1e-7)
    _close(model.predict(ref["x"], verbose=0), ref["y"])


def test_cudnn_weights_file_into_a_model_built_in_code(ref):
    model = _code_model()
    model.load_weights(os.path.join(HERE, "cudnn_k215.weights-only.h5"))
    _close(model.predict(ref["x"], verbose=0), ref["y"])


def test_cudnn_gru_weights_refused_by_reset_before_gru_naming_cudnn():
    model = _code_model(reset_after=False)
    before = model.get_weights()
    with pytest.raises(ValueError, match=r"CuDNNGRU layer's \(bias of 6·units = 18.*reset_after=True"):
        model.load_weights(os.path.join(HERE, "cudnn_k215.weights-only.h5"))
    for a, b in zip(model.get_weights(), before):  # unchanged
        np.testing.assert_array_equal(a, b)


def test_cudnn_lstm_bias_into_a_gru_names_cudnn():
    gru = GRU(2)
    gru.build((None, 1, 3))
    w = [np.zeros((3, 6), "f"), np.zeros((2, 6), "f"), np.zeros(16, "f")]
    with pytest.raises(ValueError, match=r"CuDNNLSTM layer's \(bias of 8·units = 16"):
        convert_layer_weights(gru, w)
    lstm = LSTM(2)
    lstm.build((None, 1, 3))
    plain = [np.ones((3, 8), "f"), np.ones((2, 8), "f"), np.ones(8, "f")]
    assert all(a is b for a, b in zip(convert_layer_weights(lstm, plain), plain))
