"""Device-resident models on the CUDA backend, checked without a GPU or CuPy.

``Dev`` stands in for ``cupy.ndarray`` as strictly as CuPy is: ``__array__`` raises
TypeError (CuPy refuses implicit host conversion), arithmetic with a NumPy array
raises TypeError, NumPy functions cannot take it.  ``fake_cupy`` implements only the
CuPy functions the layers call (each exists in CuPy with NumPy's semantics), delegates
to NumPy on the wrapped data, and counts host<->device copies.  Installed as
``sys.modules["cupy"]``, it makes gpulstm's real array-module lookup resolve ``Dev``
to it.  A layer that calls anything else, or converts to host, fails here.
"""
import os
import sys
import types

import numpy as np
import pytest

import gpulstm
from gpulstm import (LSTM, Bidirectional, Dense, Dropout, Embedding, Input, Masking, Model,
                     Sequential, TimeDistributed, _xp, dispatch)
from gpulstm._cuda_backend import CudaBackend
from gpulstm.kernels import array_activations
from gpulstm.layers.merge import Add, Concatenate, add, concatenate
from gpulstm.layers.reshaping import Reshape

COUNTS = {"h2d": 0, "d2h": 0, "scalar": 0}


def _strict(a):
    if isinstance(a, Dev):
        return a._a
    if isinstance(a, np.ndarray):
        raise TypeError("Unsupported type <class 'numpy.ndarray'> (a host array on the device)")
    if isinstance(a, (list, tuple)):
        return type(a)(_strict(v) for v in a)
    return a


def _wrap(r):
    if isinstance(r, np.ndarray):
        return Dev(r)
    if isinstance(r, np.generic):  # CuPy reductions return 0-d arrays, not scalars
        return Dev(np.asarray(r))
    return r


class Dev:
    """A stand-in ``cupy.ndarray`` around a NumPy array."""

    __array_ufunc__ = None  # NumPy operators defer to ours, which refuse host arrays

    def __init__(self, a):
        assert isinstance(a, np.ndarray)
        self._a = a

    def __array__(self, *args, **kwargs):
        raise TypeError("Implicit conversion to a NumPy array is not allowed. "
                        "Please use `.get()` to construct a NumPy array explicitly.")

    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    nbytes = property(lambda self: self._a.nbytes)

    def __len__(self):
        return len(self._a)

    def __getitem__(self, key):
        return _wrap(self._a[_strict(key)])

    def _scalar(self):
        COUNTS["scalar"] += 1
        return self._a.item()

    def __bool__(self):
        return bool(self._scalar())

    def __int__(self):
        return int(self._scalar())

    def __float__(self):
        return float(self._scalar())

    def __repr__(self):
        return f"Dev(shape={self.shape}, dtype={self.dtype})"


def _method(name):
    def m(self, *args, **kwargs):
        args = [_strict(a) for a in args]
        return _wrap(getattr(self._a, name)(*args, **{k: _strict(v) for k, v in kwargs.items()}))
    return m


for _name in ("reshape", "astype", "any", "all", "round", "min", "max", "copy"):
    setattr(Dev, _name, _method(_name))
for _op in ("add", "sub", "mul", "truediv", "matmul", "lt", "le", "gt", "ge", "eq", "ne",
            "or", "and"):
    setattr(Dev, f"__{_op}__", _method(f"__{_op}__"))
    if _op in ("add", "sub", "mul", "truediv", "matmul", "or", "and"):
        setattr(Dev, f"__r{_op}__", _method(f"__r{_op}__"))
Dev.__neg__ = _method("__neg__")
Dev.__invert__ = _method("__invert__")
Dev.__hash__ = object.__hash__


def _fn(np_fn):
    def f(*args, **kwargs):
        args = [_strict(a) for a in args]
        return _wrap(np_fn(*args, **{k: _strict(v) for k, v in kwargs.items()}))
    return f


def _asarray(a, dtype=None):
    if isinstance(a, Dev):  # like cupy.asarray: the same array when nothing changes
        return a if dtype is None or np.dtype(dtype) == a.dtype else Dev(a._a.astype(dtype))
    COUNTS["h2d"] += 1
    return Dev(np.array(a, dtype=dtype, copy=True))


def _asnumpy(a):
    assert isinstance(a, Dev), "asnumpy of a host array"
    COUNTS["d2h"] += 1
    return a._a.copy()


# Exactly the CuPy functions the device path calls (each exists in CuPy >= 13).
CUPY_FUNCTIONS = ("ascontiguousarray", "zeros", "ones", "empty", "where", "exp", "abs", "tanh",
                  "log", "expm1", "logaddexp", "minimum", "maximum", "clip", "max", "sum",
                  "concatenate", "broadcast_to", "swapaxes",
                  # Keras 3's mask ops in functional configs (gpulstm.models.ops)
                  "not_equal", "equal", "logical_or", "logical_and", "logical_not",
                  "expand_dims", "squeeze", "zeros_like", "ones_like", "any", "all")


def _fake_modules():
    cp = types.ModuleType("cupy")
    cp.ndarray = Dev
    cp.asarray, cp.asnumpy = _asarray, _asnumpy
    for name in CUPY_FUNCTIONS:
        setattr(cp, name, _fn(getattr(np, name)))
    special = types.ModuleType("cupyx.scipy.special")
    special.erf = _fn(array_activations._np_erf)  # the host reference itself: numbers must match
    scipy = types.ModuleType("cupyx.scipy")
    scipy.special = special
    cupyx = types.ModuleType("cupyx")
    cupyx.scipy = scipy
    return {"cupy": cp, "cupyx": cupyx, "cupyx.scipy": scipy, "cupyx.scipy.special": special}


@pytest.fixture
def fake_cupy(monkeypatch):
    mods = _fake_modules()
    for name, mod in mods.items():
        monkeypatch.setitem(sys.modules, name, mod)
    monkeypatch.delenv(dispatch.ENV_VAR, raising=False)  # "auto" must decide here
    for k in COUNTS:
        COUNTS[k] = 0
    return mods["cupy"]


@pytest.fixture
def fake_cuda(fake_cupy, monkeypatch):
    """A "cuda" backend whose LSTM runs the CPU kernel on unwrapped device arrays."""
    cpu = dispatch.BACKENDS["cpu"].load()

    def lstm_forward(x, kernel, rk, bias, h0, c0, mask, *, x_proj=None, rec_masks=None,
                     **kw):
        device = isinstance(x, Dev)
        if device:  # everything the layer passes must already be on the device
            for a in (h0, c0, mask, x_proj, rec_masks):
                assert a is None or isinstance(a, Dev), f"host array {type(a)} to the kernel"
        host = [a._a if isinstance(a, Dev) else a for a in (x, h0, c0, mask, x_proj, rec_masks)]
        x, h0, c0, mask, x_proj, rec_masks = host
        out = cpu.lstm_forward(x, kernel, rk, bias, h0, c0, mask, x_proj=x_proj,
                               rec_masks=rec_masks, **kw)
        return tuple(Dev(np.ascontiguousarray(o)) for o in out) if device else out

    entry = CudaBackend("cuda", "unused", lambda: (True, "fake device"), "n/a")
    entry._module = types.SimpleNamespace(lstm_forward=lstm_forward, prepare=cpu.prepare,
                                          array_module=_xp.array_module)
    monkeypatch.setattr(CudaBackend, "real_device", property(lambda self: True))
    monkeypatch.setitem(dispatch.BACKENDS, "cuda", entry)
    return fake_cupy


rng = np.random.default_rng(11)


def _same(dev_out, host_out):
    assert isinstance(dev_out, Dev), f"expected a device array, got {type(dev_out)}"
    np.testing.assert_array_equal(dev_out._a, host_out)


# -- the fake itself is as strict as CuPy ------------------------------------------------
def test_fake_refuses_host_conversion_and_mixing(fake_cupy):
    d = Dev(np.ones((2, 3), np.float32))
    with pytest.raises(TypeError):
        np.asarray(d)
    with pytest.raises(TypeError):
        d + np.ones((2, 3), np.float32)
    with pytest.raises(TypeError):
        np.ones((2, 3), np.float32) @ Dev(np.ones((3, 1), np.float32))
    assert _xp.array_module(d) is fake_cupy and _xp.array_module(d._a) is np
    assert _xp.backend_module("cpu") is np


# -- layers -----------------------------------------------------------------------------
@pytest.mark.parametrize("activation", gpulstm.activations.SUPPORTED
                         + ["softmax", "log_softmax", None])
@pytest.mark.parametrize("use_bias", [True, False])
def test_dense_every_activation_stays_on_device(fake_cupy, activation, use_bias):
    layer = Dense(5, activation=activation, use_bias=use_bias,
                  bias_initializer="random_normal")
    x = (3 * rng.standard_normal((4, 3, 6))).astype(np.float32)
    want = layer(x)
    assert isinstance(want, np.ndarray) and want.dtype == np.float32
    _same(layer(Dev(x)), want)
    assert COUNTS["d2h"] == 0 and COUNTS["h2d"] == 1 + use_bias  # the weights, once
    layer(Dev(x))
    assert COUNTS["h2d"] == 1 + use_bias


def test_dense_weights_follow_set_weights(fake_cupy):
    layer = Dense(2)
    x = rng.standard_normal((3, 4)).astype(np.float32)
    layer(Dev(x))
    layer.set_weights([np.ones((4, 2)), np.full(2, 0.5)])
    _same(layer(Dev(x)), layer(x))


def test_embedding_mask_zero_on_device(fake_cupy):
    layer = Embedding(7, 3, mask_zero=True)
    ids = np.array([[1, 0, 6], [0, 0, 2]])
    d = Dev(ids)
    _same(layer(d), layer(ids))
    _same(layer.compute_mask(d), layer.compute_mask(ids))
    _same(layer(Dev(ids.astype(np.float32))), layer(ids))
    assert COUNTS["d2h"] == 0
    with pytest.raises(ValueError, match=r"ids from 0 to 7"):
        layer(Dev(np.array([[0, 7]])))
    with pytest.raises(ValueError, match="integer token ids"):
        layer(Dev(np.array([[0.5]], np.float32)))


def test_masking_on_device(fake_cupy):
    x = rng.standard_normal((2, 4, 3)).astype(np.float32)
    x[0, 1] = 0.0
    x[1, 3] = 0.0
    layer = Masking(0.0)
    _same(layer(Dev(x)), layer(x))
    _same(layer.compute_mask(Dev(x)), layer.compute_mask(x))


def test_dropout_inference_and_training_on_device(fake_cupy):
    x = rng.standard_normal((3, 5, 4)).astype(np.float32)
    d = Dev(x)
    assert Dropout(0.4)(d) is d
    a, b = Dropout(0.4, seed=5), Dropout(0.4, seed=5, noise_shape=(None, 1, 4))
    a2, b2 = Dropout(0.4, seed=5), Dropout(0.4, seed=5, noise_shape=(None, 1, 4))
    _same(a(d, training=True), a2(x, training=True))
    _same(b(d, training=True), b2(x, training=True))
    assert COUNTS["d2h"] == 0


def test_time_distributed_dense_on_device(fake_cupy):
    layer = TimeDistributed(Dense(3, activation="relu"))
    x = rng.standard_normal((2, 5, 4)).astype(np.float32)
    _same(layer(Dev(x)), layer(x))


def test_merge_layers_and_masks_on_device(fake_cupy):
    x1, x2 = (rng.standard_normal((2, 3, 4)).astype(np.float32) for _ in range(2))
    m1 = np.array([[True, False, True], [True, True, False]])
    _same(Add()([Dev(x1), Dev(x2)]), Add()([x1, x2]))
    _same(add([Dev(x1), Dev(x2)]), x1 + x2)
    cat = Concatenate(axis=1)
    _same(cat([Dev(x1), Dev(x2)]), cat([x1, x2]))
    _same(concatenate([Dev(x1), Dev(x2)]), np.concatenate([x1, x2], axis=-1))
    m2 = ~m1
    _same(Add().compute_mask([Dev(x1), Dev(x2)], [Dev(m1), Dev(m2)]), m1 | m2)
    _same(cat.compute_mask([Dev(x1), Dev(x2)], [Dev(m1), None]),
          cat.compute_mask([x1, x2], [m1, None]))
    assert COUNTS["h2d"] == COUNTS["d2h"] == 0


def test_reshape_on_device(fake_cupy):
    x = rng.standard_normal((4, 6)).astype(np.float32)
    _same(Reshape((2, -1))(Dev(x)), x.reshape(4, 2, 3))


@pytest.mark.parametrize("op, options, extra", [
    ("NotEqual", {}, [0.0]), ("Equal", {}, [0.0]), ("LogicalNot", {}, []),
    ("LogicalOr", {}, ["other"]), ("LogicalAnd", {}, ["other"]),
    ("ExpandDims", {"axis": -1}, []), ("Squeeze", {"axis": 1}, []),
    ("ZerosLike", {"dtype": "float32"}, []), ("OnesLike", {}, []),
    ("Any", {"axis": -1}, []), ("All", {"axis": -1, "keepdims": True}, []),
    ("Cast", {"dtype": "float32"}, [])])
def test_keras3_mask_ops_on_device(fake_cupy, op, options, extra):
    from gpulstm.models.ops import OpLayer

    x = rng.standard_normal((2, 1, 3)).astype(np.float32)
    x[0, 0, 1] = 0.0
    if op.startswith("Logical"):
        x = x > 0
    other = rng.standard_normal(x.shape) > 0
    layer = OpLayer(op, options)
    host = [other if e == "other" else e for e in extra]
    dev = [Dev(other) if e == "other" else e for e in extra]
    want = layer.call([x] + host)
    COUNTS.update(h2d=0)
    _same(layer.call([Dev(x)] + dev), want)
    assert COUNTS["h2d"] == COUNTS["d2h"] == COUNTS["scalar"] == 0


# -- models on the (fake) cuda backend ----------------------------------------------------
def _seq_model():
    model = Sequential([Input(shape=(6, 3)), Masking(0.0),
                        LSTM(5, return_sequences=True), TimeDistributed(Dense(4, "tanh")),
                        Dropout(0.2), LSTM(3), Dense(2, activation="softmax")])
    return model


def _x(n=10):
    x = rng.standard_normal((n, 6, 3)).astype(np.float32)
    x[0, 4:] = 0.0  # masked steps
    return x


def test_sequential_predict_copies_once_each_way(fake_cuda):
    model, x = _seq_model(), _x()
    want = model.predict(x, batch_size=4, backend="cpu", verbose=0)
    model.predict(x, batch_size=4, backend="cuda", verbose=0)  # uploads the weights
    COUNTS.update(h2d=0, d2h=0, scalar=0)
    got = model.predict(x, batch_size=4, backend="cuda", verbose=0)
    assert COUNTS == {"h2d": 1, "d2h": 1, "scalar": 0}
    assert isinstance(got, np.ndarray)
    np.testing.assert_array_equal(got, want)
    assert model.layers[1].last_backend == "cuda"


def test_call_returns_device_for_device_input(fake_cuda):
    model, x = _seq_model(), _x(3)
    want = model(x, backend="cpu")
    _same(model(Dev(x)), want)  # "auto" picks cuda for device input
    assert COUNTS["d2h"] == 0 and model.layers[1].last_backend == "cuda"
    COUNTS.update(h2d=0, d2h=0)
    got = model(x, backend="cuda")
    assert isinstance(got, np.ndarray) and COUNTS["h2d"] == 1 and COUNTS["d2h"] == 1
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(model.predict_on_batch(Dev(x)), want)
    np.testing.assert_array_equal(model.predict(Dev(x), verbose=0), want)


def test_functional_model_several_outputs_and_states(fake_cuda):
    ids = Input(shape=(5,), dtype="int32")
    emb = Embedding(9, 4, mask_zero=True)(ids)
    seq = Bidirectional(LSTM(3, return_sequences=True))(emb)
    side = TimeDistributed(Dense(6))(emb)
    both = concatenate([seq, side])
    _, h, c = LSTM(4, return_state=True)(both)
    dec = LSTM(4, return_sequences=True)(Reshape((5, 12))(both), initial_state=[h, c])
    out = Dense(2)(add([dec, Dense(4)(emb)]))
    model = Model(ids, [out, h])
    x = rng.integers(0, 9, (7, 5))
    x[1, 3:] = 0
    want = model.predict(x, batch_size=3, backend="cpu", verbose=0)
    model.predict(x, batch_size=3, backend="cuda", verbose=0)
    COUNTS.update(h2d=0, d2h=0)
    got = model.predict(x, batch_size=3, backend="cuda", verbose=0)
    assert COUNTS["h2d"] == 1 and COUNTS["d2h"] == 2  # one copy back per output
    for g, w in zip(got, want):
        # the CPU gathers the Bidirectional's input projection from a table
        # (gpulstm.layers.embedded): equal to the float32 tolerance, not bit for bit
        np.testing.assert_allclose(g, w, rtol=0, atol=1e-5 * max(1.0, np.abs(w).max()))


def test_large_inputs_move_in_windows(fake_cuda, monkeypatch):
    model, x = _seq_model(), _x(10)
    want = model.predict(x, batch_size=2, backend="cpu", verbose=0)
    model.predict(x[:2], batch_size=2, backend="cuda", verbose=0)
    monkeypatch.setattr(_xp, "DEVICE_BYTES", x[:4].nbytes)  # 4 rows in, 2 batches out
    COUNTS.update(h2d=0, d2h=0)
    got = model.predict(x, batch_size=2, backend="cuda", verbose=0)
    assert COUNTS["h2d"] == 3 and COUNTS["d2h"] == 1
    np.testing.assert_array_equal(got, want)


def test_stateful_model_moves_its_states_between_backends(fake_cuda):
    def build():
        return Sequential([Input(batch_shape=(2, 6, 3)), LSTM(4, stateful=True), Dense(1)])

    dev, host = build(), build()
    host.set_weights(dev.get_weights())
    x = _x(4)
    for backend in ("cuda", "cpu", "cuda"):
        np.testing.assert_array_equal(dev.predict(x, backend=backend, verbose=0),
                                      host.predict(x, backend="cpu", verbose=0))
    states = dev.layers[0].states
    assert all(isinstance(s, np.ndarray) for s in states)
    np.testing.assert_array_equal(states[0], host.layers[0].states[0])


def test_lstm_training_dropout_with_device_input(fake_cuda):
    model = Sequential([Input(shape=(6, 3)), LSTM(4, dropout=0.3, recurrent_dropout=0.2,
                                                  seed=1), Dense(2)])
    x = _x(3)
    layer = model.layers[0]
    layer._rng = np.random.default_rng(9)
    want = model(x, training=True, backend="cpu")
    layer._rng = np.random.default_rng(9)
    _same(model(Dev(x), training=True), want)


def test_explicit_mask_tensor_on_device(fake_cuda):
    inp = Input(shape=(6, 3))
    m = Input(shape=(6,), dtype="bool")
    model = Model([inp, m], LSTM(3)(inp, mask=m))
    x, mask = _x(2), np.array([[True] * 6, [True] * 3 + [False] * 3])
    _same(model([Dev(x), Dev(mask)]), model([x, mask], backend="cpu"))


def test_keras3_json_mask_ops_keep_the_mask_on_device(fake_cuda):
    # A Keras 3 config carries Masking's mask through NotEqual and Any op nodes.
    fix = os.path.join(os.path.dirname(__file__), "fixtures_io", "state_encdec.k3.npz")
    z = np.load(fix)
    model = gpulstm.model_from_json(str(z["config_json"]))
    model.set_weights([z[k] for k in sorted(z.files) if k.startswith("w_")])
    x = z["x_0"]
    want = model.predict(x, backend="cpu", verbose=0)
    model.predict(x, backend="cuda", verbose=0)  # uploads the weights
    COUNTS.update(h2d=0, d2h=0, scalar=0)
    got = model.predict(x, backend="cuda", verbose=0)
    assert COUNTS == {"h2d": 1, "d2h": 2, "scalar": 0}
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
