"""numba's threading layers under concurrent Python threads (issue 14, item 5).

numba's ``workqueue`` layer (the fallback where neither OpenMP nor TBB loads) is not
thread-safe: two Python threads entering parallel regions at once abort the
process.  The CPU backend makes parallel regions take turns there; ``omp`` and
``tbb`` run them side by side.  Each layer runs in its own process (a layer is
chosen once per process): two Python threads call two layers at B >= 8 (row blocks
in parallel) and B = 1 (threads sharing each step) many times and compare with one
thread's results, bit for bit.
"""
import os
import subprocess
import sys
import textwrap

import pytest

_SCRIPT = textwrap.dedent("""
    import threading, numpy as np, numba
    import gpulstm
    rng = np.random.default_rng(0)
    layers, inputs = [], []
    # row blocks on threads (>= cpu.ROW_SPLIT_MIN_WORK); threads sharing each step
    for B, T, D, U in ((16, 40, 32, 64), (1, 12, 8, 256)):
        layer = gpulstm.LSTM(U, backend="cpu")
        x = rng.normal(size=(B, T, D)).astype(np.float32)
        layer(x)
        layers.append(layer)
        inputs.append(x)
    want = [np.asarray(l(x)) for l, x in zip(layers, inputs)]
    errors = []

    def work(i):
        try:
            for _ in range(20):
                got = np.asarray(layers[i](inputs[i]))
                if not np.array_equal(got, want[i]):
                    errors.append(f"layer {i} differs")
                    return
        except Exception as exc:
            errors.append(repr(exc))

    threads = [threading.Thread(target=work, args=(i % 2,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print("LAYER", numba.threading_layer(), "ERRORS", errors)
""")


def _env(layer):
    # pip's tbb puts libtbb.so.12 in <prefix>/lib, off the loader's path
    lib = os.path.join(sys.prefix, "lib")
    path = os.environ.get("LD_LIBRARY_PATH")
    return dict(os.environ, NUMBA_THREADING_LAYER=layer, NUMBA_NUM_THREADS="2",
                GPULSTM_NUMPY_TIER="0", LD_LIBRARY_PATH=lib + (os.pathsep + path if path else ""))


def _layer_loads(layer, env):
    pool = {"omp": "omppool", "tbb": "tbbpool", "workqueue": "workqueue"}[layer]
    probe = subprocess.run([sys.executable, "-c", f"from numba.np.ufunc import {pool}"],
                           env=env, capture_output=True, timeout=120)
    return probe.returncode == 0


@pytest.mark.parametrize("layer", ["workqueue", "omp", "tbb"])
def test_concurrent_calls_under_each_threading_layer(layer):
    env = _env(layer)
    if not _layer_loads(layer, env):
        pytest.skip(f"numba's {layer!r} threading layer does not load here")
    proc = subprocess.run([sys.executable, "-c", _SCRIPT], env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"LAYER {layer} ERRORS []" in proc.stdout, proc.stdout + proc.stderr[-2000:]
