"""gpulstm.info(): versions, backends, auto choice, threads, cache — and nothing compiled."""
import json
import os
import subprocess
import sys

import numpy as np

import gpulstm
from gpulstm import _info, dispatch


def test_info_reports_versions_backends_and_auto():
    import numba

    data = gpulstm.info()
    assert data["versions"]["numpy"] == np.__version__
    assert data["versions"]["numba"] == numba.__version__
    assert data["versions"]["gpulstm"] == gpulstm.__version__
    assert data["versions"]["python"] == ".".join(map(str, sys.version_info[:3]))
    assert set(data["backends"]) == set(dispatch.BACKENDS)
    for name, entry in data["backends"].items():
        ok, reason = dispatch.BACKENDS[name].availability()
        assert entry == {"available": ok, "reason": reason}
        assert isinstance(reason, str) and reason
    assert data["backends"]["cpu"]["available"] is True
    assert (data["auto"]["backend"], data["auto"]["reason"]) == dispatch.auto_choice()
    json.dumps(data)  # the CLI prints it as JSON


def test_info_threads_and_cache_follow_numba_config():
    from numba.core import config

    from gpulstm.kernels import _cache

    data = gpulstm.info()
    assert data["threading"]["num_threads"] == config.NUMBA_NUM_THREADS
    assert data["threading"]["threading_layer"] == config.THREADING_LAYER
    assert data["threading"]["layers_present"]["workqueue"] is True  # always built with numba
    assert data["cache"]["dir"] == _cache.cache_dir()
    assert data["cache"]["dir"].startswith(data["cache"]["root"])
    assert data["devices"]["cpu"]["cpu_count"] == os.cpu_count()
    assert data["devices"]["cpu"]["kernels"].startswith("float32: ")


def test_info_shows_backend_override_and_bad_value(monkeypatch):
    monkeypatch.setenv("GPULSTM_BACKEND", "cpu")
    data = gpulstm.info()
    assert data["requested"] == {"backend": "cpu", "source": "GPULSTM_BACKEND environment variable"}
    assert data["env"]["GPULSTM_BACKEND"] == "cpu"
    monkeypatch.setenv("GPULSTM_BACKEND", "cdua")
    data = gpulstm.info()  # a typo in the environment is reported, not raised
    assert data["requested"]["backend"] == "cdua"
    assert "cdua" in data["requested"]["error"]


def test_format_info_renders_nested_values():
    text = _info.format_info({"a": {"b": 1, "c": None, "d": {}}, "e": [1, 2], "f": []})
    assert text.splitlines() == ["a:", "  b: 1", "  c: -", "  d: (none)", "e: 1, 2", "f: (none)"]


_NO_COMPILE = r"""
import json, sys
import gpulstm
data = gpulstm.info()
import numba
from numba.core.registry import CPUDispatcher
compiled = []
for name, mod in list(sys.modules.items()):
    if name.startswith("gpulstm"):
        for obj in vars(mod).values():
            if isinstance(obj, CPUDispatcher) and obj.signatures:
                compiled.append(f"{name}.{obj.py_func.__name__}")
parallel = sys.modules.get("numba.np.ufunc.parallel")
print(json.dumps({"compiled": compiled, "cpu": data["backends"]["cpu"]["available"],
                  "pool": bool(parallel and parallel._is_initialized),
                  "threads": data["threading"]["num_threads"],
                  "source": data["threading"]["num_threads_source"]}))
"""


def test_info_compiles_nothing_and_starts_no_thread_pool():
    env = dict(os.environ, NUMBA_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", _NO_COMPILE], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["compiled"] == []
    assert res["pool"] is False
    assert res["cpu"] is True
    assert (res["threads"], res["source"]) == (1, "NUMBA_NUM_THREADS")
