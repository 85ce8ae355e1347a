"""Model-path shortcuts stay exact: Dense on every step as one GEMM, Embedding -> LSTM
as a gather from a cached projected table (invalidated on any weight change)."""
import numpy as np
import pytest

import gpulstm
import naive
from gpulstm.layers import embedded


def _tol(ref):
    return 1e-5 * max(1.0, float(np.max(np.abs(ref))))


def _softmax64(y):
    e = np.exp(y - y.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@pytest.mark.parametrize("activation", ["softmax", "relu", None])
def test_dense_on_every_step(activation):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 7, 12)).astype(np.float32)
    layer = gpulstm.Dense(9, activation=activation)
    layer.build((None, 7, 12))
    w = [rng.standard_normal(a.shape).astype(np.float32) for a in layer.get_weights()]
    layer.set_weights(w)
    y = layer(x)
    if activation == "softmax":
        ref = _softmax64(naive.dense(x, *w))
    else:
        ref = naive.dense(x, *w, activation=activation)
    assert y.shape == (5, 7, 9) and y.dtype == np.float32
    assert np.max(np.abs(y - ref)) <= _tol(ref)
    y2 = layer(x[:, ::2])  # non-contiguous input
    assert np.max(np.abs(y2 - ref[:, ::2])) <= _tol(ref)


def _emb_model(mask_zero, vocab=50, E=6, U=5):
    inp = gpulstm.Input((9,), dtype="int32")
    emb = gpulstm.Embedding(vocab, E, mask_zero=mask_zero)
    lstm = gpulstm.LSTM(U, return_sequences=True)
    model = gpulstm.Model(inp, lstm(emb(inp)))
    _randomise(model, 1)
    return model, emb, lstm


def _randomise(layer_or_model, seed):
    rng = np.random.default_rng(seed)
    layer_or_model.set_weights([rng.uniform(-0.6, 0.6, w.shape).astype(np.float32)
                                for w in layer_or_model.get_weights()])


def _ids(mask_zero, vocab=50):
    rng = np.random.default_rng(7)
    ids = rng.integers(1, vocab, (4, 9)).astype(np.int32)
    if mask_zero:
        ids[0, 6:] = 0  # right padding
        ids[1, :2] = 0  # left padding
        ids[2, 4] = 0  # a hole
    return ids


def _reference(emb, lstm, ids):
    x, mask = naive.embedding(ids, emb.get_weights()[0], emb.mask_zero)
    return naive.lstm(x, *lstm.get_weights(), mask=mask)[0]


@pytest.fixture(autouse=True)
def _narrow_tables(monkeypatch):
    """The models here are tiny (E = 6): let their tables through MIN_EMBED_DIM."""
    monkeypatch.setattr(embedded, "MIN_EMBED_DIM", 1)


@pytest.fixture
def table_calls(monkeypatch):
    calls = []
    real = embedded.projected_table

    def spy(emb, lstm):
        table = real(emb, lstm)
        calls.append(table is not None)
        return table

    monkeypatch.setattr(embedded, "projected_table", spy)
    return calls


@pytest.mark.parametrize("mask_zero", [False, True])
def test_embedding_lstm_by_table_matches_reference(mask_zero, table_calls):
    model, emb, lstm = _emb_model(mask_zero)
    ids = _ids(mask_zero)
    y, ref = model.predict(ids, verbose=0), _reference(emb, lstm, ids)
    assert table_calls and all(table_calls)  # the table path ran
    assert np.max(np.abs(y - ref)) <= _tol(ref)
    table = lstm._table_cache[2]
    assert table.shape == (50, 20) and not table.flags.writeable


@pytest.mark.parametrize("which", ["embedding", "lstm", "model"])
def test_table_follows_every_weight_change(which):
    model, emb, lstm = _emb_model(True)
    ids = _ids(True)
    model.predict(ids, verbose=0)
    first = lstm._table_cache[2]
    _randomise({"embedding": emb, "lstm": lstm, "model": model}[which], 2)
    y, ref = model.predict(ids, verbose=0), _reference(emb, lstm, ids)
    assert lstm._table_cache[2] is not first
    assert np.max(np.abs(y - ref)) <= _tol(ref)


def test_over_the_limit_falls_back_to_the_gemm(monkeypatch, table_calls):
    monkeypatch.setattr(embedded, "MAX_TABLE_BYTES", 50 * 20 * 4 - 1)
    model, emb, lstm = _emb_model(True)
    ids = _ids(True)
    y, ref = model.predict(ids, verbose=0), _reference(emb, lstm, ids)
    assert table_calls == [False]
    assert np.max(np.abs(y - ref)) <= _tol(ref)


def test_narrow_embedding_falls_back_to_the_gemm(monkeypatch, table_calls):
    monkeypatch.setattr(embedded, "MIN_EMBED_DIM", 7)  # E = 6: the GEMM pays more
    model, emb, lstm = _emb_model(True)
    ids = _ids(True)
    y, ref = model.predict(ids, verbose=0), _reference(emb, lstm, ids)
    assert table_calls == [False]
    assert np.max(np.abs(y - ref)) <= _tol(ref)


def test_training_dropout_and_float_ids_take_the_plain_path(table_calls):
    inp = gpulstm.Input((9,))
    emb = gpulstm.Embedding(50, 6)
    lstm = gpulstm.LSTM(5, dropout=0.5)
    model = gpulstm.Model(inp, lstm(emb(inp)))
    ids = _ids(False).astype(np.float32)
    y = model.predict(ids, verbose=0)  # float ids: the Embedding converts, no table
    ref = naive.lstm(naive.embedding(ids.astype(int), emb.get_weights()[0])[0],
                     *lstm.get_weights())[1]
    assert not table_calls
    assert np.max(np.abs(y - ref)) <= _tol(ref)
    model(ids.astype(np.int32), training=True)  # dropout masks: the layer's own path
    assert not table_calls


@pytest.mark.parametrize("return_sequences", [False, True])
def test_embedding_bidirectional_by_tables(return_sequences, table_calls):
    inp = gpulstm.Input((9,), dtype="int32")
    emb = gpulstm.Embedding(50, 6, mask_zero=True)
    bi = gpulstm.Bidirectional(gpulstm.LSTM(5, return_sequences=return_sequences))
    model = gpulstm.Model(inp, bi(emb(inp)))
    _randomise(model, 3)
    ids = _ids(True)
    y = model.predict(ids, verbose=0)
    x, mask = naive.embedding(ids, emb.get_weights()[0], True)
    ws = bi.get_weights()
    ref = naive.bidirectional(x, ws[:3], ws[3:], mask=mask, return_sequences=return_sequences)
    assert table_calls == [True, True]  # one table per direction
    assert np.max(np.abs(y - ref)) <= _tol(ref)


class _FakeBlas:
    def __init__(self):
        self.num_threads, self.seen = 2, []

    def set_num_threads(self, n):
        self.num_threads = n


def test_predict_runs_numpy_blas_on_one_thread(monkeypatch):
    from gpulstm.models import _blas

    lib = _FakeBlas()
    monkeypatch.setattr(_blas, "_blas_libs", lambda: [lib])
    inp = gpulstm.Input((4, 3))
    dense = gpulstm.Dense(2)
    model = gpulstm.Model(inp, dense(gpulstm.LSTM(5, return_sequences=True)(inp)))
    call = dense.call

    def spy(*a, **k):
        lib.seen.append(lib.num_threads)
        return call(*a, **k)

    monkeypatch.setattr(dense, "call", spy)
    x = np.zeros((5, 4, 3), np.float32)
    model.predict(x, batch_size=2, verbose=0, backend="cpu")
    assert lib.seen == [1, 1, 1] and lib.num_threads == 2  # restored after
    model(x)  # a single call leaves BLAS alone
    assert lib.seen[-1] == 2
    monkeypatch.setattr(dense, "call", lambda *a, **k: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        model.predict(x, verbose=0)
    assert lib.num_threads == 2
