"""The benchmark machinery: size matrix, reference, race engine, results schema, report, peers.

The race is driven with fake contenders (no numba compile); the torch and
onnxruntime runners are checked against the float64 reference when installed.
"""
import copy
import json
import os
import sys

import numpy as np
import pytest

import gpulstm
import naive
from bench_fakes import fake_race
from gpulstm import _peers, _race, _results, _startup

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _naive_seq(x, kernel, recurrent_kernel, bias=None, mask=None, activation="tanh",
               recurrent_activation="sigmoid"):
    return naive.lstm(x, kernel, recurrent_kernel, bias, mask=mask, activation=activation,
                      recurrent_activation=recurrent_activation)[0]


def _naive_gru_seq(x, kernel, recurrent_kernel, bias=None, mask=None, activation="tanh",
                   recurrent_activation="sigmoid"):
    return naive.gru(x, kernel, recurrent_kernel, bias, mask=mask, activation=activation,
                     recurrent_activation=recurrent_activation, reset_after=True)[0]


NAIVE = {"lstm": _naive_seq, "gru": _naive_gru_seq}


# ----------------------------------------------------------------------------- matrix
def test_matrix_has_issue_6_sizes():
    cases = _race.matrix()
    deep = {(c.U, c.T, c.B, c.D) for c in cases if c.group == "deepbench"}
    assert deep == {(U, T, B, U) for U, T in ((256, 150), (512, 25), (1024, 25), (2048, 25), (1536, 50))
                    for B in (1, 2, 4)}
    keras = {(c.U, c.B, c.T) for c in cases if c.group == "keras"}
    assert keras == {(U, B, T) for U in (32, 64, 128, 256) for B in (1, 8, 32, 256) for T in (10, 50, 200)}
    long_t = {c.T for c in cases if c.B == 1 and c.T >= 1000}
    assert long_t == {1000, 5000}
    stream = [c for c in cases if c.group == "streaming"]
    assert stream and all(c.stateful and c.T == 1 and c.B == 1 for c in stream)
    nocudnn = [c.flags for c in cases if c.group == "nocudnn"]
    assert {"recurrent_activation": "hard_sigmoid"} in nocudnn
    assert {"mask": "left"} in nocudnn and {"use_bias": False} in nocudnn


def test_select_quick_and_targets_dedupes():
    issue2 = [(c.B, c.T, c.D, c.U) for c in _race.select(["issue2"])]
    assert issue2 == [(1, 100, 32, 128), (8, 100, 64, 256), (64, 100, 32, 256)]
    quick = _race.select(["quick"])
    assert set(issue2) <= {(c.B, c.T, c.D, c.U) for c in quick}
    assert any(c.stateful for c in quick) and len(quick) < 12
    both = _race.select(["issue2", "targets", "quick"])
    assert len(both) == len({c.key() for c in both})
    assert len(_race.select(["all"])) == len({c.key() for c in _race.matrix()})
    assert _race.select(["nothing"]) == []


def test_case_inputs_left_mask_and_names():
    case = _race.Case("t", 5, 12, 3, 4, mask="left")
    x, mask = case.inputs()
    assert x.shape == (5, 12, 3) and x.dtype == np.float32 and mask.shape == (5, 12)
    for row in mask:  # left padding: False...False True...True, at least half kept
        k = int(np.argmax(row))
        assert not row[:k].any() and row[k:].all() and row.sum() >= 6
    assert np.all(x[~mask] == 0)
    assert case.name == "B=5 T=12 D=3 U=4 mask=left"
    assert _race.Case("t", 1, 1, 2, 3, stateful=True).inputs()[0].shape == (1, _race.STREAM_STEPS, 2)
    k, r, b = case.weights()
    assert k.shape == (3, 16) and r.shape == (4, 16) and b.shape == (16,)
    assert np.all(b[4:8] > 0.8)  # forget-gate bias block like unit_forget_bias


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("flags", [{}, {"recurrent_activation": "hard_sigmoid"}, {"mask": "left"},
                                   {"use_bias": False}])
def test_reference_matches_naive(flags, cell):
    case = _race.Case("t", 3, 9, 4, 5, cell=cell, **flags)
    k, r, b = case.weights()
    x, mask = case.inputs()
    bias = b if case.use_bias else None
    kw = dict(mask=mask, activation=case.activation, recurrent_activation=case.recurrent_activation)
    np.testing.assert_allclose(_race.REFERENCES[cell](x, k, r, bias, **kw), NAIVE[cell](x, k, r, bias, **kw),
                               rtol=0, atol=1e-12)


def test_gru_cases_weights_and_names():
    case = _race.Case("t", 5, 12, 3, 4, cell="gru")
    k, r, b = case.weights()
    assert k.shape == (3, 12) and r.shape == (4, 12) and b.shape == (2, 12)  # reset_after's bias
    assert case.name == "B=5 T=12 D=3 U=4 cell=gru" and case.flags == {"cell": "gru"}
    assert _race.Case.from_dict(case.to_dict()) == case and case.key() != _race.Case("t", 5, 12, 3, 4).key()
    assert [a.shape for a in _race.Case("t", 5, 12, 3, 4).weights()] == [(3, 16), (4, 16), (16,)]
    with pytest.raises(ValueError, match=r"cell among \('lstm', 'gru'\). Received: cell='rnn'"):
        _race.Case("t", 1, 2, 3, 4, cell="rnn")


def test_torch_layout_is_the_importers_inverse():
    """The torch peer's weights, read back by gpulstm.from_torch, are the case's Keras weights."""
    for case in (_race.Case("t", 2, 3, 3, 4, cell="gru"), _race.Case("t", 2, 3, 3, 4),
                 _race.Case("t", 2, 3, 3, 4, cell="gru", use_bias=False)):
        keras = case.weights()
        names = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")
        sd = {n: w for n, w in zip(names, _peers.torch_weights(case, *keras)) if w is not None}
        back = gpulstm.from_torch(sd).get_weights()
        assert len(back) == (3 if case.use_bias else 2)
        for a, b in zip(back, keras):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-7)


# ----------------------------------------------------------------------------- results
def _fake_race(monkeypatch, contenders, threads=(1,), repeats=3):
    run, samples, _ = fake_race(monkeypatch, contenders, threads, repeats)
    return run, samples


def test_ratio_table_and_notes(monkeypatch):
    run, _ = _fake_race(monkeypatch, ["gpulstm-slow", "peer-a", "missing", "nope"], threads=(1, 2))
    entries = _results.ratio_rows(run)
    assert [e["threads"] for e in entries] == [1, 2]
    for e in entries:
        mine, peer = e["cells"]["gpulstm-slow"]["median_ms"], e["cells"]["peer-a"]["median_ms"]
        assert e["best_peer"] == "peer-a"
        assert e["ratios"]["gpulstm-slow"] == pytest.approx(mine / peer)
    text = _results.format_table(run)
    assert "not installed" in text and "n/a" in text and "(peer-a)" in text
    md = _results.format_table(run, markdown=True)
    assert md.splitlines()[1].startswith("|---|") and md.count("\n") == 3
    assert any("pip install missing" in n for n in _results.notes(run))


def test_ratio_without_peers_is_empty(monkeypatch):
    run, _ = _fake_race(monkeypatch, ["gpulstm-slow", "missing"], repeats=1)
    (entry,) = _results.ratio_rows(run)
    assert entry["best_peer"] is None and entry["ratios"] == {"gpulstm-slow": None}


def test_check_run_rejects_bad_runs(monkeypatch, tmp_path):
    run, _ = _fake_race(monkeypatch, ["gpulstm-slow", "peer-a"], repeats=1)
    path = tmp_path / "run.json"
    path.write_text(json.dumps(run))
    assert _results.load_run(path)["results"] == json.loads(json.dumps(run))["results"]
    bad = [("schema", "other/1"), ("results", {})]
    for key, value in bad:
        broken = copy.deepcopy(run)
        broken[key] = value
        with pytest.raises(ValueError):
            _results.check_run(broken)
    for key, value in [("status", "great"), ("median_ms", None), ("B", "1"), ("kind", "x")]:
        broken = copy.deepcopy(run)
        broken["results"][0][key] = value
        with pytest.raises(ValueError, match="Expected"):
            _results.check_run(broken)


def test_pytest_benchmark_json_converts():
    extra = dict(case="B=1 T=2 D=3 U=4", group="t", B=1, T=2, D=3, U=4, flags={}, threads=1,
                 kind="gpulstm", device="cpu", dtype="float32")
    data = {"machine_info": {"gpulstm": {"cpu": "X"}}, "datetime": "2026-01-01",
            "benchmarks": [
                {"extra_info": dict(extra, contender="gpulstm-cpu"), "stats": {"median": 0.002, "data": [0.002]}},
                {"extra_info": dict(extra, contender="torch", kind="peer"), "stats": {"median": 0.004}},
                {"extra_info": {}, "stats": {"median": 1.0}},  # not one of ours: ignored
            ]}
    run = _results.check_run(_results.from_pytest_benchmark(data))
    assert run["machine"]["cpu"] == "X" and len(run["results"]) == 2
    (entry,) = _results.ratio_rows(run)
    assert entry["ratios"]["gpulstm-cpu"] == pytest.approx(0.5)


def test_pytest_benchmark_report_names_rounds_and_threads():
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    try:
        import report
    finally:
        sys.path.pop(0)
    extra = dict(case="B=1 T=2 D=3 U=4", group="t", B=1, T=2, D=3, U=4, flags={}, kind="gpulstm",
                 device="cpu", dtype="float32", contender="gpulstm-cpu")
    data = {"machine_info": {"gpulstm": {"cpu": "X"}}, "benchmarks": [
        {"extra_info": dict(extra, threads=t), "stats": {"median": 0.002, "rounds": 7,
                                                         "data": [0.002] * 7}} for t in (2, 1)]}
    head = report.header(_results.check_run(_results.from_pytest_benchmark(data)))
    assert "median of 7 samples" in head and "threads [1, 2]" in head and "?" not in head.split(
        "Settings:")[1], head


def test_report_markdown_and_png(monkeypatch, tmp_path):
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    try:
        import report
    finally:
        sys.path.pop(0)
    run, _ = _fake_race(monkeypatch, ["gpulstm-slow", "peer-a"], repeats=1)
    run["machine"]["env"]["OPENBLAS_CORETYPE"] = "Haswell"
    path = tmp_path / "run.json"
    path.write_text(json.dumps(run))
    md_path = tmp_path / "t.md"
    assert report.main([str(path), "--md", str(md_path), "--title", "T"]) == 0
    md = md_path.read_text()
    assert md.startswith("### T") and "OPENBLAS_CORETYPE=Haswell" in md and "gpulstm-slow / best peer" in md
    assert report.main([str(tmp_path / "absent.json")]) == 1
    pytest.importorskip("matplotlib")
    png = tmp_path / "t.png"
    assert report.main([str(path), "--md", str(md_path), "--png", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_startup_takes_warm_medians_and_reports_errors(monkeypatch, tmp_path):
    # process n: import 0.1 (n + 1) s, first call 5 s (n == 0, cold cache) else 0.2 n s;
    # numba runs the call only where the NumPy tier is turned off
    script = ("import json, os; n = len(os.listdir(os.environ['STARTUP_DIR'])); "
              "open(os.path.join(os.environ['STARTUP_DIR'], str(n)), 'w').close(); "
              "print(json.dumps({'import_s': 0.1 * (n + 1), 'first_call_s': 5.0 if n == 0 else 0.2 * n, "
              "'numba_on_import': False, "
              "'numba_kernels_loaded': os.environ.get('GPULSTM_NUMPY_TIER') == '0'}))")
    monkeypatch.setenv("STARTUP_DIR", str(tmp_path))
    monkeypatch.delenv("GPULSTM_NUMPY_TIER", raising=False)
    monkeypatch.setattr(_startup, "_STARTUP", script)
    st = _startup.startup(repeats=3)
    # processes 0-3 with the tier off (0 fills the cache), then 4-6 as a user runs them
    assert st["cold_first_call_s"] == 5.0
    assert st["first_call_numba_s"] == pytest.approx(0.4)
    assert st["first_call_s"] == pytest.approx(1.0) and st["import_s"] == pytest.approx(0.6)
    assert st["first_call_tier"] == "numpy"
    assert len(st["samples"]) == 3 and st["numba_on_import"] is False
    line, = _results.startup_lines({"startup": st})
    assert "1000 ms on the numpy tier; with GPULSTM_NUMPY_TIER=0 (numba kernels) 400 ms" in line
    monkeypatch.setattr(_startup, "_STARTUP", "raise SystemExit('no luck')")
    st = _startup.startup(repeats=1)
    assert st == {"error": "no luck"}
    assert _results.startup_lines({"startup": st}) == ["start-up: not measured (no luck)"]


def _row(case, contender, ms, threads=1):
    kind = "gpulstm" if contender.startswith("gpulstm-") else "peer"
    return dict(case=case.name, group=case.group, B=case.B, T=case.T, D=case.D, U=case.U,
                flags=case.flags, threads=threads, contender=contender, kind=kind, device="cpu",
                dtype="float32", status="ok", reason=None, version=None, median_ms=ms,
                times_ms=[ms], first_call_ms=None, max_abs_err=0.0, tolerance=1e-5)


def test_report_targets_checklist():
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    try:
        import report
    finally:
        sys.path.pop(0)
    small = _race.Case("targets", 1, 100, 32, 128)
    big = _race.Case("targets", 64, 100, 32, 256)
    stream = _race.Case("streaming", 1, 1, 32, 128, stateful=True)
    other = _race.Case("keras", 8, 10, 32, 32)
    rows = [_row(small, "gpulstm-cpu", 0.9), _row(small, "torch", 1.0), _row(small, "onnxruntime", 2.0),
            _row(big, "gpulstm-cpu", 1.4), _row(big, "onnxruntime", 1.0),
            _row(stream, "gpulstm-cpu", 0.01), _row(stream, "torch", 0.06),
            _row(other, "gpulstm-cpu", 9.0), _row(other, "torch", 1.0)]
    run = {"schema": _results.SCHEMA, "created": "", "machine": {}, "settings": {}, "results": rows,
           "startup": {"import_s": 0.2, "first_call_s": 0.7, "cold_first_call_s": 4.0,
                       "numba_on_import": False, "samples": []}}
    lines = report.targets(_results.check_run(run)).splitlines()
    assert lines == [
        "- [x] B=1 T=100 D=32 U=128, 1 thread(s): 0.90 (target <= 1.0, best peer torch)",
        "- [ ] B=64 T=100 D=32 U=256, 1 thread(s): 1.40 (target <= 1.0, best peer onnxruntime)",
        "- [x] B=1 T=1 D=32 U=128 stateful, 1 thread(s): torch / gpulstm 6.0x (target >= 5x)",
        "- [x] import gpulstm 200 ms, numba not imported (target <= 300 ms, never compiles)",
        "- [ ] first call in a fresh process, warm cache: 700 ms (target <= 500 ms)",
    ]
    assert "first LSTM(128) call" in report.markdown(run)


# ----------------------------------------------------------------------------- peers
PEER_CASES = [
    _race.Case("t", 3, 7, 4, 5),
    _race.Case("t", 2, 6, 3, 4, use_bias=False),
    _race.Case("t", 2, 6, 3, 4, recurrent_activation="hard_sigmoid"),
    _race.Case("t", 1, 1, 3, 4, stateful=True),
    _race.Case("t", 3, 7, 4, 5, cell="gru"),
    _race.Case("t", 2, 6, 3, 4, use_bias=False, cell="gru"),
    _race.Case("t", 2, 6, 3, 4, recurrent_activation="hard_sigmoid", cell="gru"),
    _race.Case("t", 1, 1, 3, 4, stateful=True, cell="gru"),
]


def _check_runner(name, case):
    weights = case.weights()
    x, mask = case.inputs()
    expected = _race.expected_outputs(case, x, mask, weights, NAIVE[case.cell])
    with _peers.set_threads(1):
        try:
            runner = _peers.make_runner(name, case, *weights, 1)
        except _peers.Unsupported:
            return None
        err = _race.validate(runner, case, x, mask, expected)
    assert err <= _race.tolerance(expected), (name, case.name, err)
    if case.stateful:  # reset really restarts from zero state
        assert _race.validate(runner, case, x, mask, expected) == err
    return err


# peer -> (modules it needs, the cases it cannot express: None = every case runs)
PEER_LIMITS = {"onnxruntime": (("onnxruntime", "onnx"), ()),
               "openvino": (("openvino", "onnx"), ("hard_sigmoid",)),
               "jax": (("jax",), ()),
               "torch": (("torch",), ("hard_sigmoid",))}


@pytest.mark.parametrize("case", PEER_CASES, ids=lambda c: c.name)
@pytest.mark.parametrize("name", list(PEER_LIMITS))
def test_peer_runners_match_reference(name, case):
    needs, refused = PEER_LIMITS[name]
    for module in needs:
        pytest.importorskip(module)
    err = _check_runner(name, case)
    assert (err is None) == (case.recurrent_activation in refused), (name, case.name)


def test_runners_set_their_thread_count():
    import numba

    case = _race.Case("t", 1, 2, 3, 4)
    w = case.weights()
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    _peers.make_runner("gpulstm-cpu", case, *w, 1)  # builds the layer, compiles nothing
    assert numba.get_num_threads() == 1
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    torch = pytest.importorskip("torch")
    torch.set_num_threads(2)
    _peers.make_runner("torch", case, *w, 1)
    assert torch.get_num_threads() == 1


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_peers_refuse_masks_and_report_missing(monkeypatch, cell):
    case = _race.Case("t", 2, 5, 3, 4, mask="left", cell=cell)
    w = case.weights()
    for name in ("torch", "onnxruntime", "openvino", "jax"):
        try:
            with pytest.raises(_peers.Unsupported, match="mask"):
                _peers.make_runner(name, case, *w, 1)
        except _peers.Unavailable:
            pass
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now fails
    with pytest.raises(_peers.Unavailable, match="torch"):
        _peers.make_runner("torch", _race.Case("t", 1, 2, 3, 4), *w, 1)
    with pytest.raises(_peers.Unavailable, match="no 'nope' backend"):
        _peers.make_runner("gpulstm-nope", case, *w, 1)
