"""Models written by real Keras 3 (tests/fixtures_models, see make_fixtures.py):
``model_from_json`` + ``set_weights`` + ``predict`` must give Keras's outputs, and the
same models built with gpulstm's API (masks propagated implicitly) must too."""
import glob
import os

import numpy as np
import pytest

from gpulstm import (LSTM, Bidirectional, Dense, Dropout, Embedding, Input, Masking, Model,
                     TimeDistributed, add, concatenate, model_from_json)

HERE = os.path.join(os.path.dirname(__file__), "fixtures_models")
FILES = sorted(glob.glob(os.path.join(HERE, "*.npz")))


def _load(path):
    z = np.load(path)
    keys = sorted(z.files)
    pick = [[z[k] for k in keys if k.startswith(p)] for p in ("w_", "x_", "y_")]
    return str(z["config_json"]), *pick


def _check(model, ws, xs, ys):
    model.set_weights(ws)
    out = model.predict(xs if len(xs) > 1 else xs[0], verbose=0)
    out = out if isinstance(out, list) else [out]
    assert len(out) == len(ys)
    for a, r in zip(out, ys):
        assert a.shape == r.shape
        assert np.max(np.abs(a - r)) <= 1e-5 * max(1.0, float(np.max(np.abs(r))))


@pytest.mark.parametrize("path", FILES, ids=os.path.basename)
def test_keras3_json_reproduces_keras_predict(path):
    cfg, ws, xs, ys = _load(path)
    _check(model_from_json(cfg), ws, xs, ys)


@pytest.mark.parametrize("path", FILES, ids=os.path.basename)
def test_keras3_json_on_the_numpy_tier(path, numpy_tier):
    # the same models on the CPU backend's NumPy tier (a fresh process's first calls)
    test_keras3_json_reproduces_keras_predict(path)
    assert numpy_tier.calls >= 2


def _bidir_mask():
    i = Input((7,), dtype="int32")
    e = Embedding(10, 4, mask_zero=True)(i)
    outs = [Bidirectional(LSTM(3, return_sequences=True), merge_mode=m)(e)
            for m in ("concat", "sum", "mul", "ave")]
    b_none = Bidirectional(LSTM(3), merge_mode=None)(e)
    b_bw = Bidirectional(LSTM(3, return_sequences=True),
                         backward_layer=LSTM(3, return_sequences=True, go_backwards=True,
                                             activation="relu"))(e)
    return Model(i, [LSTM(5)(concatenate(outs)), concatenate(b_none), b_bw])


def _encdec():
    enc_in, dec_in = Input((5, 3)), Input((4, 2))
    _, h, c = LSTM(6, return_state=True)(enc_in)
    d = LSTM(6, return_sequences=True)(dec_in, initial_state=[h, c])
    return Model([enc_in, dec_in], [TimeDistributed(Dense(2, activation="tanh"))(d),
                                    add([h, c])])


def _masking_state():
    m_in = Input((6, 3))
    seq, hh, cc = LSTM(4, return_sequences=True, return_state=True)(
        Dropout(0.5)(Masking(0.0)(m_in)))
    td = TimeDistributed(Dense(3, activation="softmax"))(seq)
    return Model(m_in, [LSTM(2, go_backwards=True)(td), Dense(3, activation="gelu")(hh),
                        cc, td])


@pytest.mark.parametrize("name, build", [("k3_bidir_mask", _bidir_mask),
                                         ("k3_encdec", _encdec),
                                         ("k3_masking_state", _masking_state)])
def test_same_models_built_with_gpulstm_api(name, build):
    _, ws, xs, ys = _load(os.path.join(HERE, f"{name}.npz"))
    _check(build(), ws, xs, ys)
