"""The pytest-benchmark suite ``bench/bench_cpu.py`` raced one contender per process.

    python bench/suite_race.py --groups issue13 --threads 1,2 --json bench/results/RUN.json
    python bench/suite_race.py --quick --contenders gpulstm-cpu,onnxruntime --threads 1
    python bench/suite_race.py --cell gru --groups issue13 --threads 1,2   # the GRU race

For every thread count and pass, each contender runs alone in
``taskset -c CPUS python -m pytest bench/bench_cpu.py --benchmark-only --contenders C
--threads N ...`` with the environment of ``gpulstm bench``'s workers (NumPy tier off,
OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE unset); the contender order is reversed every other
pass and each cell keeps the best of the passes' medians.  The pytest-benchmark files
are merged into one ``gpulstm-bench/2`` run (``bench/report.py`` reads it); ``--raw DIR``
keeps them.  A plain ``pytest bench --benchmark-only`` runs every contender in one
process, one after another: handy for a quick look, not for ratios.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

from gpulstm import _cases, _peers, _race, _results

HERE = os.path.dirname(os.path.abspath(__file__))
SUITE = os.path.join(HERE, "bench_cpu.py")


def suite_args(contender, threads, groups, json_path, quick=False, extra=(), cell="lstm"):
    """The pytest arguments of one suite process."""
    args = [SUITE, "--benchmark-only", "-q", "-p", "no:cacheprovider", "--contenders", contender,
            "--threads", str(threads), "--groups", groups, "--cell", cell, "--benchmark-json", json_path]
    return args + (["--quick"] if quick else []) + list(extra)


def suite_cases(groups, quick, cell="lstm"):
    import dataclasses

    cases = [dataclasses.replace(c, cell=cell) for c in _cases.select(_split(groups))]
    return [c for c in cases if "quick" in c.tags] if quick else cases


def _split(text):
    return [t.strip() for t in text.split(",") if t.strip()]


def run_suite(contender, n, groups, cpus, tmp, quick=False, extra=(), timeout=_race.TIMEOUT_S, cell="lstm"):
    """One suite process: ``(rows, error)`` like ``gpulstm._race.run_worker``."""
    path = os.path.join(tmp, f"{contender}-{n}-{len(os.listdir(tmp))}.json")
    cmd = _race.worker_command(cpus, "pytest", suite_args(contender, n, groups, path, quick, extra, cell))
    try:
        out = subprocess.run(cmd, cwd=os.path.dirname(HERE), env=_race.worker_env(contender, n),
                             capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return [], f"suite timed out after {timeout:g} s"
    tail = next((ln for ln in reversed(out.stdout.splitlines()) if ln.strip()), "no output")
    try:  # pytest-benchmark leaves an empty file when every benchmark was skipped
        with open(path) as fh:
            rows = _results.from_pytest_benchmark(json.load(fh))["results"]
    except (OSError, ValueError):
        return [], f"pytest exited with code {out.returncode}: {tail}"
    # cases the suite skipped (not installed, cannot express it) or failed get no row
    return rows, f"no benchmark from the suite (pytest: {tail})"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--contenders", default="gpulstm-cpu," + ",".join(_peers.DEFAULT_PEERS))
    p.add_argument("--threads", default="1,2")
    p.add_argument("--groups", default="issue13")
    p.add_argument("--quick", action="store_true", help="the suite's quick subset of those groups")
    p.add_argument("--cell", default="lstm", choices=_cases.CELLS, help="the recurrent layer raced")
    p.add_argument("--passes", type=int, default=2)
    p.add_argument("--cpus", help="taskset -c list (default: the first N cores at N threads)")
    p.add_argument("--json", help="save the merged run here")
    p.add_argument("--raw", help="keep the pytest-benchmark files in this folder")
    p.add_argument("pytest_args", nargs="*", help="more pytest arguments (after --)")
    args = p.parse_args(argv)
    contenders, threads = _split(args.contenders), [int(t) for t in _split(args.threads)]
    cases = suite_cases(args.groups, args.quick, args.cell)
    if not cases or not contenders or not threads or args.passes < 1:
        p.error("no case, contender or thread count to race")
    unknown = [c for c in contenders if not c.startswith("gpulstm-") and c not in _peers.PEERS]
    if unknown:
        p.error(f"unknown contenders {unknown}; peers are {list(_peers.PEERS)}")
    cpus = args.cpus  # None: the first N cores at N threads (_race.cpus_for)
    template = " ".join(_race.worker_command(_race.cpus_for(max(threads), cpus), "pytest", suite_args("C", "N", args.groups, "OUT.json",
                                                                         args.quick, args.pytest_args, args.cell)))
    run = _race.new_run(contenders, threads, "python bench/suite_race.py " + " ".join(argv or sys.argv[1:]),
                        _race.settings(threads, 5 if args.quick else 7, 0.01 if args.quick else 0.03, None,
                                       args.passes, None, cpus, command=template))
    with tempfile.TemporaryDirectory() as tmp:
        raw = args.raw or tmp
        os.makedirs(raw, exist_ok=True)
        _race.run_all(run, cases, contenders, threads, args.passes,
                      lambda name, n, k: _one(name, n, k, args, cpus, raw), absent="missing")
    print(_results.format_table(run, contenders=contenders))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(run, fh, indent=1)
        print(f"saved {args.json}")
    return 0


def _one(name, n, k, args, cpus, raw):
    rows, error = run_suite(name, n, args.groups, _race.cpus_for(n, cpus), raw, args.quick, args.pytest_args, cell=args.cell)
    print(f"  {name} threads={n} pass {k + 1}: " + (", ".join(
        f"{r['case']} {_results.cell_text(r)}" for r in rows) or error), file=sys.stderr, flush=True)
    return rows, error


if __name__ == "__main__":
    sys.exit(main())
