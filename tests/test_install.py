"""Install and first use (issue 14 item 8): dependencies, public names, progress bar, no SciPy."""
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import gpulstm
from gpulstm.models import batches

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS_DIR = os.path.join(ROOT, "tests")


def _pyproject():
    try:
        import tomllib
    except ImportError:  # Python 3.10
        tomllib = pytest.importorskip("tomli")
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as fh:
        return tomllib.load(fh)["project"]


def _names(reqs):
    return {r.split(">")[0].split("<")[0].split("=")[0].split("[")[0].strip() for r in reqs}


def test_core_dependencies_are_lean_and_cover_model_files():
    project = _pyproject()
    core = _names(project["dependencies"])
    extras = project["optional-dependencies"]
    assert {"numpy", "numba", "h5py", "tqdm", "rich"} <= core
    assert "scipy" not in core  # SciPy only serves one BLAS path: the "blas" extra
    assert _names(extras["blas"]) == {"scipy"}
    assert "scipy" in _names(extras["test"])
    assert {"dask", "zarr"} <= _names(extras["dask"])  # the README's Dask example reads zarr


def test_errors_and_predict_doc_are_public():
    from gpulstm.io import common

    assert gpulstm.ModelFileError is common.ModelFileError
    assert gpulstm.UnsupportedModelError is common.UnsupportedModelError
    assert {"ModelFileError", "UnsupportedModelError"} <= set(gpulstm.__all__)
    assert "batch_size" in (gpulstm.Sequential.predict.__doc__ or "")


def _small_model():
    model = gpulstm.Sequential([gpulstm.Input(shape=(3, 2)), gpulstm.LSTM(4)])
    return model, np.random.default_rng(0).random((5, 3, 2), dtype=np.float32)


def test_progress_bar_stays_on_screen(capsys):
    pytest.importorskip("tqdm")
    model, x = _small_model()
    model.predict(x, batch_size=2, verbose=1, backend="cpu")
    err = capsys.readouterr().err
    # leave=False wipes the line on close ("\r" + blanks + "\r"); Keras's bar stays.
    assert "3/3" in err.rsplit("\r", 1)[-1], repr(err)


def test_verbose_without_tqdm_warns_once(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    monkeypatch.setattr(batches, "_warned_no_tqdm", [])
    model, x = _small_model()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.predict(x, batch_size=2, verbose=1, backend="cpu")
        model.predict(x, batch_size=2, verbose=1, backend="cpu")
        model.predict(x, batch_size=2, verbose="auto", backend="cpu")
    msgs = [str(w.message) for w in caught if "tqdm" in str(w.message)]
    assert len(msgs) == 1 and "pip install tqdm" in msgs[0]


_NO_SCIPY = textwrap.dedent("""
    import sys
    sys.modules["scipy"] = None          # as if SciPy were not installed
    sys.path.insert(0, {tests!r})
    import numpy as np
    import gpulstm, naive
    from gpulstm.kernels import cpu_entry
    for dtype in (np.float32, np.float64):
        for B in (1, 16):
            rng = np.random.default_rng(B)
            x = rng.standard_normal((B, 5, 3)).astype(dtype)
            layer = gpulstm.LSTM(6, return_sequences=True, dtype=np.dtype(dtype).name)
            y = layer(x, backend="cpu")
            W, R, b = layer.get_weights()
            ref = naive.lstm(x, W, R, b)[0]
            assert y.dtype == dtype, (y.dtype, dtype)
            err = float(np.abs(y - ref).max())
            assert err <= 1e-5, (dtype, B, err)
    assert "scipy" not in [m for m, v in sys.modules.items() if v is not None]
    print("ok")
""")


def test_cpu_backend_runs_without_scipy(tmp_path):
    # SciPy is the "blas" extra: the kernels must compile and agree without it (a fresh
    # numba cache, as on a first install; about a minute of compiling on 2 cores).
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba"), GPULSTM_NUMPY_TIER="0")
    out = subprocess.run([sys.executable, "-c", _NO_SCIPY.format(tests=TESTS_DIR)],
                         capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-3000:]


def test_info_reports_the_core_dependencies():
    from importlib import metadata

    versions = gpulstm.info()["versions"]
    for name in ("h5py", "tqdm", "rich"):
        assert versions[name] == metadata.version(name)
