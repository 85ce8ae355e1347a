"""Functional Model and Sequential: the seed notebook, masks, states, predict, errors."""
import threading

import numpy as np
import pytest

import gpulstm
from gpulstm import (LSTM, Dense, Embedding, Input, Model, Sequential, TimeDistributed,
                     model_from_json)
from tests import naive

rng = np.random.default_rng(3)


def tol(ref):
    return 1e-5 * max(1.0, float(np.max(np.abs(ref))))


def lines(model):
    """The seed notebook's (tf_keras's) summary lines; Keras 3's table: test_summary.py."""
    out = []
    model.summary(print_fn=out.append, style="tf_keras")
    return out


def test_seed_functional_model_summary_and_counts():
    gpulstm.layers.base.reset_names()
    inputs = Input(shape=(400, 3))
    outputs = Dense(1)(LSTM(50, activation="relu")(inputs))
    model = Model(inputs=inputs, outputs=outputs)
    assert model.count_params() == 10851 and model.output_shape == (None, 1)
    text = lines(model)
    assert text[0] == 'Model: "model"'
    assert text[2] == " Layer (type)                Output Shape              Param #   "
    assert " input_1 (InputLayer)        [(None, 400, 3)]          0         " in text
    assert " lstm (LSTM)                 (None, 50)                10800     " in text
    assert " dense (Dense)               (None, 1)                 51        " in text
    assert text[-4:-1] == ["Total params: 10,851", "Trainable params: 10,851",
                           "Non-trainable params: 0"]
    assert all(len(s) == 65 for s in text[1:-4])


@pytest.mark.parametrize("kwargs, shape, count", [
    ({}, (None, 50), 10800), ({"use_bias": False}, (None, 50), 10600),
    ({"return_sequences": True}, (None, 10, 50), 10800),
    ({"return_state": True}, [(None, 50)] * 3, 10800),
    ({"return_state": True, "return_sequences": True},
     [(None, 10, 50), (None, 50), (None, 50)], 10800)])
def test_seed_lstm_variants(kwargs, shape, count):
    inputs = Input(shape=(10, 3))
    model = Model(inputs=inputs, outputs=LSTM(50, **kwargs)(inputs))
    assert model.output_shape == shape and model.count_params() == count


def test_seed_sequential_time_distributed():
    model = Sequential()
    model.add(Input(shape=(10, 3)))
    model.add(LSTM(64, return_sequences=True, name="lstm_12"))
    model.add(TimeDistributed(Dense(2)))
    assert model.compile(optimizer="adam", loss="mse") is None
    text = lines(model)
    assert " lstm_12 (LSTM)              (None, 10, 64)            17408     " in text
    i = next(k for k, s in enumerate(text) if s.startswith(" time_distributed"))
    assert text[i] == " time_distributed (TimeDistr  (None, 10, 2)            130       "
    assert text[i + 1] == " ibuted)" + " " * 57
    assert "Total params: 17,538" in text and len(model.layers) == 2
    x = rng.normal(size=(5, 10, 3)).astype("float32")
    lstm, td = model.layers
    seq, _, _, _ = naive.lstm(x, *lstm.get_weights())
    ref = naive.dense(seq, *td.get_weights())
    y = model.predict(x, batch_size=2, verbose=0)
    assert np.max(np.abs(y - ref)) <= tol(ref)
    np.testing.assert_allclose(model(x), y, rtol=1e-5, atol=1e-6)


def test_sequential_from_list_builds_on_first_predict():
    model = Sequential([LSTM(4), Dense(2)])
    with pytest.raises(ValueError, match="not been built"):
        model.count_params()
    y = model.predict(rng.normal(size=(3, 6, 2)), verbose=0)
    assert y.shape == (3, 2) and model.count_params() == 4 * 4 * 7 + 10
    with pytest.raises(ValueError, match="single output"):
        Sequential([Input((3, 2)), LSTM(2, return_state=True)])


def test_encoder_decoder_states_and_weight_order():
    enc_in, dec_in = Input((5, 3)), Input((4, 2))
    _, h, c = LSTM(6, return_state=True, name="enc")(enc_in)
    dec = LSTM(6, return_sequences=True, name="dec")(dec_in, initial_state=[h, c])
    model = Model([enc_in, dec_in], [dec, h])
    ws = [rng.normal(0, 0.5, w.shape).astype("float32") for w in model.get_weights()]
    model.set_weights(ws)
    assert [w.shape for w in ws] == [(3, 24), (6, 24), (24,), (2, 24), (6, 24), (24,)]
    xe, xd = rng.normal(size=(3, 5, 3)), rng.normal(size=(3, 4, 2))
    y, hy = model.predict([xe, xd], verbose=0)
    _, _, he, ce = naive.lstm(xe, *ws[:3])
    seq, _, _, _ = naive.lstm(xd, *ws[3:], h0=he, c0=ce)
    assert np.max(np.abs(y - seq)) <= tol(seq) and np.max(np.abs(hy - he)) <= tol(he)
    assert model.get_layer("dec") is model.layers[3]


def test_mask_flows_from_embedding_through_stacked_lstms():
    ids = np.array([[3, 4, 0, 0], [0, 0, 2, 5], [1, 0, 7, 0], [0, 0, 0, 0]])
    inp = Input((4,), dtype="int32")
    e = Embedding(8, 3, mask_zero=True)(inp)
    s = LSTM(5, return_sequences=True)(e)
    out = Dense(2)(LSTM(4)(s))
    model = Model(inp, out)
    model.set_weights([rng.normal(0, 0.5, w.shape) for w in model.get_weights()])
    w = model.get_weights()
    x, m = naive.embedding(ids, w[0], mask_zero=True)
    seq, _, _, _ = naive.lstm(x, *w[1:4], mask=m)
    _, last, _, _ = naive.lstm(seq, *w[4:7], mask=m)
    ref = naive.dense(last, *w[7:9])
    y = model.predict(ids, verbose=0)
    assert np.max(np.abs(y - ref)) <= tol(ref)


def test_json_round_trip_and_keras2_dialect():
    inp = Input((4, 2), name="x")
    model = Model(inp, Dense(3, name="d")(LSTM(2, recurrent_activation="hard_sigmoid",
                                                 name="l")(inp)), name="m")
    model.set_weights([rng.normal(0, 1, w.shape) for w in model.get_weights()])
    x = rng.normal(size=(2, 4, 2))
    clone = model_from_json(model.to_json())
    clone.set_weights(model.get_weights())
    assert np.array_equal(clone.predict(x, verbose=0), model.predict(x, verbose=0))
    # tf_keras 2 dialect: batch_input_shape, old inbound_nodes, time_major, keras_version.
    cfg = {"class_name": "Functional", "keras_version": "2.15.0", "config": {
        "name": "m", "layers": [
            {"class_name": "InputLayer", "name": "x", "inbound_nodes": [],
             "config": {"batch_input_shape": [None, 4, 2], "dtype": "float32", "name": "x"}},
            {"class_name": "LSTM", "name": "l", "inbound_nodes": [[["x", 0, 0, {}]]],
             "config": {"name": "l", "units": 2, "recurrent_activation": "hard_sigmoid",
                        "time_major": False, "implementation": 2, "dtype": "float32"}},
            {"class_name": "Dense", "name": "d", "inbound_nodes": [[["l", 0, 0, {}]]],
             "config": {"name": "d", "units": 3, "activation": "linear",
                        "activity_regularizer": None}}],
        "input_layers": [["x", 0, 0]], "output_layers": [["d", 0, 0]]}}
    import json
    k2 = model_from_json(json.dumps(cfg))
    k2.set_weights(model.get_weights())
    w = model.get_weights()
    _, last, _, _ = naive.lstm(x, *w[:3], recurrent_activation="hard_sigmoid",
                               hard_sigmoid="keras2")
    ref = naive.dense(last, *w[3:])
    assert np.max(np.abs(k2.predict(x, verbose=0) - ref)) <= tol(ref)
    assert json.loads(k2.to_json())["keras_version"] == "2.15.0"


def test_bad_configs_are_refused_by_name():
    import json
    lam = {"class_name": "Sequential", "config": {"layers": [
        {"class_name": "InputLayer", "config": {"batch_shape": [None, 3]}},
        {"class_name": "Lambda", "config": {"name": "evil", "function": "..."}}]}}
    with pytest.raises(ValueError, match="'evil' is a Lambda.*never executes"):
        model_from_json(json.dumps(lam))
    lam["config"]["layers"][1] = {"class_name": "Conv2DTranspose", "config": {"name": "g"}}
    with pytest.raises(ValueError,
                       match="Unknown layer class 'Conv2DTranspose'.*Bidirectional, Concat"):
        model_from_json(json.dumps(lam))


def test_shape_mismatch_at_build_names_both_layers():
    dense = Dense(2, name="head")
    dense(Input((8,)))
    other = Dense(5, name="body")(Input((3,)))
    with pytest.raises(ValueError, match="'head'.*value 8.*from layer 'body'"):
        dense(other)
    with pytest.raises(ValueError, match="ndim=3.*layer 'feat'"):
        LSTM(2)(Dense(4, name="feat")(Input((3,))))


def test_predict_threads_batches_and_stateful_batch():
    inp = Input((5, 2))
    model = Model(inp, LSTM(3)(inp))
    x = rng.normal(size=(40, 5, 2)).astype("float32")
    ref = model.predict(x, batch_size=40, verbose=0)
    np.testing.assert_allclose(model.predict(x, batch_size=7, verbose=0), ref, rtol=1e-5, atol=1e-6)
    results = [None] * 4

    def work(k):
        results[k] = model.predict(x[k * 10:(k + 1) * 10], batch_size=3, verbose=0)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    np.testing.assert_allclose(np.concatenate(results), ref, rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="expected shape"):
        model.predict(x[:, :, :1], verbose=0)
    s_in = Input(batch_shape=(4, 5, 2))
    stateful = Model(s_in, LSTM(3, stateful=True)(s_in))
    with pytest.raises(ValueError, match="built for batch size 4"):
        stateful.predict(x[:6], verbose=0)
    a = stateful.predict(x[:4], verbose=0)
    b = stateful.predict(x[:4], verbose=0)
    stateful.reset_states()
    assert not np.allclose(a, b) and np.allclose(stateful.predict(x[:4], verbose=0), a)


def test_plot_model_dot_and_missing_graphviz(tmp_path):
    inp = Input((5, 2))
    model = Model(inp, Dense(1)(LSTM(3)(inp)))
    path = gpulstm.utils.plot_model(model, to_file=str(tmp_path / "m.dot"))
    dot = open(path).read()
    assert "lstm" in dot and "->" in dot and "(None, 3)" in dot
    try:
        import graphviz  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="graphviz"):
            gpulstm.utils.plot_model(model, to_file=str(tmp_path / "m.png"))
