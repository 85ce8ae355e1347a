"""kernels/cuda_graph.py with a stand-in for CuPy's streams and graphs (no GPU, no numba).

The real capture runs in tests/test_cuda_gpu.py on a GPU; here: which steps run
directly, which are captured, where the graph is launched, and when a graph is reused.
"""
import pytest

from gpulstm.kernels import cuda_graph


class Graph:
    def __init__(self, steps):
        self.steps = steps
        self.launched_on = []

    def launch(self, stream=None):
        self.launched_on.append(stream.ptr)
        log.append(("graph", tuple(self.steps), stream.ptr))


class Stream:
    count = 0

    def __init__(self, non_blocking=False, ptr=None):
        Stream.count += 1
        self.ptr = ptr if ptr is not None else 1000 + Stream.count
        self.non_blocking = non_blocking
        self.capturing = None

    def begin_capture(self):
        assert self.non_blocking and self.capturing is None
        self.capturing = []

    def end_capture(self):
        steps, self.capturing = self.capturing, None
        return Graph(steps)


class FakeCupy:
    class cuda:
        Stream = Stream
        device = 0

        class Device:
            @property
            def id(self):
                return FakeCupy.cuda.device


log = []


def external_stream(ptr):
    return ptr


def launcher(fail_at=None):
    def launch_step(k, ptr):
        if k == fail_at:
            raise RuntimeError("launch failed")
        streams = getattr(cuda_graph._local, "streams", {})
        cap = next((s for s in streams.values() if s.ptr == ptr), None)
        if cap is not None and cap.capturing is not None:
            cap.capturing.append(k)  # recorded, not run
        else:
            log.append(("run", k, ptr))
    return launch_step


@pytest.fixture(autouse=True)
def fresh(monkeypatch):
    cuda_graph.clear()
    monkeypatch.setattr(cuda_graph, "_local", type(cuda_graph._local)())
    monkeypatch.setattr(cuda_graph, "stats", {"captured": 0, "replayed": 0})
    log.clear()
    yield
    cuda_graph.clear()


def test_first_step_runs_then_the_rest_is_captured_and_launched_on_the_caller():
    caller = Stream(ptr=7)
    cuda_graph.run_steps(FakeCupy, external_stream, caller, "k", 4, launcher())
    assert log == [("run", 0, 7), ("graph", (1, 2, 3), 7)]
    assert cuda_graph.stats == {"captured": 1, "replayed": 0}


def test_same_key_replays_new_key_captures():
    caller = Stream(ptr=7)
    for key in ("a", "a", "b", "a"):
        cuda_graph.run_steps(FakeCupy, external_stream, caller, key, 3, launcher())
    assert cuda_graph.stats == {"captured": 2, "replayed": 2}
    assert [e for e in log if e[0] == "run"] == [("run", 0, 7)] * 4
    assert [e for e in log if e[0] == "graph"] == [("graph", (1, 2), 7)] * 4


def test_one_step_needs_no_graph():
    cuda_graph.run_steps(FakeCupy, external_stream, Stream(ptr=3), "k", 1, launcher())
    assert log == [("run", 0, 3)] and cuda_graph.stats["captured"] == 0


def test_least_recently_used_graphs_are_dropped(monkeypatch):
    monkeypatch.setattr(cuda_graph, "GRAPHS_KEPT", 2)
    caller = Stream(ptr=7)
    for key in ("a", "b", "a", "c", "a", "b"):
        cuda_graph.run_steps(FakeCupy, external_stream, caller, key, 2, launcher())
    # "b" was the least recently used when "c" came, so it is captured again
    assert cuda_graph.stats == {"captured": 4, "replayed": 2}
    assert list(cuda_graph._graphs) == ["a", "b"]


def test_a_failed_launch_ends_the_capture_and_keeps_no_graph():
    caller = Stream(ptr=7)
    with pytest.raises(RuntimeError, match="launch failed"):
        cuda_graph.run_steps(FakeCupy, external_stream, caller, "k", 5, launcher(fail_at=3))
    assert all(s.capturing is None for s in cuda_graph._local.streams.values())  # usable
    assert not cuda_graph._graphs
    cuda_graph.run_steps(FakeCupy, external_stream, caller, "k", 5, launcher())
    assert log[-1] == ("graph", (1, 2, 3, 4), 7)


def test_each_device_captures_on_its_own_stream(monkeypatch):
    caller = Stream(ptr=7)
    for dev in (0, 1, 0):
        monkeypatch.setattr(FakeCupy.cuda, "device", dev)
        cuda_graph.run_steps(FakeCupy, external_stream, caller, ("k", dev), 3, launcher())
    streams = cuda_graph._local.streams
    assert sorted(streams) == [0, 1] and streams[0] is not streams[1]
    assert cuda_graph.stats == {"captured": 2, "replayed": 1}
