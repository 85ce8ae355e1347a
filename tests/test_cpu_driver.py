"""The one-state cells' recurrence driver (kernels/cpu_driver.py): from PARALLEL_MIN_B
rows, GRU and SimpleRNN rows split over numba's threads in claimed row blocks, each
cell's own compiled ``run_parallel``, and the numbers stay the float64 reference's."""
import numpy as np
import pytest

import gpulstm
import naive
from rnn_fixtures import close


@pytest.mark.parametrize("cls", ["GRU", "SimpleRNN"])
def test_row_blocks_on_threads(monkeypatch, cls):
    import numba

    from gpulstm.kernels import cpu, cpu_entry, cpu_gru, cpu_rnn

    if numba.get_num_threads() < 2:
        pytest.skip("one numba thread")
    monkeypatch.setattr(cpu, "ROW_SPLIT_MIN_WORK", 0)
    monkeypatch.setenv(cpu_entry.ENV_VAR, "0")
    mod = cpu_gru if cls == "GRU" else cpu_rnn
    calls = []
    real = mod.run_parallel
    monkeypatch.setattr(mod, "run_parallel", lambda *a: calls.append(1) or real(*a))
    rng = np.random.default_rng(7)
    B, T, D, U = cpu.PARALLEL_MIN_B + 3, 6, 5, 7
    layer = getattr(gpulstm, cls)(U, return_sequences=True, seed=3)
    x = rng.standard_normal((B, T, D)).astype("float32")
    mask = rng.random((B, T)) > 0.2
    y = layer(x, mask=mask)
    ref = (naive.gru if cls == "GRU" else naive.simple_rnn)(x, *layer.get_weights(), mask=mask)
    close(y, ref[0])
    assert calls == [1]
    assert cpu_gru.run_parallel is not cpu_rnn.run_parallel
