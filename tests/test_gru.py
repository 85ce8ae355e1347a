"""gpulstm.GRU against Keras 3 (tests/fixtures_gru, scripts/make_gru_fixtures.py) and
the float64 reference ``naive.gru``, on every forced CPU product kernel."""
import glob
import json
import os

import numpy as np
import pytest

import gpulstm
import naive
from gpulstm.activations import CODES
from gpulstm.kernels import cpu_gru_numpy
from gpulstm.models.serialization import deserialize_layer

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures_gru")
CASES = sorted(os.path.basename(p)[4:-4] for p in glob.glob(os.path.join(HERE, "gru_*.npz")))
KINDS = ("panels16", "panels8", "tiles4x2")  # panels wide / narrow, and the axpy loop


def _tol(ref):
    return 1e-5 * max(1.0, float(np.max(np.abs(ref))))


def _close(got, ref):
    got, ref = np.asarray(got, np.float64), np.asarray(ref, np.float64)
    assert got.shape == ref.shape
    assert np.max(np.abs(got - ref)) <= _tol(ref)


def _load(name):
    d = np.load(os.path.join(HERE, f"gru_{name}.npz"), allow_pickle=False)
    return d, json.loads(str(d["config_json"])), json.loads(str(d["meta_json"]))


@pytest.fixture(params=KINDS)
def kind(request, monkeypatch):
    from gpulstm.kernels import cpu

    monkeypatch.setenv(cpu.KERNEL_ENV, request.param)
    return request.param


def test_fixtures_present():
    assert {"default", "reset_before", "backwards_mask", "return_state", "stateful",
            "hard_sigmoid", "relu", "bidirectional"} <= set(CASES)


@pytest.mark.parametrize("name", CASES)
def test_matches_keras(name, kind):
    d, cfg, meta = _load(name)
    cls = "Bidirectional" if meta["bidirectional"] else "GRU"
    layer = deserialize_layer({"class_name": cls, "config": cfg})
    weights = [d[f"w_{i}"] for i in range(len([k for k in d.files if k.startswith("w_")]))]
    if name == "stateful":
        layer.build((d["x"].shape[1], None, d["x"].shape[-1]))
        layer.set_weights(weights)
        for k in range(d["x"].shape[0]):
            _close(layer(d["x"][k]), d["out_0"][k])
        return
    layer.build((None, None, d["x"].shape[-1]))
    layer.set_weights(weights)
    assert layer.count_params() == meta["count_params"]
    kw = {}
    if "mask" in d.files:
        kw["mask"] = d["mask"]
    if "h0" in d.files:
        kw["initial_state"] = [d["h0"]]
    res = layer(d["x"], **kw)
    res = res if isinstance(res, list) else [res]
    outs = [k for k in d.files if k.startswith("out_")]
    assert len(res) == len(outs)
    for i, r in enumerate(res):
        _close(r, d[f"out_{i}"])


@pytest.mark.parametrize("name", ["default", "reset_before", "backwards_mask", "hard_sigmoid",
                                  "relu", "no_bias", "return_state"])
def test_naive_matches_keras(name):
    """The float64 reference itself reproduces Keras (so it can judge other shapes)."""
    d, cfg, _ = _load(name)
    ra = cfg["reset_after"]
    bias = d["w_2"] if "w_2" in d.files else None
    seq, last, h = naive.gru(d["x"], d["w_0"], d["w_1"], bias,
                             d["h0"] if "h0" in d.files else None,
                             d["mask"] if "mask" in d.files else None,
                             activation=cfg["activation"],
                             recurrent_activation=cfg["recurrent_activation"],
                             reset_after=ra, go_backwards=cfg["go_backwards"])
    _close(seq if cfg["return_sequences"] else last, d["out_0"])
    if cfg["return_state"]:
        _close(h, d["out_1"])


def test_config_keys_match_keras():
    _, cfg, _ = _load("default")
    ours = gpulstm.GRU.from_config(cfg).get_config()
    assert set(ours) == set(cfg)
    assert gpulstm.GRU(4).get_config()["reset_after"] is True


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_shapes_against_naive(kind, reset_after, dtype):
    """Sizes past one 16-column panel (3U = 57, not a multiple of 16), 9 rows, holes."""
    rng = np.random.default_rng(3)
    B, T, D, U = 9, 5, 11, 19
    layer = gpulstm.GRU(U, reset_after=reset_after, return_sequences=True, return_state=True,
                        go_backwards=True, dtype=dtype, seed=1)
    x = rng.standard_normal((B, T, D)).astype(dtype)
    mask = rng.random((B, T)) > 0.25
    h0 = rng.standard_normal((B, U)).astype(dtype)
    out, h = layer(x, mask=mask, initial_state=[h0])
    assert out.dtype == dtype
    seq, _, href = naive.gru(x, *layer.get_weights(), h0=h0, mask=mask,
                             reset_after=reset_after, go_backwards=True)
    tol = 1e-12 if dtype == "float64" else None
    if tol:
        assert np.max(np.abs(out - seq)) <= tol and np.max(np.abs(h - href)) <= tol
    else:
        _close(out, seq)
        _close(h, href)


@pytest.mark.parametrize("reset_after", [True, False])
def test_numpy_tier_against_naive(reset_after):
    rng = np.random.default_rng(4)
    B, T, D, U = 4, 6, 3, 5
    w = [rng.uniform(-.5, .5, s) for s in ((D, 3 * U), (U, 3 * U),
                                           (2, 3 * U) if reset_after else (3 * U,))]
    w = [a.astype("float32") for a in w]
    x = rng.standard_normal((B, T, D)).astype("float32")
    mask = rng.random((B, T)) > 0.3
    h0 = np.zeros((B, U), "float32")
    for zero in (False, True):
        out, h = cpu_gru_numpy.gru_forward(
            x, *w, h0, mask, activation=CODES["tanh"], recurrent_activation=CODES["sigmoid"],
            reset_after=reset_after, return_sequences=True, zero_output_for_mask=zero)
        seq, _, href = naive.gru(x, *w, mask=mask, reset_after=reset_after,
                                 zero_output_for_mask=zero)
        _close(out, seq)
        _close(h, href)


def test_keras_models_load():
    for name in ("model_gru_encdec", "model_gru", "model_bigru"):
        model = gpulstm.load_model(os.path.join(HERE, f"{name}.keras"))
        d = np.load(os.path.join(HERE, f"{name}.npz"), allow_pickle=False)
        x = d["x"] if "x" in d.files else [d["x_0"], d["x_1"]]
        _close(model.predict(x), d["y"])
    # a GRU model round-trips through gpulstm's own JSON
    again = gpulstm.model_from_json(model.to_json())
    again.set_weights(model.get_weights())
    _close(again.predict(d["x"]), d["y"])


@pytest.mark.parametrize("ext", ["keras", "h5"])
def test_video_classification_gru_with_a_boolean_mask_input(ext):
    """Issue 15's first GRU architecture (keras.io video classification): a boolean mask
    Input handed to GRU(return_sequences) as ``mask=``, then GRU -> Dropout -> Dense."""
    model = gpulstm.load_model(os.path.join(HERE, f"model_gru_video.{ext}"))
    d = np.load(os.path.join(HERE, "model_gru_video.npz"), allow_pickle=False)
    _close(model.predict([d["x_0"], d["x_1"]]), d["y"])


def test_custom_callable_and_dropout():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 4, 3)).astype("float32")
    layer = gpulstm.GRU(3, activation=lambda v: v * 0.5, dropout=0.5, recurrent_dropout=0.5,
                        return_sequences=True, seed=2)
    y = layer(x)
    seq, _, _ = naive.gru(x, *layer.get_weights(), activation=lambda v: v * 0.5)
    _close(y, seq)
    y_train = layer(x, training=True)
    assert y_train.shape == y.shape and np.all(np.isfinite(y_train))
    assert not np.allclose(y_train, y)


def test_bad_input_leaves_layer_unchanged():
    layer = gpulstm.GRU(4)
    with pytest.raises(ValueError, match="expected 3 weights"):
        layer.set_weights([np.zeros((3, 12))])
    assert not layer.built
    layer.build((None, None, 3))
    before = [w.copy() for w in layer.get_weights()]
    with pytest.raises(ValueError):
        layer.set_weights([np.zeros((3, 12)), np.zeros((4, 12)), np.zeros((12,))])  # (2, 12)
    assert all(np.array_equal(a, b) for a, b in zip(before, layer.get_weights()))
    with pytest.raises(ValueError, match="list of 1 array"):
        layer(np.zeros((2, 5, 3), "float32"), initial_state=[np.zeros((2, 4))] * 2)
    with pytest.raises(ValueError, match="same class"):
        gpulstm.Bidirectional(gpulstm.GRU(2), backward_layer=gpulstm.LSTM(2, go_backwards=True))


def test_stateful_states_and_summary_counts():
    layer = gpulstm.GRU(3, stateful=True, return_state=True)
    x = np.ones((2, 4, 5), "float32")
    out, h = layer(x)
    np.testing.assert_array_equal(layer.states[0], h)
    layer.reset_states()
    assert not layer.states[0].any()
    assert layer.compute_output_shape((2, 4, 5)) == [(2, 3), (2, 3)]
    with pytest.raises(ValueError, match="isn't built"):
        gpulstm.GRU(50).count_params()
    built = gpulstm.GRU(50)
    built.build((None, 400, 3))
    assert built.count_params() == 3 * (3 * 50 + 50 * 50 + 2 * 50)


def test_tf_keras2_legacy_h5(tmp_path):
    """A tf_keras 2 style ``model.save("x.h5")`` file, written here by hand from the
    tf_keras 2 layout (TensorFlow is not installed): GRU(reset_after=False,
    hard_sigmoid) with Keras 2's hard_sigmoid formula picked by ``keras_version``."""
    import h5py

    rng = np.random.default_rng(6)
    T, D, U = 5, 3, 4
    gru_cfg = {"name": "gru", "trainable": True, "dtype": "float32", "return_sequences": False,
               "return_state": False, "go_backwards": False, "stateful": False,
               "unroll": False, "time_major": False, "units": U, "activation": "tanh",
               "recurrent_activation": "hard_sigmoid", "use_bias": True,
               "kernel_initializer": {"class_name": "GlorotUniform", "config": {"seed": None}},
               "recurrent_initializer": {"class_name": "Orthogonal",
                                         "config": {"gain": 1.0, "seed": None}},
               "bias_initializer": {"class_name": "Zeros", "config": {}},
               "kernel_regularizer": None, "recurrent_regularizer": None,
               "bias_regularizer": None, "activity_regularizer": None,
               "kernel_constraint": None, "recurrent_constraint": None, "bias_constraint": None,
               "dropout": 0.0, "recurrent_dropout": 0.0, "implementation": 2,
               "reset_after": False}
    config = {"class_name": "Sequential", "config": {"name": "sequential", "layers": [
        {"class_name": "InputLayer", "config": {"batch_input_shape": [None, T, D],
                                                "dtype": "float32", "sparse": False,
                                                "ragged": False, "name": "gru_input"}},
        {"class_name": "GRU", "config": gru_cfg},
        {"class_name": "Dense", "config": {"name": "dense", "trainable": True,
                                           "dtype": "float32", "units": 1,
                                           "activation": "linear", "use_bias": True}}]}}
    w = {"gru/gru_cell/kernel:0": rng.uniform(-1, 1, (D, 3 * U)),
         "gru/gru_cell/recurrent_kernel:0": rng.uniform(-1, 1, (U, 3 * U)),
         "gru/gru_cell/bias:0": rng.uniform(-1, 1, (3 * U,)),
         "dense/kernel:0": rng.uniform(-1, 1, (U, 1)), "dense/bias:0": rng.uniform(-1, 1, (1,))}
    path = tmp_path / "gru.h5"
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = "2.15.0"
        f.attrs["backend"] = "tensorflow"
        f.attrs["model_config"] = json.dumps(config)
        g = f.create_group("model_weights")
        g.attrs["layer_names"] = np.array([b"gru", b"dense"])
        for layer in ("gru", "dense"):
            names = [k for k in w if k.startswith(layer + "/")]
            g.create_group(layer).attrs["weight_names"] = np.array([n.encode() for n in names])
            for n in names:
                g[layer].create_dataset(n, data=w[n].astype("float32"))
    model = gpulstm.load_model(str(path))
    x = rng.standard_normal((2, T, D)).astype("float32")
    ws = [w[k].astype("float32") for k in w]
    _, last, _ = naive.gru(x, *ws[:3], reset_after=False, recurrent_activation="hard_sigmoid",
                           hard_sigmoid="keras2")
    _close(model.predict(x), naive.dense(last, ws[3], ws[4]))


@pytest.mark.parametrize("reset_after", [True, False])
def test_row_blocks_on_threads(monkeypatch, reset_after):
    """Rows split over numba threads (cpu_gru.run_parallel) give the same numbers."""
    from gpulstm.kernels import cpu

    monkeypatch.setattr(cpu, "ROW_SPLIT_MIN_WORK", 0)
    rng = np.random.default_rng(7)
    B, T, D, U = 13, 6, 5, 7
    layer = gpulstm.GRU(U, reset_after=reset_after, return_sequences=True, seed=3)
    x = rng.standard_normal((B, T, D)).astype("float32")
    mask = rng.random((B, T)) > 0.2
    y = layer(x, mask=mask)
    seq, _, _ = naive.gru(x, *layer.get_weights(), mask=mask, reset_after=reset_after)
    _close(y, seq)


def test_first_calls_run_on_the_numpy_tier(fresh_tier, monkeypatch):
    """A fresh process's small GRU calls run in NumPy; past the tier's budget, numba."""
    calls = []
    real = cpu_gru_numpy.gru_forward
    monkeypatch.setattr(cpu_gru_numpy, "gru_forward",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    rng = np.random.default_rng(8)
    x = rng.standard_normal((2, 5, 3)).astype("float32")
    layer = gpulstm.GRU(4, return_sequences=True)
    y = layer(x)
    assert calls == [1]
    seq, _, _ = naive.gru(x, *layer.get_weights())
    _close(y, seq)
    monkeypatch.setattr(fresh_tier, "LOAD_COST_S", 0.0)
    _close(layer(x), seq)
    assert calls == [1]


def test_time_major_and_set_states():
    rng = np.random.default_rng(9)
    x = rng.standard_normal((3, 5, 2)).astype("float32")  # (B, T, D)
    layer = gpulstm.GRU(4, time_major=True, return_sequences=True, return_state=True, seed=4)
    y, h = layer(np.swapaxes(x, 0, 1))
    seq, _, href = naive.gru(x, *layer.get_weights())
    _close(np.swapaxes(y, 0, 1), seq)
    _close(h, href)
    assert layer.compute_output_shape((5, 3, 2)) == [(5, 3, 4), (3, 4)]
    stateful = gpulstm.GRU(4, stateful=True, seed=4)
    stateful.build((3, 5, 2))
    stateful.set_weights(layer.get_weights())
    h0 = rng.standard_normal((3, 4)).astype("float32")
    stateful.reset_states([h0])
    _close(stateful(x), naive.gru(x, *layer.get_weights(), h0=h0)[1])
    with pytest.raises(ValueError, match="list of 1 array"):
        stateful.reset_states([h0, h0])


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("B,D,stacked", [(9, 11, True), (1, 11, False), (4, 200, False)])
def test_stacked_steps_chosen_by_size(B, D, stacked, reset_after, monkeypatch):
    """On the panels: [x_t | h_tm1] stacked per step from 2 rows while D <=
    PROJECT_FIRST_RATIO * U (one row, or wide inputs: projected up front); both match."""
    from gpulstm.kernels import cpu, cpu_gru

    monkeypatch.setenv(cpu.KERNEL_ENV, "panels16")
    seen = []
    real = cpu_gru.run_rows
    monkeypatch.setattr(cpu_gru, "run_rows", lambda *a: seen.append(a[17]) or real(*a))
    monkeypatch.setattr(cpu, "_threads", lambda: 1)
    rng = np.random.default_rng(B + D)
    U = 19
    layer = gpulstm.GRU(U, return_sequences=True, reset_after=reset_after, seed=2)
    x = rng.standard_normal((B, 6, D)).astype("float32")
    out = layer(x, backend="cpu")
    assert seen == [stacked]
    seq, _, _ = naive.gru(x, *layer.get_weights(), reset_after=reset_after)
    _close(out, seq)


@pytest.mark.parametrize("kind", ["panels16", "panels8"])
def test_stacked_steps_without_reset_after(kind, monkeypatch):
    """reset_after=False stacked per step (z and r from [x_t | h_tm1], then (r * h_tm1) @
    R_h): left / right padded and holed masks, both directions, h0, with and without
    bias, U = 21 (3U not a multiple of 16)."""
    from test_cpu_split import _gru_case, check_gru_variants

    from gpulstm.kernels import cpu, cpu_gru

    monkeypatch.setenv(cpu.KERNEL_ENV, kind)
    monkeypatch.setattr(cpu, "_threads", lambda: 1)
    seen = []
    real = cpu_gru.run_rows
    monkeypatch.setattr(cpu_gru, "run_rows", lambda *a: seen.append(a[16:18]) or real(*a))
    check_gru_variants(*_gru_case(3, 7, 6, 21, False, seed=7), False)
    assert seen and all(v == (False, True) for v in seen)


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("path", ["projected", "stacked", "row_blocks", "split"])
def test_nan_inf_at_masked_steps_and_nan_propagation(path, reset_after, monkeypatch):
    """Keras's masked-step rule holds on every numba GRU path with Keras's default
    activations (the fused rational-tanh update): NaN / inf inputs at masked steps never
    reach an output; a NaN at an unmasked step makes that row NaN from that step on."""
    from gpulstm.kernels import cpu, cpu_gru, cpu_split

    monkeypatch.setenv(cpu.KERNEL_ENV, "panels16")
    monkeypatch.setenv("GPULSTM_NUMPY_TIER", "0")
    seen = []  # the path each call took
    real_rows, real_par, real_split = cpu_gru.run_rows, cpu_gru.run_parallel, cpu_split.forward_gru
    monkeypatch.setattr(cpu_gru, "run_rows", lambda *a: seen.append(
        "stacked" if a[17] else "projected") or real_rows(*a))
    monkeypatch.setattr(cpu_gru, "run_parallel", lambda *a: seen.append("row_blocks") or
                        real_par(*a))
    monkeypatch.setattr(cpu_split, "forward_gru", lambda *a: seen.append("split") or
                        real_split(*a))
    threads = 2 if path in ("row_blocks", "split") else 1
    monkeypatch.setattr(cpu, "_threads", lambda: threads)
    if path == "row_blocks":
        monkeypatch.setattr(cpu, "ROW_SPLIT_MIN_WORK", 0)
    if path == "split":
        monkeypatch.setattr(cpu, "SPLIT_MIN_WORK", 0)
    B = {"projected": 1, "stacked": 9, "row_blocks": 17, "split": 3}[path]
    rng = np.random.default_rng(B)
    T, D, U = 7, 5, 20
    layer = gpulstm.GRU(U, return_sequences=True, reset_after=reset_after, seed=5)
    x = rng.standard_normal((B, T, D)).astype("float32")
    mask = np.ones((B, T), bool)
    mask[:, 2] = False
    mask[0, 5:] = False
    x[~mask] = np.nan
    x[-1, 2, 0] = np.inf
    y = layer(x, mask=mask, backend="cpu")
    assert seen == [path]
    assert np.isfinite(y).all()
    seq, _, _ = naive.gru(x, *layer.get_weights(), mask=mask, reset_after=reset_after)
    _close(y, seq)
    x[-1, 4, 0] = np.nan  # unmasked
    y = np.asarray(layer(x, mask=mask, backend="cpu"))
    assert np.isnan(y[-1, 4:]).all() and np.isfinite(y[:-1]).all()
