"""Dispatcher rules of the "cuda" backend, checked without a GPU."""
import numpy as np
import pytest

from gpulstm import dispatch
from gpulstm._cuda_backend import CudaBackend, register


class _FakeDeviceArray:
    __cuda_array_interface__ = {"shape": (1, 1, 1), "typestr": "<f4", "data": (0, False),
                                "version": 3}


class _CpuTensorLike:
    @property
    def __cuda_array_interface__(self):
        raise AttributeError("not on a CUDA device")


@pytest.fixture
def fake_cuda(monkeypatch):
    """Swap in a "cuda" entry with a chosen availability, restoring the real one after."""
    saved = dispatch.BACKENDS.get("cuda")

    def install(ok, why, real=True):
        be = CudaBackend("cuda", "gpulstm.kernels.cuda", lambda: (ok, why), "pip install 'gpulstm[cuda12]'")
        monkeypatch.setattr(CudaBackend, "real_device", property(lambda self: real))
        dispatch.BACKENDS["cuda"] = be
        return be

    yield install
    if saved is None:
        dispatch.BACKENDS.pop("cuda", None)
    else:
        dispatch.BACKENDS["cuda"] = saved


def test_register_is_idempotent():
    a = register()
    assert register() is a and dispatch.BACKENDS["cuda"] is a
    assert a.module == "gpulstm.kernels.cuda"


def test_import_touches_neither_numba_nor_cupy():
    import subprocess
    import sys

    code = ("import sys, gpulstm, gpulstm._cuda_backend as c; c.register(); "
            "print('numba' in sys.modules, 'cupy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_device_array_detection_without_cupy():
    assert CudaBackend.is_device_array(_FakeDeviceArray())
    assert not CudaBackend.is_device_array(np.zeros((1, 1, 1)))
    assert not CudaBackend.is_device_array(_CpuTensorLike())


def test_explicit_cuda_without_device_names_the_extra(fake_cuda):
    fake_cuda(False, "CuPy is not installed")
    with pytest.raises(dispatch.BackendUnavailableError, match=r"CuPy is not installed.*gpulstm\[cuda12\]"):
        dispatch.resolve_backend("cuda")


def test_auto_prefers_working_device_for_large_numpy(fake_cuda):
    fake_cuda(True, "fake GPU")
    name, why = dispatch.auto_choice(np.zeros((8, 100, 64), np.float32))
    assert name == "cuda" and "fake GPU" in why


def test_auto_keeps_small_numpy_on_cpu_and_says_threshold(fake_cuda):
    fake_cuda(True, "fake GPU")
    name, why = dispatch.auto_choice(np.zeros((1, 5, 3), np.float32))
    assert name == "cpu" and "GPULSTM_CUDA_MIN_ELEMENTS" in why


def test_auto_picks_cuda_for_device_arrays(fake_cuda):
    fake_cuda(True, "fake GPU")
    assert dispatch.auto_choice(_FakeDeviceArray())[0] == "cuda"


def test_auto_never_picks_the_simulator(fake_cuda):
    fake_cuda(True, "numba CUDA simulator", real=False)
    name, why = dispatch.auto_choice(np.zeros((8, 100, 64), np.float32))
    assert name == "cpu"


def test_auto_without_gpu_falls_back_with_reason(fake_cuda):
    fake_cuda(False, "numba.cuda finds no CUDA driver or device")
    name, why = dispatch.auto_choice(np.zeros((8, 100, 64), np.float32))
    assert name == "cpu" and "no CUDA driver" in why


def test_cupy_without_a_device_answers_before_numba_cuda(monkeypatch):
    # a CPU machine with CuPy installed: no numba.cuda import, so the CPU backend's
    # NumPy tier keeps a fresh process free of numba
    import importlib.util
    import sys
    import types

    from gpulstm import _cuda_backend

    fake = types.ModuleType("cupy")
    fake.cuda = types.SimpleNamespace(is_available=lambda: False)
    monkeypatch.setitem(sys.modules, "cupy", fake)
    monkeypatch.delenv("NUMBA_ENABLE_CUDASIM", raising=False)
    monkeypatch.setattr(_cuda_backend, "_sim_requested", lambda: False)
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: object() if name == "cupy" else real_find_spec(name, *a))
    monkeypatch.delitem(sys.modules, "numba.cuda", raising=False)
    assert _cuda_backend._check() == (False, "CuPy finds no CUDA driver or device")
    assert "numba.cuda" not in sys.modules


def test_unavailable_backend_fails_at_construction(fake_cuda, monkeypatch):
    import os

    import gpulstm

    fake_cuda(False, "no CUDA driver")
    model_file = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures_io",
                              "seq_emb.k3.keras")
    js = gpulstm.Sequential([gpulstm.Input((5, 3)), gpulstm.LSTM(4)]).to_json()
    for build in (lambda: gpulstm.LSTM(4, backend="cuda"),
                  lambda: gpulstm.GRU(4, backend="cuda"),
                  lambda: gpulstm.Sequential([gpulstm.Input((5, 3)), gpulstm.LSTM(4)],
                                             backend="cuda"),
                  lambda: gpulstm.model_from_json(js, backend="cuda"),
                  lambda: gpulstm.load_model(model_file, backend="cuda"),
                  lambda: gpulstm.from_torch({"weight_ih_l0": np.zeros((16, 3), np.float32),
                                              "weight_hh_l0": np.zeros((16, 4), np.float32)},
                                             backend="cuda")):
        with pytest.raises(dispatch.BackendUnavailableError,
                           match=r"Received: backend='cuda'.*no CUDA driver.*gpulstm\[cuda12\]"
                                 r".*gpulstm.dask.predict"):
            build()
    for ok in (None, "auto", "cpu", "CPU"):
        gpulstm.LSTM(4, backend=ok)
    with pytest.raises(ValueError, match="Unknown backend"):
        gpulstm.LSTM(4, backend="cdua")
    # GPULSTM_BACKEND is read at every call, not at construction.
    monkeypatch.setenv("GPULSTM_BACKEND", "cuda")
    layer = gpulstm.LSTM(4)
    with pytest.raises(dispatch.BackendUnavailableError):
        layer(np.zeros((1, 2, 3), np.float32))
    fresh = gpulstm.GRU(4)
    with pytest.raises(dispatch.BackendUnavailableError):
        fresh(np.zeros((1, 2, 3), np.float32), backend="cuda")
    assert not fresh.built
