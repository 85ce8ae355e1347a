"""Python threads sharing one layer / model: concurrent where nothing shared changes."""
import threading

import numpy as np
import pytest

import gpulstm
from gpulstm.dispatch import get_backend
from gpulstm.layers import lstm as lstm_mod


def _model(stateful=False):
    rng = np.random.default_rng(0)
    batch = 4 if stateful else None
    inp = gpulstm.Input(batch_shape=(batch, 50, 32))
    lstm = gpulstm.LSTM(64, stateful=stateful)
    model = gpulstm.Model(inp, gpulstm.Dense(3)(lstm(inp)))
    model.set_weights([rng.standard_normal(w.shape).astype(np.float32) * 0.2
                       for w in model.get_weights()])
    return model, lstm


def test_two_threads_give_bit_identical_results():
    model, _ = _model()
    rng = np.random.default_rng(1)
    xs = [rng.standard_normal((4, 50, 32)).astype(np.float32) for _ in range(6)]
    ref = [model.predict(x, verbose=0) for x in xs]
    errors, start = [], threading.Barrier(2)

    def worker(k):
        start.wait()
        for i in range(30):
            j = (i + k) % len(xs)
            if not np.array_equal(model.predict(xs[j], verbose=0), ref[j]):
                errors.append((k, j))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


@pytest.fixture
def meeting_backend(monkeypatch):
    """A CPU backend whose lstm_forward waits until two calls are inside it at once."""
    be, name, extra = get_backend("cpu", np.zeros(1))
    meet = threading.Barrier(2, timeout=3.0)

    class Meeting:
        prepare = staticmethod(be.prepare)

        @staticmethod
        def lstm_forward(*args, **kwargs):
            meet.wait()
            return be.lstm_forward(*args, **kwargs)

    monkeypatch.setattr(lstm_mod, "get_backend", lambda *a: (Meeting, name, extra))
    return meet


def _two_calls(layer, x):
    outs, errs = [None, None], []

    def run(k):
        try:
            outs[k] = layer(x)
        except threading.BrokenBarrierError as e:
            errs.append(e)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outs, errs


def test_non_stateful_calls_are_inside_the_kernel_together(meeting_backend):
    _, lstm = _model()
    x = np.random.default_rng(2).standard_normal((4, 50, 32)).astype(np.float32)
    outs, errs = _two_calls(lstm, x)
    assert not errs  # the layer's lock did not serialise the two calls
    assert np.array_equal(outs[0], outs[1])


def test_stateful_calls_stay_one_at_a_time(meeting_backend):
    meeting_backend._timeout = 0.3
    _, lstm = _model(stateful=True)
    x = np.random.default_rng(3).standard_normal((4, 50, 32)).astype(np.float32)
    outs, errs = _two_calls(lstm, x)
    assert errs  # the first call waited alone: the second could not enter
