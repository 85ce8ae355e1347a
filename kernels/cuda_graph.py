"""The per-timestep kernel replayed from a CUDA graph (plans with ``driver="graph"``).

Where the recurrent weights do not fit on chip, the persistent kernel streams them
from L2 every step; the alternative is one fused kernel per timestep over the whole
grid.  Launched from Python that costs a launch (~6-25 us) per step, so the T - 1
launches after the first are captured once into a CUDA graph and replayed: one graph
launch per call.

- Capture runs on a private non-blocking stream (the legacy stream cannot capture);
  the graph is launched on the caller's stream, so it is ordered with the caller's
  work like any kernel.
- A graph bakes in its kernel arguments, device pointers included, so graphs are
  kept under a key holding every pointer and scalar.  CuPy's memory pool hands the
  same addresses to the same buffers call after call; a call then replays its
  graph, and a call with new addresses captures a new one (``GRAPHS_KEPT``, least
  recently used dropped first).
- Step 0 is launched directly, outside any capture: on a first call that loads the
  kernel's module, which is not a stream operation.
- The key holds the output buffers' addresses too: a caller that keeps every result
  alive gets new addresses, hence a new capture, on every call (correct, not fast).

CuPy cannot run under numba's CUDA simulator: there the caller runs the steps one
launch each (same kernels, same order), and this module is tested with a stand-in.
"""
import threading
from collections import OrderedDict

GRAPHS_KEPT = 16

_graphs = OrderedDict()
_lock = threading.Lock()
_local = threading.local()
stats = {"captured": 0, "replayed": 0}


def run_steps(cupy, external_stream, caller, key, T, launch_step):
    """Run ``launch_step(k, stream)`` for k = 0 .. T-1, in order, on ``caller``.

    Parameters
    ----------
    cupy : module
        CuPy (or a stand-in with ``cuda.Stream(non_blocking=True)``).
    external_stream : callable
        ``numba.cuda.external_stream``: a numba stream for a stream pointer.
    caller : cupy.cuda.Stream
        The stream the call is ordered on.
    key : hashable
        Everything the launches bake in: kernel, launch shape, scalars, device
        pointers, device.
    T : int
        Number of steps (T >= 1).
    launch_step : callable
        ``launch_step(k, numba_stream)`` enqueues step ``k``.
    """
    launch_step(0, external_stream(caller.ptr))
    if T == 1:
        return
    with _lock:
        graph = _graphs.get(key)
        if graph is not None:
            _graphs.move_to_end(key)
            stats["replayed"] += 1
    if graph is None:
        graph = _capture(cupy, external_stream, T, launch_step)
        with _lock:
            _graphs[key] = graph
            stats["captured"] += 1
            while len(_graphs) > GRAPHS_KEPT:
                _graphs.popitem(last=False)
    graph.launch(stream=caller)


def _capture_stream(cupy):
    """This thread's capture stream on the current device (made once per device)."""
    streams = getattr(_local, "streams", None)
    if streams is None:
        streams = _local.streams = {}
    dev = cupy.cuda.Device().id
    cs = streams.get(dev)
    if cs is None:
        cs = streams[dev] = cupy.cuda.Stream(non_blocking=True)
    return cs


def _capture(cupy, external_stream, T, launch_step):
    """Steps 1 .. T-1 captured into a graph (nothing runs yet)."""
    cs = _capture_stream(cupy)
    ns = external_stream(cs.ptr)
    cs.begin_capture()
    try:
        for k in range(1, T):
            launch_step(k, ns)
    except BaseException:
        try:
            cs.end_capture()  # leave the stream usable; the launch error is the news
        except Exception:
            pass
        raise
    return cs.end_capture()


def clear():
    """Drop every kept graph (tests; freeing device memory the graphs point at)."""
    with _lock:
        _graphs.clear()
