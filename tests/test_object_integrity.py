"""A failing call leaves layers and models exactly as they were; weights go out read-only.

Issue 14, items 2-4: ``set_weights`` checks counts, shapes and dtypes of every array
before replacing any; a stateful model's states survive a failing batch; live weight
arrays are read-only (the kernels pack copies of them, so an in-place edit would reach
some paths and not others) and ``set_weights`` stores copies; complex numbers,
strings and objects are refused wherever arrays come in.
"""
import warnings

import numpy as np
import pytest

import naive
from gpulstm import (LSTM, Bidirectional, Dense, Embedding, Input, Model, Sequential,
                     TimeDistributed)

RNG = np.random.default_rng(14)
X = RNG.normal(size=(4, 3, 5)).astype("float32")


@pytest.fixture(autouse=True)
def _complex_warning_is_an_error():
    # a ComplexWarning instead of a ValueError fails pytest.raises(ValueError)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def _model(stateful=False, batch=None):
    inp = Input(batch_shape=(batch, 3, 5))
    y = LSTM(4, stateful=stateful, return_sequences=True)(inp)
    return Model(inp, Dense(2)(LSTM(3, stateful=stateful)(y)))


def _snapshot(obj):
    from gpulstm.models.atomic import stateful_leaves

    layers = obj.layers if hasattr(obj, "layers") else [obj]
    states = [[None if s is None else s.copy() for s in layer.states]
              for layer in stateful_leaves(layers)]
    return obj.get_weights(), states, getattr(obj, "built", None)


def _assert_unchanged(obj, snap):
    weights, states, built = _snapshot(obj)
    assert built == snap[2]
    assert len(weights) == len(snap[0])
    for a, b in zip(weights, snap[0]):
        np.testing.assert_array_equal(a, b)
    assert len(states) == len(snap[1])
    for got, want in zip(states, snap[1]):
        for a, b in zip(got, want):
            assert (a is None) == (b is None)
            if a is not None:
                np.testing.assert_array_equal(a, b)


def _edited(weights, bad_last):
    out = [w + 1.0 for w in weights]
    out[-1] = bad_last(out[-1])
    return out


_BAD_ARRAYS = {
    "complex": lambda w: w.astype(complex),
    "str": lambda w: w.astype(str),
    "None": lambda w: np.full(w.shape, None, dtype=object),
}


# -- item 2: no half-applied updates ---------------------------------------------------------
@pytest.mark.parametrize("bad", sorted(_BAD_ARRAYS))
def test_model_set_weights_checks_every_dtype_before_replacing_any(bad):
    inner = _model()
    outer = Sequential([inner, Dense(1)])
    outer.predict(X, verbose=0)
    for obj in (inner, outer):
        snap = _snapshot(obj)
        with pytest.raises(ValueError, match="real numbers.*Received: weight"):
            obj.set_weights(_edited(obj.get_weights(), _BAD_ARRAYS[bad]))
        _assert_unchanged(obj, snap)


def test_model_set_weights_puts_back_the_layers_set_before_a_late_failure(monkeypatch):
    model = _model()
    snap = _snapshot(model)
    last = model.layers[-1]

    def fail(weights):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(last, "set_weights", fail)
    with pytest.raises(RuntimeError, match="disk on fire"):
        model.set_weights([w + 1.0 for w in model.get_weights()])
    monkeypatch.undo()
    _assert_unchanged(model, snap)


def test_layer_set_weights_is_all_or_nothing():
    built = LSTM(4)
    built(X)
    ref_bi, ref_dense = Bidirectional(LSTM(3)), Dense(2)
    ref_bi.build((None, 3, 5))
    ref_dense.build((None, 5))
    cases = [(built, built.get_weights()), (Bidirectional(LSTM(3)), ref_bi.get_weights()),
             (Dense(2), ref_dense.get_weights())]  # the last two unbuilt
    for obj, w in cases:
        attrs = dict(obj.__dict__)
        with pytest.raises(ValueError, match="real numbers"):
            obj.set_weights(_edited(w, _BAD_ARRAYS["complex"]))
        assert obj.__dict__.keys() == attrs.keys()
        assert all(obj.__dict__[k] is attrs[k] for k in attrs)


def test_bidirectional_set_weights_leaves_an_unbuilt_forward_layer_unbuilt():
    ref = Bidirectional(LSTM(3))
    ref.build((None, 3, 5))
    w = ref.get_weights()
    w[-1] = np.zeros(5)  # the backward bias: wrong shape
    bi = Bidirectional(LSTM(3))
    with pytest.raises(ValueError, match="expected shape"):
        bi.set_weights(w)
    assert not bi.forward_layer.built and not bi.backward_layer.built


def test_stateful_model_without_a_fixed_batch_refuses_a_remainder_up_front():
    model = _model(stateful=True)
    x = RNG.normal(size=(40, 3, 5)).astype("float32")
    snap = _snapshot(model)
    with pytest.raises(ValueError, match=r"divide the number of samples.*40 samples"):
        model.predict(x, verbose=0)  # batches of 32 then 8
    _assert_unchanged(model, snap)
    model.predict(x, batch_size=8, verbose=0)  # 5 batches of 8: fine
    snap = _snapshot(model)
    with pytest.raises(ValueError, match="multiple of 8"):
        model.predict(x[:12], verbose=0)
    _assert_unchanged(model, snap)
    fresh = _model(stateful=True)
    assert fresh.predict(x, steps=1, verbose=0).shape == (32, 2)  # no remainder batch


def _nested_stateful(batch):
    inp = Input(batch_shape=(batch, 3, 5))
    inner = Model(inp, Bidirectional(LSTM(2, stateful=True))(inp))
    return Sequential([inner, Dense(2)])


@pytest.mark.parametrize("make", [_model, _nested_stateful])
def test_stateful_states_survive_a_batch_that_fails_midway(monkeypatch, make):
    model = make(stateful=True, batch=4) if make is _model else make(4)
    x = RNG.normal(size=(12, 3, 5)).astype("float32")
    model.predict(x, verbose=0)
    snap = _snapshot(model)
    assert len(snap[1]) == 2  # two stateful LSTMs, nested or not
    dense = model.layers[-1]
    real, calls = dense.call, []

    def third_fails(*args, **kwargs):
        calls.append(1)
        if len(calls) >= 3:
            raise RuntimeError("out of memory")
        return real(*args, **kwargs)

    monkeypatch.setattr(dense, "call", third_fails)
    with pytest.raises(RuntimeError, match="out of memory"):
        model.predict(x, verbose=0)  # batches 1 and 2 moved the states on
    _assert_unchanged(model, snap)
    with pytest.raises(RuntimeError, match="out of memory"):
        model(x[:4])
    _assert_unchanged(model, snap)


def test_stateful_layer_keeps_no_states_from_a_failed_first_call(monkeypatch):
    from gpulstm.kernels import cpu_entry

    layer = LSTM(4, stateful=True)
    layer(X)
    layer.reset_states()
    fresh = LSTM(4, stateful=True)
    fresh.set_weights(layer.get_weights())

    def boom(*args, **kwargs):
        raise RuntimeError("kernel failed")

    monkeypatch.setattr(cpu_entry, "lstm_forward", boom)
    for obj in (layer, fresh):
        snap = _snapshot(obj)
        with pytest.raises(RuntimeError, match="kernel failed"):
            obj(X, backend="cpu")
        _assert_unchanged(obj, snap)
    assert fresh._states is None


# -- item 3: weights go out read-only; set_weights stores copies ------------------------------
def _read_only_arrays():
    lstm = LSTM(4)
    lstm(X)
    emb = Embedding(10, 3)
    bi = Bidirectional(LSTM(2))
    bi(X)
    td = TimeDistributed(Dense(2))
    td(X)
    model = _model()
    return [lstm.kernel, lstm.recurrent_kernel, lstm.bias, *lstm.weights, *emb.weights,
            *bi.weights, *td.weights, *model.weights, *model.layers[-1].weights,
            *Sequential([model]).weights]


def test_live_weights_refuse_in_place_edits():
    arrays = _read_only_arrays()
    assert len(arrays) == 3 + 3 + 1 + 6 + 2 + 8 + 2 + 8
    for a in arrays:
        with pytest.raises(ValueError, match="read-only"):
            a[...] = 1.0
        with pytest.raises(ValueError, match="read-only"):
            a += 1.0


def test_get_weights_gives_writable_copies():
    layer = LSTM(4)
    y0 = layer(X)
    w = layer.get_weights()
    for a in w:
        a += 1.0  # no effect on the layer
    np.testing.assert_array_equal(layer(X), y0)
    assert not np.array_equal(layer.get_weights()[0], w[0])


def test_returned_states_of_a_stateful_layer_are_not_its_kept_states():
    layer = LSTM(4, stateful=True, return_state=True)
    _, h, c = layer(X)
    kept = layer.states
    h += 1.0
    c[...] = 0.0
    for got, want in zip(layer.states, kept):
        np.testing.assert_array_equal(got, want)


def test_reset_states_refuses_malformed_states():
    layer = LSTM(4, stateful=True)
    layer(X)
    snap = _snapshot(layer)
    for bad in ([np.zeros((4, 4), complex)] * 2, [np.full((4, 4), None)] * 2,
                [np.full((4, 4), "0")] * 2):
        with pytest.raises(ValueError, match=r"real numbers.*Received: `states\[0\]`"):
            layer.reset_states(bad)
    _assert_unchanged(layer, snap)


def _fresh_weights(U, D, seed):
    rng = np.random.default_rng(seed)
    return [rng.normal(0, 0.5, (D, 4 * U)).astype("float32"),
            rng.normal(0, 0.5, (U, 4 * U)).astype("float32"),
            rng.normal(0, 0.5, 4 * U).astype("float32")]


def _close(got, ref):
    tol = 1e-5 * max(1.0, float(np.abs(ref).max()))
    np.testing.assert_allclose(got, ref, rtol=0, atol=tol)


# The NumPy tier, and numba with each per-step product (GPULSTM_CPU_KERNEL forces one
# whatever this host has; see tests/test_cpu_paths.py); B picks the GEMV (1), the
# tiles or panels and their remainders, and the threaded split (16).
@pytest.mark.parametrize("tier", ["numpy", "panels16", "panels8", "tiles4x4", "tiles4x2"])
@pytest.mark.parametrize("B", [1, 2, 4, 8, 16])
def test_set_weights_after_a_call_reaches_every_cpu_path(request, monkeypatch, tier, B):
    if tier == "numpy":
        spy = request.getfixturevalue("numpy_tier")
    else:
        from gpulstm.kernels import cpu

        assert tier in cpu.KERNELS
        monkeypatch.setenv(cpu.KERNEL_ENV, tier)
    U, D, T = 8, 5, 3
    x = np.random.default_rng(B).normal(size=(B, T, D)).astype("float32")
    layer = LSTM(U, backend="cpu")
    layer(x)  # packs the first weights on the numba paths
    new = _fresh_weights(U, D, B)
    layer.set_weights(new)
    want = naive.lstm(x.astype(np.float64), *[w.astype(np.float64) for w in new])[1]
    _close(layer(x), want)
    for w in new:  # set_weights stored copies: the caller's arrays are the caller's
        w *= 3.0
    _close(layer(x), want)
    with pytest.raises(ValueError, match="read-only"):
        layer.recurrent_kernel[0, 0] = 5.0
    with pytest.raises(ValueError, match="read-only"):
        layer.weights[1][0, 0] = 5.0
    _close(layer(x), want)
    if tier == "numpy":
        assert spy.calls == 4


# -- item 4: malformed input refused ----------------------------------------------------------
_MALFORMED_CALLS = {
    "complex input": lambda obj: obj(X.astype(complex)),
    "object input with None": lambda obj: obj(np.full(X.shape, None, dtype=object)),
    "complex initial_state": lambda obj: obj(X, initial_state=[np.zeros((4, 4), complex)] * 2),
    "None initial_state": lambda obj: obj(X, initial_state=[np.full((4, 4), None)] * 2),
    "ragged initial_state": lambda obj: obj(X, initial_state=[[[0.0] * 4, [0.0]], [[0.0]]]),
    "str mask": lambda obj: obj(X, mask=np.full((4, 3), "False")),
    "object mask": lambda obj: obj(X, mask=np.full((4, 3), None)),
    "complex weights": lambda obj: obj.set_weights([w.astype(complex)
                                                    for w in _fresh_weights(4, 5, 0)]),
}


@pytest.mark.parametrize("stateful", [False, True])
@pytest.mark.parametrize("case", sorted(_MALFORMED_CALLS))
def test_lstm_refuses_malformed_arrays_and_stays_unchanged(case, stateful):
    layer = LSTM(4, stateful=stateful)
    layer(X)
    unbuilt = LSTM(4, stateful=stateful)
    for obj in (layer, unbuilt):
        snap = _snapshot(obj)
        keys = dict(obj.__dict__)
        with pytest.raises(ValueError, match=r"Received: .*(dtype|ragged)"):
            _MALFORMED_CALLS[case](obj)
        _assert_unchanged(obj, snap)
        assert obj.__dict__.keys() == keys.keys()


def test_numeric_masks_are_accepted_as_keras_does():
    layer = LSTM(4)
    mask = np.ones((4, 3), bool)
    mask[1, 2] = mask[3, 0] = False
    want = layer(X, mask=mask)
    for m in (mask.astype("int8"), mask.astype("uint8"), mask.astype("float32"), mask.tolist()):
        np.testing.assert_array_equal(layer(X, mask=m), want)


@pytest.mark.parametrize("bad", [X.astype(complex), np.full(X.shape, "1.0")])
def test_models_and_layers_refuse_complex_and_str_input(bad):
    seq = Sequential([LSTM(3), Dense(1)])
    with pytest.raises(ValueError, match=r"real numbers.*dtype=(complex|<U)"):
        seq.predict(bad, verbose=0)
    assert not seq.built and not seq.layers[0].built  # refused before building
    model = _model()
    snap = _snapshot(model)
    for call in (model, model.predict, model.predict_on_batch):
        with pytest.raises(ValueError, match=r"real numbers.*Received: input 0 of model"):
            call(bad)
    _assert_unchanged(model, snap)
    dense = Dense(2)
    with pytest.raises(ValueError, match=r"real numbers.*Received: the input of layer"):
        dense(bad)
    assert not dense.built


def test_failed_sequential_build_changes_nothing():
    first, second, third = Dense(4), LSTM(3), Dense(1)
    used = Input((3, 5))
    first(used)  # a node in another graph
    nodes = list(first._inbound_nodes)
    seq = Sequential([first, second, third])
    with pytest.raises(ValueError, match="ndim"):
        seq.predict(np.zeros((2, 5), "float32"), verbose=0)  # the LSTM needs 3-D input
    assert seq.layers == [first, second, third] and not seq.built
    assert first._inbound_nodes == nodes and not second.built
    assert seq.predict(X, verbose=0).shape == (4, 1)


@pytest.mark.parametrize("kw, match", [
    ({"batch_size": 1.5}, "batch_size=1.5"),
    ({"batch_size": 0}, "batch_size=0"),
    ({"batch_size": True}, "batch_size=True"),
    ({"batch_size": "8"}, "batch_size='8'"),
    ({"steps": 0}, "steps=0"),
    ({"steps": 2.0}, "steps=2.0"),
    ({"verbose": "yes"}, "verbose='yes'"),
    ({"verbose": 3}, "verbose=3"),
])
def test_predict_refuses_bad_arguments(kw, match):
    seq = Sequential([LSTM(3, stateful=True), Dense(1)])
    with pytest.raises(ValueError, match=match):
        seq.predict(X, **kw)
    assert not seq.built
    model = _model(stateful=True)
    snap = _snapshot(model)
    with pytest.raises(ValueError, match=match):
        model.predict(X, **kw)
    _assert_unchanged(model, snap)


def test_predict_takes_numpy_integers_and_honours_steps():
    model = _model()
    x = RNG.normal(size=(10, 3, 5)).astype("float32")
    full = model.predict(x, batch_size=np.int64(4), verbose=np.int64(0))
    assert full.shape == (10, 2)
    part = model.predict(x, batch_size=4, steps=2, verbose=0)  # Keras: 2 batches of 4
    np.testing.assert_allclose(part, full[:8], rtol=0, atol=1e-6)
    assert model.predict(x, batch_size=4, steps=9, verbose=0).shape == (10, 2)
