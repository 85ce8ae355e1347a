"""The ``gpulstm`` command: info, bench, predict, summary, and one-line errors."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from gpulstm import _results
from gpulstm.cli import main

FIXTURES_IO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures_io")
MODEL = os.path.join(FIXTURES_IO, "seq_emb.k3.keras")


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _one_error_line(err):
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gpulstm: error: "), err
    return lines[0]


def test_info_text_and_json(capsys):
    code, out, _ = _run(capsys, "info")
    assert code == 0
    assert "backends:" in out and "cpu:" in out and "num_threads:" in out and "cache:" in out
    code, out, _ = _run(capsys, "info", "--json")
    data = json.loads(out)
    assert code == 0 and data["backends"]["cpu"]["available"] is True


def test_python_dash_m_and_version():
    out = subprocess.run([sys.executable, "-m", "gpulstm", "info", "--json"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "versions" in json.loads(out.stdout)
    out = subprocess.run([sys.executable, "-m", "gpulstm", "frobnicate"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 2
    assert "frobnicate" in _one_error_line(out.stderr)


@pytest.mark.parametrize("argv, code, needle", [
    ([], 2, "COMMAND"),
    (["frobnicate"], 2, "frobnicate"),
    (["bench", "--backend", "cdua"], 1, "cdua"),
    (["bench", "--peers", "torch,tensorflowjs"], 1, "tensorflowjs"),
    (["bench", "--passes", "0"], 1, "--passes"),
    (["bench", "--busy", "--loads", "idle,stormy"], 1, "--loads"),
    (["bench", "--threads", "0"], 1, "--threads"),
    (["bench", "--size", "1,2,3"], 1, "--size"),
    (["bench", "--groups", "nothing"], 1, "nothing"),
    (["bench", "--cell", "rnn"], 1, "--cell"),
    (["bench", "--pythreads", "--cell", "gru"], 1, "--pythreads races an LSTM only"),
    (["predict", "absent.keras", "x.npy", "-o", "y.npy"], 1, "absent.keras"),
    (["predict", MODEL, "absent.npy", "-o", "y.npy"], 1, "absent.npy"),
    (["predict", MODEL], 2, "-o"),
    (["summary", "absent.keras"], 1, "absent.keras"),
])
def test_errors_are_one_line_with_exit_code(capsys, argv, code, needle):
    got, out, err = _run(capsys, *argv)
    assert got == code
    assert needle in _one_error_line(err)


def test_predict_rejects_bad_batch_size_and_backend(capsys, tmp_path):
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((2, 3), np.int32))
    code, _, err = _run(capsys, "predict", MODEL, str(x), "-o", str(tmp_path / "y.npy"),
                        "--batch-size", "0")
    assert code == 1 and "--batch-size" in _one_error_line(err)
    code, _, err = _run(capsys, "predict", MODEL, str(x), "-o", str(tmp_path / "y.npy"),
                        "--backend", "cdua")
    assert code == 1 and "cdua" in _one_error_line(err)
    bad = tmp_path / "bad.npy"
    bad.write_bytes(b"not an npy file")
    code, _, err = _run(capsys, "predict", MODEL, str(bad), "-o", str(tmp_path / "y.npy"))
    assert code == 1 and "bad.npy" in _one_error_line(err)


def test_bench_quick_size_runs_and_saves(capsys, tmp_path):
    out_json = tmp_path / "run.json"
    # torch-cuda never runs on a CPU machine: it must show as such and the run still succeed.
    code, out, err = _run(capsys, "bench", "--size", "2,5,3,4", "--peers", "onnxruntime,torch-cuda",
                          "--repeats", "2", "--threads", "1", "--passes", "1", "--json", str(out_json))
    assert code == 0, err
    run = _results.load_run(out_json)
    rows = {r["contender"]: r for r in run["results"]}
    assert rows["gpulstm-cpu"]["status"] == "ok" and len(rows["gpulstm-cpu"]["times_ms"]) == 2
    assert rows["gpulstm-cpu"]["max_abs_err"] <= rows["gpulstm-cpu"]["tolerance"]
    assert rows["torch-cuda"]["status"] == "missing"
    assert rows["onnxruntime"]["status"] in ("ok", "missing")
    table = out.splitlines()
    assert table[0].split()[:3] == ["case", "threads", "gpulstm-cpu"]
    assert table[1].startswith("B=2 T=5 D=3 U=4") and "not installed" in table[1]
    if rows["onnxruntime"]["status"] == "ok":
        ratio = rows["gpulstm-cpu"]["median_ms"] / rows["onnxruntime"]["median_ms"]
        assert f"{ratio:.2f} (onnxruntime)" in table[1]
    assert "OPENBLAS_CORETYPE=unset" in out and run["settings"]["threads"] == [1]
    assert run["settings"]["isolation"] == "process" and "gpulstm._measure" in run["settings"]["worker_command"]


def test_bench_gru_race_runs_and_saves(capsys, tmp_path):
    out_json = tmp_path / "run.json"
    code, out, err = _run(capsys, "bench", "--cell", "gru", "--size", "2,5,3,4", "--peers", "onnxruntime,torch",
                          "--repeats", "2", "--threads", "1", "--passes", "1", "--json", str(out_json))
    assert code == 0, err
    run = _results.load_run(out_json)
    rows = {r["contender"]: r for r in run["results"]}
    assert run["settings"]["cells"] == ["gru"] and all(r["cell"] == "gru" for r in run["results"])
    mine = rows["gpulstm-cpu"]
    assert mine["status"] == "ok" and mine["max_abs_err"] <= mine["tolerance"]
    assert {rows[p]["status"] for p in ("onnxruntime", "torch")} <= {"ok", "missing"}
    assert out.splitlines()[1].startswith("B=2 T=5 D=3 U=4 cell=gru") and "gpulstm bench: GRU" in err


def test_bench_quick_races_the_small_sizes(capsys, tmp_path):
    out_json = tmp_path / "run.json"
    code, out, err = _run(capsys, "bench", "--quick", "--peers", "onnxruntime", "--threads", "1",
                          "--passes", "1", "--json", str(out_json))
    assert code == 0, err
    run = _results.load_run(out_json)
    sizes = {(r["B"], r["T"], r["D"], r["U"]) for r in run["results"]}
    assert sizes == {(1, 100, 32, 128), (8, 20, 16, 16), (32, 50, 16, 16)}
    assert all(r["status"] == "ok" for r in run["results"] if r["contender"] == "gpulstm-cpu")
    assert run["settings"]["repeats"] == 3 and run["machine"]["env"]["GPULSTM_NUMPY_TIER"] == "0"


def test_bench_busy_and_pythreads_modes(capsys, tmp_path):
    out_json = tmp_path / "busy.json"
    code, out, err = _run(capsys, "bench", "--busy", "--size", "2,3,4,5", "--threads", "1",
                          "--loads", "pinned", "--calls", "5", "--json", str(out_json))
    assert code == 0, err
    busy = _results.load_run(out_json)["busy"]
    rows = {r["contender"]: r for r in busy["results"]}
    assert set(rows) == {"gpulstm-cpu", "onnxruntime"} and busy["fates"][0]["alive_at_end"] is True
    assert len(rows["gpulstm-cpu"]["times_ms"]) == 5 and rows["gpulstm-cpu"]["p90_ms"] > 0
    assert "| pinned | B=2 T=3 D=4 U=5 | 1 |" in out and "[pinned] gpulstm-cpu" in err
    code, out, err = _run(capsys, "bench", "--pythreads", "--seconds", "0.2", "--json", str(out_json))
    assert code == 0, err
    section = _results.load_run(out_json)["pythreads"]
    assert [r["threads"] for r in section["results"]] == [1, 2] and "bit-identical: yes" in out


def _io_or_skip():
    try:
        import gpulstm.io  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"model loading not available: {exc}")


def test_predict_matches_keras_fixture(capsys, tmp_path):
    _io_or_skip()
    data = np.load(os.path.join(FIXTURES_IO, "seq_emb.k3.npz"))
    x, y = data["x_0"], data["y_0"]
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "y.npy"
    code, stdout, err = _run(capsys, "predict", MODEL, str(tmp_path / "x.npy"), "-o", str(out),
                             "--batch-size", "3", "--backend", "cpu")
    assert code == 0, err
    got = np.load(out)
    assert got.shape == y.shape and str(got.shape) in stdout
    np.testing.assert_allclose(got, y, rtol=0, atol=1e-5 * max(1.0, float(np.abs(y).max())))


def test_predict_wrong_shape_is_one_line(capsys, tmp_path):
    _io_or_skip()
    np.save(tmp_path / "x.npy", np.zeros((2, 6, 3, 2), np.float32))
    code, _, err = _run(capsys, "predict", MODEL, str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.npy"))
    assert code == 1
    _one_error_line(err)
    assert not (tmp_path / "y.npy").exists()


def test_summary_prints_layers(capsys):
    _io_or_skip()
    code, out, err = _run(capsys, "summary", MODEL)
    assert code == 0, err
    assert "LSTM" in out or "lstm" in out
    assert "params" in out.lower()
