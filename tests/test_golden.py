"""Keras golden fixtures through the public API, against Keras and against tests/naive.py.

The fixtures (tests/fixtures/*.npz, written by scripts/make_fixtures.py with real
tf_keras 2.21 and Keras 3.15) are read with NumPy only.  Every case builds
``gpulstm.LSTM.from_config(config_json, keras_version=...)``, loads the Keras
weights and calls it with the case's mask / initial_state / training=False (and
reset_states() between stateful calls); every output must match the Keras output
and the float64 reference within 1e-5 * max(1, max|ref|).
"""
import glob
import json
import os
import zlib

import numpy as np
import pytest

import gpulstm
import naive
FIXTURES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")

FILES = sorted(glob.glob(os.path.join(FIXTURES_DIR, "*lstm_*.npz")))
IDS = [os.path.basename(f)[:-4] for f in FILES]

# Small cases for the CUDA backend (the simulator runs a Python thread per CUDA thread).
CUDA_CASES = ["lstm_act_ract_hard_sigmoid_seq", "k3_lstm_mask_holes_backwards_seq_state",
              "lstm_time_major_seq_state_mask", "k3_lstm_mask_zero_output_seq_state",
              "k3_lstm_stateful_seq_state", "k3_lstm_mask_all_masked_row_seq_state"]


class Case:
    """One fixture file, loaded eagerly (the files are a few KB)."""

    def __init__(self, path):
        with np.load(path, allow_pickle=False) as z:
            self.arrays = {k: z[k] for k in z.files}
        self.name = os.path.basename(path)[:-4]
        self.meta = json.loads(str(self.arrays.pop("meta_json")))
        self.config = json.loads(str(self.arrays.pop("config_json")))

    def __getitem__(self, key):
        return self.arrays[key]

    def get(self, key):
        return self.arrays.get(key)

    @property
    def weights(self):
        names = ["kernel", "recurrent_kernel", "bias"]
        return [self.arrays[n] for n in names if n in self.arrays]

    @property
    def n_calls(self):
        return self.meta["stateful_calls"]

    @property
    def time_major(self):
        return self.meta["input_layout"] == "TBF"

    def call_kwargs(self):
        kw = {"training": False}
        if "mask" in self.arrays:
            kw["mask"] = self.arrays["mask"]
        if "initial_h" in self.arrays:
            kw["initial_state"] = [self.arrays["initial_h"], self.arrays["initial_c"]]
        return kw

    def x_calls(self):
        return list(self["x"]) if self.n_calls else [self["x"]]


@pytest.fixture(scope="module", params=FILES, ids=IDS)
def case(request):
    return Case(request.param)


def _tol(ref, rel=1e-5):
    ref = np.asarray(ref, dtype=np.float64)
    return rel * max(1.0, float(np.max(np.abs(ref))) if ref.size else 1.0)


def assert_close(got, ref, what, rel=1e-5):
    got = np.asarray(got)
    ref = np.asarray(ref)
    assert got.shape == ref.shape, f"{what}: shape {got.shape} != {ref.shape}"
    err = np.abs(got.astype(np.float64) - ref.astype(np.float64))
    tol = _tol(ref, rel)
    if not np.all(err <= tol):  # also fails on NaN
        bad = np.where(np.isnan(err), np.inf, err)
        idx = np.unravel_index(np.argmax(bad), err.shape)
        raise AssertionError(f"{what}: |err| {bad[idx]:.3g} > tol {tol:.2e} at {idx}: "
                             f"got {got[idx]!r}, ref {ref[idx]!r}")


def make_layer(case, build_first, backend=None, **overrides):
    """The layer under test, built either by ``build()`` + ``set_weights`` or by set_weights alone."""
    config = {**case.config, **overrides}
    version = case.meta["keras_version"]
    if backend is None:
        layer = gpulstm.LSTM.from_config(config, keras_version=version)
    else:
        layer = gpulstm.LSTM(**config, keras_version=version, backend=backend)
    if build_first:
        layer.build(case["x"].shape[1:] if case.n_calls else case["x"].shape)
    layer.set_weights(case.weights)
    return layer


def run_layer(layer, case):
    """Call the layer as the generator called Keras; returns (outputs, states_after)."""
    outs, states = [], []
    for k, x in enumerate(case.x_calls()):
        if case.n_calls and case["reset_before"][k]:
            layer.reset_states()
        res = layer(x, **case.call_kwargs())
        outs.append([np.asarray(r) for r in (res if isinstance(res, list) else [res])])
        if case.n_calls:
            states.append([np.asarray(s) for s in layer.states])
    if not case.n_calls:
        return outs[0], None
    return [np.stack(o) for o in zip(*outs)], [np.stack(s) for s in zip(*states)]


def naive_outputs(case):
    """(outs as the layer returns them, seq, h, c) from tests/naive.py, stacked over calls."""
    cfg = case.config
    flavour = naive.flavour_from_version(case.meta["keras_version"])
    kw = case.call_kwargs()
    mask = kw.get("mask")
    h0, c0 = kw.get("initial_state", [None, None])
    if case.time_major and mask is not None:
        mask = mask.T
    results = []
    for k, x in enumerate(case.x_calls()):
        if case.n_calls and case["reset_before"][k]:
            h0 = c0 = None
        if case.time_major:
            x = np.swapaxes(x, 0, 1)
        seq, last, h, c = naive.lstm(
            x, *case.weights[:2], case.get("bias"), h0, c0, mask,
            activation=cfg.get("activation"), recurrent_activation=cfg.get("recurrent_activation"),
            go_backwards=cfg.get("go_backwards", False),
            zero_output_for_mask=cfg.get("zero_output_for_mask", False), hard_sigmoid=flavour)
        if case.time_major:
            seq = np.swapaxes(seq, 0, 1)
        if case.n_calls:
            h0, c0 = h, c
        results.append((seq, last, h, c))
    seq, last, h, c = (np.stack(a) if case.n_calls else a[0] for a in zip(*results))
    outs = naive.keras_outputs(seq, last, h, c, cfg.get("return_sequences", False),
                               cfg.get("return_state", False))
    return outs, seq, h, c


def _build_first(case):
    # Half the cases build() then set_weights(), half set_weights() on an unbuilt layer.
    return zlib.crc32(case.name.encode()) % 2 == 0


def _rel(case):
    return 1e-10 if case.meta.get("dtype") == "float64" else 1e-5


def check_case(case, backend=None):
    layer = make_layer(case, _build_first(case), backend)
    outs, states = run_layer(layer, case)
    if backend is not None and hasattr(layer, "last_backend"):
        assert layer.last_backend == backend
    n = case.meta["n_outputs"]
    assert len(outs) == n, f"{case.name}: {len(outs)} outputs, Keras returned {n}"
    ref_outs, ref_seq, ref_h, ref_c = naive_outputs(case)
    for i, got in enumerate(outs):
        keras_out = case[f"out_{i}"]
        assert got.dtype == keras_out.dtype, f"{case.name} out_{i}: dtype {got.dtype} != {keras_out.dtype}"
        assert_close(got, keras_out, f"{case.name} out_{i} vs Keras")
        assert_close(got, ref_outs[i], f"{case.name} out_{i} vs naive", rel=_rel(case))
    if states is not None:
        assert_close(states[0], case["states_after_h"], f"{case.name} states h vs Keras")
        assert_close(states[1], case["states_after_c"], f"{case.name} states c vs Keras")

    # The same weights with return_sequences=True, return_state=True.
    twin = make_layer(case, not _build_first(case), backend,
                      return_sequences=True, return_state=True)
    (seq, h, c), _ = run_layer(twin, case)
    for what, got, keras_ref, ref in (("seq", seq, case["seq"], ref_seq), ("h", h, case["h"], ref_h),
                                      ("c", c, case["c"], ref_c)):
        assert_close(got, keras_ref, f"{case.name} {what} vs Keras")
        assert_close(got, ref, f"{case.name} {what} vs naive", rel=_rel(case))
    return layer


def test_golden(case):
    layer = check_case(case)
    assert layer.count_params() == sum(w.size for w in case.weights)


def test_golden_numpy_tier(case, numpy_tier):
    # the CPU backend's first calls in a fresh process (gpulstm.kernels.cpu_numpy);
    # gelu always runs on numba (NumPy has no erf ufunc)
    check_case(case, backend="cpu")
    gelu = "gelu" in (case.config.get("activation"), case.config.get("recurrent_activation"))
    if gelu:
        assert numpy_tier.calls == 0  # routed to numba, checked above all the same
    else:
        assert numpy_tier.calls >= 2


_DETERMINISTIC_INIT = {"Zeros": 0.0, "Ones": 1.0}


def test_golden_initial_bias(case):
    """Deterministic bias initializers give exactly Keras's bias (unit_forget_bias layout)."""
    init = case.config.get("bias_initializer") or {}
    if "init_bias" not in case.arrays or init.get("class_name") not in _DETERMINISTIC_INIT:
        pytest.skip("no bias, or a random bias initializer")
    layer = gpulstm.LSTM.from_config(case.config, keras_version=case.meta["keras_version"])
    shape = case["x"].shape[1:] if case.n_calls else case["x"].shape
    layer.build(shape)
    weights = layer.get_weights()
    assert [w.shape for w in weights] == [w.shape for w in case.weights]
    np.testing.assert_array_equal(weights[2], case["init_bias"])
    assert weights[2].dtype == case["init_bias"].dtype


_FLAGS = ("units", "use_bias", "unit_forget_bias", "return_sequences", "return_state",
          "go_backwards", "stateful", "unroll", "dropout", "recurrent_dropout")


def test_golden_config_roundtrip(case):
    """get_config keeps Keras's values, and from_config(get_config()) computes the same numbers."""
    layer = make_layer(case, True)
    cfg = layer.get_config()
    for key in _FLAGS:
        assert cfg[key] == case.config[key], key
    alias = {"swish": "silu"}  # Keras 3 writes "silu" for both spellings
    for key in ("activation", "recurrent_activation"):
        assert alias.get(cfg[key], cfg[key]) == alias.get(case.config[key], case.config[key]), key
    assert bool(cfg.get("zero_output_for_mask", False)) == bool(case.config.get("zero_output_for_mask",
                                                                                 False))
    assert bool(cfg.get("time_major", False)) == bool(case.config.get("time_major", False))
    # The Keras generation (hard_sigmoid flavour) must survive the round trip.
    again = gpulstm.LSTM.from_config(cfg)
    again.set_weights(case.weights)
    if case.n_calls:
        return  # stateful outputs are covered by test_golden
    a, _ = run_layer(layer, case)
    b, _ = run_layer(again, case)
    for i, (u, v) in enumerate(zip(a, b)):
        np.testing.assert_array_equal(u, v, err_msg=f"{case.name} out_{i} after get_config round trip")


def _cuda_usable():
    backend = gpulstm.dispatch.BACKENDS.get("cuda")
    if backend is None:
        return False, "the cuda backend is not registered"
    ok, why = backend.availability()
    sim = os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0")
    if not ok:
        return False, f"cuda backend unavailable: {why}"
    if not sim and not getattr(backend, "real_device", True):
        return False, "no real GPU"
    return True, why


@pytest.mark.cudasim
@pytest.mark.parametrize("name", CUDA_CASES)
def test_golden_cuda(name):
    ok, why = _cuda_usable()
    if not ok:
        pytest.skip(why)
    check_case(Case(os.path.join(FIXTURES_DIR, name + ".npz")), backend="cuda")


def test_fixture_set_is_complete():
    """The generator's grid is all here (a failed or partial regeneration shows up)."""
    with open(os.path.join(FIXTURES_DIR, "manifest.json")) as f:
        listed = {c["file"] for c in json.load(f)["cases"]}
    assert listed == {os.path.basename(p) for p in FILES}
    assert len(FILES) >= 100
