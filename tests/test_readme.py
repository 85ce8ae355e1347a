"""Every command of the README runs as written, from a folder laid out like the clone's root.

The shell commands run in order in a temporary folder (``examples/`` and ``bench/``
linked in, as in a fresh clone), with ``python`` and ``gpulstm`` meaning this
interpreter and its gpulstm; then the Python snippets run there, on the files
``examples/make_readme_files.py`` wrote. Skipped, each with its reason in SKIP:
installs, the test suite itself, the minutes-long benchmark, and the Dask snippet
(a process cluster; tests/test_dask.py covers the API).
"""
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SKIP = {
    "pip install": "installs: CI has installed the package and its extras already",
    "python3 -m pytest": "the test suite itself",
    "NUMBA_ENABLE_CUDASIM=1 python3 -m pytest": "the test suite itself (simulator job)",
    "gpulstm bench": "minutes of timing on 2 cores; tests/test_cli.py runs a one-size bench",
    "from dask.distributed import Client": "starts a process cluster; tests/test_dask.py "
                                          "covers gpulstm.dask",
}


def _blocks(lang):
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as fh:
        text = fh.read()
    return re.findall(r"```" + lang + r"\n(.*?)```", text, flags=re.S)


def _shell_commands():
    cmds = []
    for block in _blocks("bash"):
        for line in block.splitlines():
            line = line.split("  #")[0].strip()
            if line and not line.startswith("#"):
                cmds += [c.strip() for c in line.split("&&")]
    return cmds


def _skipped(code):
    """The reason ``code`` is not run, or None."""
    return next((why for start, why in SKIP.items() if start in code), None)


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    """A folder laid out like the clone's root, with ``python``/``gpulstm`` on PATH."""
    root = tmp_path_factory.mktemp("clone")
    for name in ("examples", "bench"):
        os.symlink(os.path.join(ROOT, name), root / name)
    bin_dir = root / ".bin"
    bin_dir.mkdir()
    for name, args in (("python", ""), ("python3", ""), ("gpulstm", " -m gpulstm")):
        path = bin_dir / name
        path.write_text(f'#!/bin/sh\nexec "{sys.executable}"{args} "$@"\n')
        path.chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
               COLUMNS="100", MPLBACKEND="Agg")
    env.pop("GPULSTM_NUMPY_TIER", None)  # as a user runs them (tests/conftest.py sets it)
    return root, env


def test_readme_shell_commands_run(clone):
    root, env = clone
    cmds = _shell_commands()
    assert "python examples/make_readme_files.py" in cmds and len(cmds) >= 8
    ran = []
    expect = {"model.keras", "x.npy", "y.npy", "report.md", "report.png"}
    try:
        import matplotlib  # noqa: F401  (the plot needs the bench extra)
    except ImportError:
        expect.discard("report.png")
    for cmd in cmds:
        if _skipped(cmd):
            continue
        if "report.png" not in expect:
            cmd = cmd.replace(" --png report.png", "")
        out = subprocess.run(["sh", "-c", cmd], cwd=root, env=env, capture_output=True,
                             text=True, timeout=600)
        assert out.returncode == 0, f"README command failed: {cmd}\n{out.stderr[-2000:]}"
        ran.append(cmd)
    assert expect <= set(os.listdir(root))
    assert any(c.startswith("gpulstm predict") for c in ran)
    assert any(c.startswith("python bench/report.py") for c in ran)


def test_readme_python_snippets_run(clone):
    root, env = clone
    if not (root / "model.keras").exists():
        subprocess.run(["sh", "-c", "python examples/make_readme_files.py"], cwd=root, env=env,
                       check=True, capture_output=True, timeout=300)
    snippets = [s for s in _blocks("python") if not _skipped(s)]
    assert len(snippets) >= 3
    for code in snippets:
        out = subprocess.run([sys.executable, "-c", code], cwd=root, env=env,
                             capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, f"README snippet failed:\n{code}\n{out.stderr[-2000:]}"
