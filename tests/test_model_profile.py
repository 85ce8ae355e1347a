"""bench/model_profile.py names the kernel path of each LSTM call (it wraps the compiled
entry points of kernels/cpu.py: a change of their shape must fail here, not in a race)."""
import os
import sys

import numpy as np

import gpulstm
from gpulstm.kernels import cpu

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "bench"))
import model_profile  # noqa: E402


def test_profile_names_every_lstm_path(monkeypatch):
    monkeypatch.setattr(cpu, "_threads", lambda: 2)
    monkeypatch.setattr(cpu, "ROW_SPLIT_MIN_WORK", 0)  # tiny sizes on the threaded path
    model = gpulstm.Sequential([gpulstm.Input((5, 3)), gpulstm.LSTM(4, return_sequences=True),
                                gpulstm.LSTM(2)])
    x = np.random.default_rng(0).normal(size=(40, 5, 3)).astype("float32")

    def predict(xs, batch):
        return model.predict(xs, batch_size=batch, verbose=0)

    for batch, want in ((20, "row blocks over 2 threads"), (2, "1 thread")):
        prof = model_profile.run(predict, x, batch)
        paths = [p for r in prof["layers"] if r["class"] == "LSTM" for p in r["paths"]]
        assert paths and all(want in p and "not understood" not in p for p in paths), paths
        assert "LSTM" in model_profile.describe(prof)
