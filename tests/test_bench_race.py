"""The race of ``gpulstm bench``: one worker process per contender, passes, busy loads, Python threads.

Workers run in this process on fake contenders (``bench_fakes``) wherever the
orchestration is under test; a few tests start real workers on tiny sizes.
"""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from bench_fakes import fake_race
from gpulstm import _busy, _cases, _measure, _peers, _pythreads, _race, _results

CASE = _cases.Case("t", 2, 6, 3, 4)


def test_worker_statuses_and_samples(monkeypatch):
    names = ["gpulstm-slow", "peer-a", "missing", "nope", "crash", "wrong", "peer-b"]
    run, samples, workers = fake_race(monkeypatch, names)
    _results.check_run(run)
    rows = {r["contender"]: r for r in run["results"]}
    assert [r["contender"] for r in run["results"]] == names
    assert [w[0] for w in workers] == names  # one worker each
    assert rows["missing"]["status"] == "missing" and "pip install" in rows["missing"]["reason"]
    assert rows["nope"]["status"] == "unsupported"
    assert rows["crash"]["status"] == "failed" and "boom" in rows["crash"]["reason"]
    assert rows["wrong"]["status"] == "invalid" and rows["wrong"]["max_abs_err"] > 0.9
    for name in ("gpulstm-slow", "peer-a", "peer-b"):
        r = rows[name]
        assert r["status"] == "ok" and len(r["times_ms"]) == 3 and r["pass_medians_ms"] == [r["median_ms"]]
        assert r["median_ms"] == pytest.approx(float(np.median(r["times_ms"])))
        assert r["max_abs_err"] <= r["tolerance"] == 1e-5 and r["cpu_util"] is not None
    assert rows["gpulstm-slow"]["kind"] == "gpulstm" and rows["peer-a"]["kind"] == "peer"
    assert rows["gpulstm-slow"]["median_ms"] > 2.0  # the sleep is inside the clock
    # each worker: one warm-up batch, then its 3 samples; "wrong" is never timed
    assert [n for n, _ in samples] == [n for n in ("gpulstm-slow", "peer-a", "peer-b") for _ in range(4)]
    assert samples[1][1] == 1  # a 2 ms call fills a 0.5 ms sample alone


def test_a_gru_race_names_its_cell(monkeypatch):
    case = _cases.Case("t", 2, 6, 3, 4, cell="gru")
    run, _, workers = fake_race(monkeypatch, ["gpulstm-slow", "peer-a", "wrong"], case=case, repeats=1)
    _results.check_run(run)
    assert run["settings"]["cells"] == ["gru"] and [w[0] for w in workers] == ["gpulstm-slow", "peer-a", "wrong"]
    rows = {r["contender"]: r for r in run["results"]}
    for r in rows.values():
        assert r["case"] == "B=2 T=6 D=3 U=4 cell=gru" and r["cell"] == "gru" and r["flags"] == {"cell": "gru"}
    # the fakes compute the GRU reference: exact ones pass, the one off by 1 is caught
    assert rows["peer-a"]["status"] == "ok" and rows["peer-a"]["max_abs_err"] < 1e-6
    assert rows["wrong"]["status"] == "invalid"
    (entry,) = _results.ratio_rows(run)
    assert entry["case"].endswith("cell=gru") and entry["best_peer"] == "peer-a"


def test_passes_alternate_order_and_keep_the_best(monkeypatch):
    run, _, workers = fake_race(monkeypatch, ["gpulstm-slow", "peer-a", "peer-b"], threads=(1, 2),
                                repeats=1, passes=3)
    order = [(w[0], w[1]) for w in workers]
    fwd, back = ["gpulstm-slow", "peer-a", "peer-b"], ["peer-b", "peer-a", "gpulstm-slow"]
    assert order == [(n, t) for t in (1, 2) for n in fwd + back + fwd]
    for r in run["results"]:
        assert len(r["pass_medians_ms"]) == 3 and r["median_ms"] == min(r["pass_medians_ms"])
    assert [(r["threads"], r["contender"]) for r in run["results"]] == [(t, n) for t in (1, 2) for n in fwd]
    env = workers[0][2]
    assert env["GPULSTM_NUMPY_TIER"] == "0" and workers[0][3] == "0"  # 1 thread: 1 core
    assert {w[3] for w in workers if w[1] == 2} == {"0,1"}
    assert "OPENBLAS_CORETYPE" not in env and "OPENBLAS_L2_SIZE" not in env
    s = run["settings"]
    assert s["isolation"] == "process" and s["passes"] == 3
    assert s["cpus"] == "1 thread: 0; 2 threads: 0,1"
    assert s["worker_command"].startswith("taskset -c 0,1 ") or not _which("taskset")


def _which(name):
    import shutil

    return shutil.which(name)


def test_best_of_keeps_failed_passes_visible():
    ok = _measure.make_row(CASE, "x", 1, median_ms=2.0, times_ms=[2.0])
    bad = _measure.make_row(CASE, "x", 1, status="failed", reason="worker timed out")
    assert _race.best_of([bad, ok]) == dict(ok, pass_medians_ms=[None, 2.0])
    assert _race.best_of([bad, bad])["status"] == "failed"


def test_worker_env_per_peer(monkeypatch):
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    monkeypatch.setenv("XLA_FLAGS", "--xla_dump_to=/tmp/x")
    one = _race.worker_env("jax", 1)
    assert one["XLA_FLAGS"] == "--xla_dump_to=/tmp/x " + _peers.JAX_ONE_THREAD_FLAGS
    assert _race.worker_env("jax", 2)["XLA_FLAGS"] == "--xla_dump_to=/tmp/x"
    assert "OPENBLAS_CORETYPE" not in one and os.environ["OPENBLAS_CORETYPE"] == "Haswell"
    assert _race.worker_env("torch", 1)["GPULSTM_NUMPY_TIER"] == "0"


def test_noisy_samples_are_dropped_and_retried(monkeypatch):
    clock = {"all": 0.0, "own": 0.0}

    def busy():  # a neighbour burning 5 cores whenever "loud" is set
        clock["all"] += 5.0 if clock.get("loud") else 0.0
        return clock["all"], clock["own"]

    monkeypatch.setattr(_measure, "_busy_seconds", busy)

    def sample(max_load):
        row = _measure.make_row(CASE, "peer-a", 1)
        _measure.time_samples(row, lambda: None, 2, 0.0, max_load)
        return row

    quiet = sample(0.5)
    assert len(quiet["times_ms"]) == 2 and quiet["discarded_ms"] == [] and not quiet["noisy"]
    assert quiet["other_load"] == [0.0, 0.0]
    clock["loud"] = True
    loud = sample(0.5)
    assert loud["noisy"] and len(loud["discarded_ms"]) == 6 and len(loud["times_ms"]) == 6
    off = sample(None)
    assert len(off["times_ms"]) == 2 and not off["noisy"]


def test_single_call_timing_gives_median_and_p90():
    row = _measure.make_row(CASE, "x", 1)
    delays = iter([0.0] + [0.001] * 8 + [0.03] * 2)  # warm-up, then 10 calls: two slow

    _measure.time_each_call(row, lambda: time.sleep(next(delays)), 10)
    assert len(row["times_ms"]) == 10 and row["median_ms"] < 10 < 25 < row["p90_ms"]


def test_real_worker_and_its_failures():
    spec = {"contender": "onnxruntime", "threads": 1, "cases": [CASE.to_dict()], "repeats": 1,
            "min_sample_s": 0.0, "calls": None}
    seen = []
    rows, error = _race.run_worker(spec, "0", _race.worker_env("onnxruntime", 1), on_rows=seen.extend)
    assert error is None and rows == seen and len(rows) == 1
    assert rows[0]["status"] in ("ok", "missing") and rows[0]["case"] == CASE.name
    gru = _cases.Case("t", 2, 6, 3, 4, cell="gru")
    rows, error = _race.run_worker(dict(spec, cases=[gru.to_dict()]), "0", _race.worker_env("onnxruntime", 1))
    assert error is None and rows[0]["case"] == gru.name and rows[0]["cell"] == "gru"
    assert rows[0]["status"] == "missing" or rows[0]["max_abs_err"] <= rows[0]["tolerance"]
    rows, error = _race.run_worker({k: v for k, v in spec.items() if k != "cases"}, "", dict(os.environ))
    assert rows == [] and "exited with code 1" in error
    rows, error = _race.run_worker(dict(spec, module="gpulstm._no_such_module"), "", dict(os.environ))
    assert rows == [] and "No module named" in error


# ----------------------------------------------------------------------------- busy machine
def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_load_commands_are_bounded_and_pinned():
    cmd = _busy.load_command("pinned", "1", 60)
    assert cmd[-2:] == ["-c", "while 1: pass"] or "monotonic" in cmd[-1]
    if _which("taskset"):
        assert cmd[:3] == ["taskset", "-c", "1"]
    if _which("timeout"):
        assert ["timeout", "-s", "KILL", "60"] == cmd[cmd.index("timeout"):cmd.index("timeout") + 4]
    assert "taskset" not in _busy.load_command("unpinned", "1", 60)
    with pytest.raises(ValueError, match="load"):
        with _busy.cpu_load("heavy"):
            pass


def test_hog_dies_on_exit_and_on_errors(monkeypatch):
    pids = []
    real = subprocess.Popen

    def spy(*a, **kw):
        proc = real(*a, **kw)
        pids.append(proc.pid)
        return proc

    monkeypatch.setattr(_busy.subprocess, "Popen", spy)
    handler = signal.getsignal(signal.SIGTERM)
    with _busy.cpu_load("unpinned", limit_s=30) as fate:
        assert _alive(pids[-1])
    assert fate["alive_at_end"] is True and not _alive(pids[-1])
    with pytest.raises(KeyboardInterrupt):
        with _busy.cpu_load("pinned", "0", limit_s=30):
            raise KeyboardInterrupt
    assert not _alive(pids[-1])
    assert signal.getsignal(signal.SIGTERM) is handler  # the SIGTERM handler is put back
    with _busy.cpu_load("idle") as fate:
        assert fate == {"load": "idle", "alive_at_end": None}
    assert len(pids) == 2


def test_busy_race_tables(monkeypatch):
    loads_seen = []
    real_load = _busy.cpu_load

    def no_hog(load, cpu="1", limit_s=0):
        loads_seen.append(load)
        return real_load("idle")

    monkeypatch.setattr(_busy, "cpu_load", no_hog)
    cases = [CASE, _cases.Case("t", 1, 3, 2, 2)]
    run_calls, real_race = {}, _race.race

    def fake(cases_, contenders, threads, **kw):
        run_calls.setdefault("kw", kw)
        run, _, _ = fake_race(monkeypatch, contenders, threads, case=cases_[0], race=real_race)
        for r in run["results"]:
            r["p90_ms"] = r["median_ms"] * 1.5
        return run

    monkeypatch.setattr(_busy._race, "race", fake)
    # gpulstm-slow sleeps 2 ms per call: slower than peer-a by far at every load
    run = _busy.busy_race(cases, [1, 2], contenders=("gpulstm-slow", "peer-a"), calls=7)
    assert loads_seen == list(_busy.LOADS) and run["results"] == []
    assert run_calls["kw"]["calls"] == 7 and run_calls["kw"]["passes"] == 1
    busy = run["busy"]
    assert {r["load"] for r in busy["results"]} == set(_busy.LOADS) and busy["calls"] == 7
    table = _busy.busy_table(busy, mine="gpulstm-slow", peer="peer-a").splitlines()
    assert len(table) == 2 + 3 * 2 and all("MISSED" in line for line in table[2:])
    idle = _busy.idle_rows(busy)
    assert {r["load"] for r in idle["results"]} == {"idle"}
    _results.check_run(dict(run, results=busy["results"]))


def test_thread_scaling_verdicts():
    def row(case, n, ms):
        return _measure.make_row(case, "gpulstm-cpu", n, median_ms=ms, times_ms=[ms])

    a, b, c = (_cases.Case("t", k, 2, 3, 4) for k in (1, 2, 3))
    run = {"results": [row(a, 1, 1.0), row(a, 2, 0.6), row(b, 1, 1.0), row(b, 2, 1.04),
                       row(c, 1, 1.0), row(c, 2, 1.3), row(CASE, 1, 1.0)]}
    got = {r["case"]: (r["faster"], r["ok"]) for r in _results.thread_scaling(run)}
    assert got == {a.name: (True, True), b.name: (False, True), c.name: (False, False)}
    table = _results.thread_scaling_table(run)
    assert "| yes | - |" in table and "1.04 ok" in table and "1.30 MISSED" in table
    assert _results.thread_scaling_table({"results": []}) == ""


# ----------------------------------------------------------------------------- Python threads
def test_pythreads_worker_counts_and_compares():
    section = _pythreads.run(size=(2, 3, 4, 5), seconds=0.2, cpus="")
    assert "error" not in section, section
    assert [r["threads"] for r in section["results"]] == [1, 2]
    assert all(r["calls"] > 0 and r["identical"] for r in section["results"])
    assert section["valid"] and section["env"] == {"NUMBA_NUM_THREADS": "1", "GPULSTM_NUMPY_TIER": "0"}
    (line,) = _pythreads.lines(section)
    assert "bit-identical: yes" in line and "speed-up" in line
    assert _pythreads.lines({"error": "x"}) == ["Python threads: not measured (x)"]
    assert "OUTPUTS DIFFER" in _pythreads.lines(dict(section, results=[
        dict(r, identical=False) for r in section["results"]]))[0]


def test_schema_1_files_still_read(tmp_path):
    old = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                       "bench", "results", "cpu-2core-2026-11-26-final.json")
    if not os.path.exists(old):
        pytest.skip("no committed gpulstm-bench/1 file")
    run = _results.load_run(old)
    assert run["schema"] == "gpulstm-bench/1" and _results.ratio_rows(run)
    assert sys.modules["gpulstm._results"].SCHEMA == "gpulstm-bench/2"


# ----------------------------------------------------------------------------- report and suite
def _bench_module(name):
    here = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench")
    sys.path.insert(0, here)
    try:
        return __import__(name)
    finally:
        sys.path.remove(here)


def test_report_shows_the_issue_13_sections(monkeypatch):
    report = _bench_module("report")
    run, _, _ = fake_race(monkeypatch, ["gpulstm-cpu", "peer-a"], threads=(1, 2), repeats=1)
    rows = [dict(r, load=ld, p90_ms=r["median_ms"] * 2) for ld in ("idle", "pinned") for r in run["results"]]
    run["busy"] = {"loads": ["idle", "pinned"], "load_command": "taskset -c 1 python -c 'while 1: pass'",
                   "calls": 5, "results": rows}
    run["pythreads"] = {"error": "not today"}
    md = report.markdown(_results.check_run(run))
    assert "Each contender in its own process" in md and "2 threads vs 1 (gpulstm-cpu, this run)" in md
    assert "Busy machine: 5 single calls" in md and "| pinned | B=2 T=6 D=3 U=4 | 2 |" in md
    assert "2 threads vs 1, idle phase" in md and "Python threads: not measured (not today)" in md


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_suite_race_one_process_per_contender(tmp_path, cell):
    pytest.importorskip("pytest_benchmark")
    pytest.importorskip("onnxruntime")
    suite_race = _bench_module("suite_race")
    out = tmp_path / "run.json"
    assert suite_race.main(["--quick", "--groups", "smoke", "--contenders", "onnxruntime", "--cell", cell,
                            "--threads", "1", "--passes", "1", "--cpus", "", "--raw", str(tmp_path / "raw"),
                            "--json", str(out)]) == 0
    run = _results.load_run(out)
    rows = {r["contender"]: r for r in run["results"]}
    name = "B=1 T=100 D=32 U=128" + (" cell=gru" if cell == "gru" else "")
    assert rows["onnxruntime"]["status"] == "ok" and rows["onnxruntime"]["case"] == name
    assert rows["onnxruntime"]["cell"] == cell and run["settings"]["cells"] == [cell]
    assert os.listdir(tmp_path / "raw") == ["onnxruntime-1-0.json"]
    command = run["settings"]["worker_command"]
    assert "--contenders C" in command and f"--cell {cell}" in command


def test_notes_say_whether_one_thread_was_honoured():
    rows = [_measure.make_row(CASE, name, n, median_ms=1.0, times_ms=[1.0], cpu_util=util)
            for name, n, util in (("jax", 1, 1.1), ("jax", 1, 1.6), ("torch", 1, 0.98), ("torch", 2, 1.9))]
    (line,) = [n for n in _results.notes({"results": rows}) if n.startswith("cores")]
    assert line.endswith("jax 1.60 (setting not honoured), torch 0.98")
