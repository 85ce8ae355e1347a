"""Fake contenders for the benchmark machinery's tests: exact, slow, wrong, crashing, missing."""
import time

import numpy as np

from gpulstm import _cases, _measure, _peers, _race

_TIME_CALLS = _measure._time_calls  # the real one, whatever a test patched in since

class Fake:
    """A ``make_runner`` stand-in; ``order`` lists the contenders in the order they were called."""

    def __init__(self):
        self.order = []

    def __call__(self, name, case, kernel, recurrent_kernel, bias, threads):
        if name == "missing":
            raise _peers.Unavailable("pip install missing")
        if name == "nope":
            raise _peers.Unsupported("cannot express it")
        if name == "crash":
            raise RuntimeError("boom")

        def call(x, mask=None):
            self.order.append(name)
            if name == "gpulstm-slow":
                time.sleep(0.002)
            out = _cases.REFERENCES[case.cell](x, kernel, recurrent_kernel, bias, mask=mask)[:, -1]
            return out.astype(np.float32) + (1.0 if name == "wrong" else 0.0)

        return _peers.Runner(name, call, version="0")


def fake_race(monkeypatch, contenders, threads=(1,), repeats=3, passes=1, case=None, race=None):
    """``_race.race`` with its workers run in this process on fake contenders.

    Returns ``(run, samples, workers)``: samples are (contender, calls) per timed batch
    in clock order, workers the (contender, threads, env, cpus) of each worker started.
    """
    fake = Fake()
    monkeypatch.setattr(_peers, "make_runner", fake)
    samples, workers = [], []

    def spy(fn, n):
        before = len(fake.order)
        dt = _TIME_CALLS(fn, n)
        samples.append((fake.order[before], n))
        return dt

    def in_process(spec, cpus, env, timeout=None, on_rows=None):
        workers.append((spec["contender"], spec["threads"], env, cpus))
        rows = []
        _measure.measure(spec, rows.extend)
        return rows, None

    monkeypatch.setattr(_measure, "_time_calls", spy)
    monkeypatch.setattr(_race, "run_worker", in_process)
    run = (race or _race.race)([case or _cases.Case("t", 2, 6, 3, 4)], contenders, threads, repeats=repeats,
                     min_sample_s=0.0005, passes=passes, command="test")
    return run, samples, workers
