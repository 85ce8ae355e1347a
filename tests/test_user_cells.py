"""RNN over cells the user writes on gpulstm.Layer (issue 17: "RNN with a custom cell").

Fixtures (scripts/make_custom_fixtures.py, Keras 3 on JAX and tf_keras 2.21): a model
with ``RNN(MinimalRNNCell)`` (Keras's documented cell) and ``RNN([MemoryCell, LSTMCell],
go_backwards, return_state)`` over a masked Embedding; MemoryCell has two states of
different widths and a frozen weight listed last.  The same cells are written below
in NumPy on gpulstm.Layer and loaded through ``custom_objects``.
"""
import os

import numpy as np
import pytest

import gpulstm
import naive

HERE = os.path.join(os.path.dirname(__file__), "fixtures_custom")


def _tanh(x):
    return np.tanh(x)


class MinimalRNNCell(gpulstm.Layer):
    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.state_size = units

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units), name="kernel")
        self.recurrent_kernel = self.add_weight(shape=(self.units, self.units),
                                                name="recurrent_kernel")

    def call(self, inputs, states):
        output = inputs @ self.kernel + states[0] @ self.recurrent_kernel
        return output, [output]

    def get_config(self):
        return {**super().get_config(), "units": self.units}


class MemoryCell(gpulstm.Layer):
    def __init__(self, units, memory, **kwargs):
        super().__init__(**kwargs)
        self.units, self.memory = units, memory
        self.state_size = [units, memory]
        self.output_size = units

    def build(self, input_shape):
        self.bias = self.add_weight(shape=(self.units,), name="bias", trainable=False,
                                    initializer="zeros")
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units), name="kernel")
        self.w_m = self.add_weight(shape=(self.units, self.memory), name="w_m")
        self.w_b = self.add_weight(shape=(self.memory, self.units), name="w_b")

    def call(self, inputs, states):
        h, m = states
        m_new = _tanh(h @ self.w_m)
        h_new = _tanh(inputs @ self.kernel + m @ self.w_b + self.bias)
        return h_new, [h_new, m_new]

    def get_config(self):
        return {**super().get_config(), "units": self.units, "memory": self.memory}


CELLS = {"MinimalRNNCell": MinimalRNNCell, "MemoryCell": MemoryCell}


def _close(got, ref):
    ref = np.asarray(ref)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-5 * max(1.0, float(np.abs(ref).max())))


@pytest.mark.parametrize("name", ["k3_cells.keras", "k3_cells.h5", "tfk_cells.keras",
                                  "tfk_cells.h5"])
def test_custom_cells_match_keras(name):
    ref = np.load(os.path.join(HERE, name.split(".")[0] + ".npz"), allow_pickle=False)
    model = gpulstm.load_model(os.path.join(HERE, name), custom_objects=CELLS)
    ya, yb = model.predict([ref["x"], ref["ids"]])
    _close(ya, ref["ya"])
    _close(yb, ref["yb"])
    cell = model.get_layer("stacked").cell.cells[0]
    assert isinstance(cell, MemoryCell) and cell.built
    # Keras's weight order: the trainable ones, then the frozen bias
    assert [w.shape for w in cell.get_weights()] == [(3, 4), (4, 3), (3, 4), (4,)]
    assert model.get_layer("minimal").count_params() == 3 * 4 + 4 * 4


def test_custom_cell_refused_without_custom_objects():
    with pytest.raises(ValueError, match="(MinimalRNNCell|MemoryCell).*custom_objects"):
        gpulstm.load_model(os.path.join(HERE, "k3_cells.keras"))


def test_custom_cell_against_float64_and_json_round_trip():
    """A user cell built in code: masks, go_backwards, zero_output_for_mask, initial
    states of two widths, a config that round-trips, and states checked by width."""
    rng = np.random.default_rng(3)
    B, T, D, U, M = 3, 5, 2, 4, 3
    x = rng.normal(size=(B, T, D)).astype("float32")
    mask = rng.random((B, T)) < 0.6
    h0 = rng.normal(size=(B, U)).astype("float32")
    m0 = rng.normal(size=(B, M)).astype("float32")
    layer = gpulstm.RNN(MemoryCell(U, M), return_sequences=True, go_backwards=True,
                        zero_output_for_mask=True, return_state=True)
    layer.build((None, T, D))
    layer.set_weights([rng.normal(size=w.shape).astype("float32") for w in layer.get_weights()])
    out, h, m = layer(x, mask=mask, initial_state=[h0, m0])
    # float64 reference: the same step written out, Keras's mask rule
    kernel, w_m, w_b, bias = [w.astype(np.float64) for w in layer.get_weights()]  # frozen last
    hh, mm = h0.astype(np.float64), m0.astype(np.float64)
    prev = np.zeros((B, U))
    want = []
    for t in range(T - 1, -1, -1):
        m_new = np.tanh(hh @ w_m)
        h_new = np.tanh(x[:, t] @ kernel + mm @ w_b + bias)
        keep = mask[:, t][:, None]
        o = np.where(keep, h_new, 0.0)
        hh, mm = np.where(keep, h_new, hh), np.where(keep, m_new, mm)
        prev = o
        want.append(o)
    _close(out, np.stack(want, axis=1))
    _close(h, hh)
    _close(m, mm)
    assert prev.shape == (B, U)
    with pytest.raises(ValueError, match=r"\(3, 3\)"):
        layer(x, initial_state=[h0, h0])  # the memory state is 3 wide
    cfg = layer.get_config()
    assert cfg["cell"]["class_name"] == "MemoryCell"
    with gpulstm.utils.custom_object_scope(CELLS):
        again = gpulstm.RNN.from_config(cfg)
    again.build((None, T, D))
    again.set_weights(layer.get_weights())
    _close(again(x, mask=mask, initial_state=[h0, m0])[0], out)


def test_minimal_cell_is_a_simple_rnn_without_activation():
    """RNN(MinimalRNNCell) == SimpleRNN(activation=None, use_bias=False) (naive.simple_rnn)."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(2, 7, 3)).astype("float32")
    layer = gpulstm.RNN(MinimalRNNCell(4), return_sequences=True)
    layer.build((None, 7, 3))
    k, rk = [rng.normal(0, 0.5, w.shape).astype("float32") for w in layer.get_weights()]
    layer.set_weights([k, rk])
    seq, _, _ = naive.simple_rnn(x, k, rk, None, np.zeros((2, 4)), activation="linear")
    _close(layer(x), seq)
