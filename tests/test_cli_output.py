"""``gpulstm predict``'s files (issue 14 item 6): -o is exactly the file written, checked
before predicting, replaced atomically; .npz inputs."""
import os
import subprocess
import sys

import numpy as np
import pytest

from gpulstm import _arrayfiles
from gpulstm.models.functional import Model
from test_cli import _one_error_line, _run  # the CLI's runner and one-line error check

FIXTURES_IO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures_io")
ONE_OUT = os.path.join(FIXTURES_IO, "seq_emb.k3.keras")      # 1 input, 1 output
MULTI = os.path.join(FIXTURES_IO, "nest_func.k3.keras")      # inputs tok, aux; 4 outputs


def _cli(capsys, *argv):
    return _run(capsys, *map(str, argv))


def _fixture(name):
    return np.load(os.path.join(FIXTURES_IO, name + ".npz"))


@pytest.fixture
def one_input(tmp_path):
    d = _fixture("seq_emb.k3")
    np.save(tmp_path / "x.npy", d["x_0"])
    return tmp_path / "x.npy", d["y_0"]


@pytest.fixture
def no_predict(monkeypatch):
    """Fail the test if a prediction starts: the checks must come first."""
    def predict(*args, **kwargs):
        raise AssertionError("predict ran before the output was checked")
    monkeypatch.setattr(Model, "predict", predict)


def _close(got, want):
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * max(1.0, float(np.abs(want).max())))


def test_one_output_name_without_extension_is_kept(capsys, tmp_path, one_input):
    x, y = one_input
    code, out, err = _cli(capsys, "predict", ONE_OUT, x, "-o", tmp_path / "result", "--no-progress")
    assert code == 0, err
    assert sorted(os.listdir(tmp_path)) == ["result", "x.npy"]  # no result.npy
    _close(np.load(tmp_path / "result"), y)
    assert out.startswith(f"wrote {tmp_path / 'result'}:")


def test_several_outputs_write_exactly_the_npz_named(capsys, tmp_path):
    d = _fixture("nest_func.k3")
    np.savez(tmp_path / "x.npz", tok=d["x_0"], aux=d["x_1"])  # several inputs, by input name
    for name in ("y2.npz", "y2"):
        code, out, err = _cli(capsys, "predict", MULTI, tmp_path / "x.npz", "-o", tmp_path / name)
        assert code == 0, err
        assert out.startswith(f"wrote {tmp_path / name}: 4 outputs"), out
        with np.load(tmp_path / name) as got:
            assert got.files == ["arr_0", "arr_1", "arr_2", "arr_3"]
            for k in range(4):
                _close(got[f"arr_{k}"], d[f"y_{k}"])
    assert sorted(os.listdir(tmp_path)) == ["x.npz", "y2", "y2.npz"]


@pytest.mark.parametrize("model, name, needle", [
    (MULTI, "y2.npy", "4 outputs"),
    (ONE_OUT, "y.npz", "1 output"),
])
def test_extension_contradicting_content_is_refused_first(capsys, tmp_path, one_input, no_predict,
                                                          model, name, needle):
    code, _, err = _cli(capsys, "predict", model, one_input[0], "-o", tmp_path / name)
    line = _one_error_line(err)
    assert code == 1 and needle in line and name in line
    assert sorted(os.listdir(tmp_path)) == ["x.npy"]


def test_bad_destinations_are_refused_before_predicting(capsys, tmp_path, one_input, no_predict,
                                                        monkeypatch):
    (tmp_path / "outdir").mkdir()
    for dest, needle in [(tmp_path / "outdir", "folder"), (tmp_path / "nodir" / "y.npy", "exist")]:
        code, _, err = _cli(capsys, "predict", ONE_OUT, one_input[0], "-o", dest)
        assert code == 1 and needle in _one_error_line(err)
    monkeypatch.setattr(_arrayfiles.os, "access", lambda path, mode: False)
    code, _, err = _cli(capsys, "predict", ONE_OUT, one_input[0], "-o", tmp_path / "y.npy")
    assert code == 1 and "writable" in _one_error_line(err)
    assert sorted(os.listdir(tmp_path)) == ["outdir", "x.npy"] and not os.listdir(tmp_path / "outdir")


def test_failed_write_leaves_previous_file(capsys, tmp_path, one_input, monkeypatch):
    x, y = one_input
    out = tmp_path / "y.npy"
    assert _cli(capsys, "predict", ONE_OUT, x, "-o", out)[0] == 0
    before = out.read_bytes()

    def disk_full(fh, arr, **kwargs):
        fh.write(b"\x93NUMPY partial")
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(_arrayfiles.np, "save", disk_full)
    code, _, err = _cli(capsys, "predict", ONE_OUT, x, "-o", out)
    line = _one_error_line(err)
    assert code == 1 and "No space left" in line and str(out) in line
    assert out.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["x.npy", "y.npy"]  # no temporary file left


_FSIZE_DRIVER = """
import resource, sys
import numpy as np
from gpulstm import _arrayfiles
resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
try:
    _arrayfiles.write_outputs(sys.argv[1], [np.ones(100_000, np.float32)])  # 400 KB
except _arrayfiles.ArrayFileError as exc:
    print(exc)
    sys.exit(3)
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="RLIMIT_FSIZE needs POSIX")
def test_file_size_limit_leaves_previous_file(tmp_path):
    # A real failing write: the file-size limit stops it midway (EFBIG; Python ignores SIGXFSZ).
    out = tmp_path / "y.npy"
    _arrayfiles.write_outputs(out, [np.arange(10.0)])
    before = out.read_bytes()
    res = subprocess.run([sys.executable, "-c", _FSIZE_DRIVER, str(out)], capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 3, res.stderr
    assert str(out) in res.stdout and "unchanged" in res.stdout
    assert out.read_bytes() == before
    assert os.listdir(tmp_path) == ["y.npy"]  # the partial temporary file is gone


def test_npz_inputs(capsys, tmp_path, one_input):
    x, y = one_input
    np.savez(tmp_path / "one.npz", anything=np.load(x))  # one array: the input, whatever its key
    code, _, err = _cli(capsys, "predict", ONE_OUT, tmp_path / "one.npz", "-o", tmp_path / "y.npy")
    assert code == 0, err
    _close(np.load(tmp_path / "y.npy"), y)
    d = _fixture("nest_func.k3")
    np.savez(tmp_path / "wrong.npz", a=d["x_0"], b=d["x_1"])
    code, _, err = _cli(capsys, "predict", MULTI, tmp_path / "wrong.npz", "-o", tmp_path / "z.npz")
    line = _one_error_line(err)
    assert code == 1 and "['tok', 'aux']" in line and "['a', 'b']" in line
    (tmp_path / "broken.npz").write_bytes(b"PK\x03\x04 not really a zip")
    code, _, err = _cli(capsys, "predict", ONE_OUT, tmp_path / "broken.npz", "-o", tmp_path / "z.npy")
    assert code == 1 and "broken.npz" in _one_error_line(err)
    assert not (tmp_path / "z.npy").exists() and not (tmp_path / "z.npz").exists()
