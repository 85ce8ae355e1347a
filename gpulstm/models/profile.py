"""Per-layer timing of model calls, for profiles (off unless a ``profile()`` is open).

>>> with profile() as rec:
...     model.predict(x)
>>> rec.rows()   # [(layer name, class, seconds, calls, notes)], slowest first

While a profile is open, ``run_graph`` times each layer call and ``note(text)``
attaches a remark (e.g. the kernel path an LSTM took) to the layer being timed.
Profiles are per process and meant for one thread: calls from other threads
while one is open are timed into it too.
"""
import threading
import time
from contextlib import contextmanager

_current = None
_layer = threading.local()


class Record:
    """Seconds and call counts per layer, plus notes."""

    def __init__(self):
        self.seconds = {}
        self.calls = {}
        self.kinds = {}
        self.notes = {}

    def add(self, layer, seconds):
        key = layer.name
        self.seconds[key] = self.seconds.get(key, 0.0) + seconds
        self.calls[key] = self.calls.get(key, 0) + 1
        self.kinds[key] = type(layer).__name__

    def note(self, key, text):
        seen = self.notes.setdefault(key, [])
        if text not in seen:
            seen.append(text)

    def rows(self):
        """``(name, class, seconds, calls, notes)`` per layer, slowest first."""
        return sorted(((k, self.kinds[k], s, self.calls[k], list(self.notes.get(k, [])))
                       for k, s in self.seconds.items()), key=lambda r: -r[2])


@contextmanager
def profile():
    """Record per-layer times of the model calls made inside the block."""
    global _current
    prev, _current = _current, Record()
    try:
        yield _current
    finally:
        _current = prev


def current():
    """The open ``Record``, or None (the fast path: one global read per layer call)."""
    return _current


def timed(rec, layer, fn, *args, **kwargs):
    """``fn(*args, **kwargs)``, its wall time added to ``layer``'s entry in ``rec``."""
    outer = getattr(_layer, "name", None)
    _layer.name = layer.name
    t0 = time.perf_counter()
    try:
        return fn(*args, **kwargs)
    finally:
        rec.add(layer, time.perf_counter() - t0)
        _layer.name = outer


def note(text):
    """Attach ``text`` to the layer being timed (no-op without an open profile)."""
    rec, name = _current, getattr(_layer, "name", None)
    if rec is not None and name is not None:
        rec.note(name, text)
