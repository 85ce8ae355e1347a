"""``gpulstm bench``: the single-layer race, the busy-machine race and the Python-threads bench.

    gpulstm bench [--quick] [--cell lstm|gru] [--peers P,..] [--threads 1,2] [--groups G,..]
                  [--size B,T,D,U] [--repeats N] [--passes N] [--cpus 0,1] [--json OUT]
    gpulstm bench --busy [--calls 200] [--loads idle,unpinned,pinned] [--load-cpu 1] ...
    gpulstm bench --pythreads [--seconds 2]

Every contender runs in its own worker process per thread count, pinned with
``taskset -c CPUS`` (see ``gpulstm._race``).
"""
import json
import sys

from gpulstm.cli import CommandError, _check_backend, _split


def add_parser(sub):
    s = sub.add_parser("bench", help="race gpulstm against torch / onnxruntime / OpenVINO / JAX, "
                                     "each in its own process; print ms and ratios")
    s.add_argument("--quick", action="store_true",
                   help="three small sizes, 3 samples (1-3 minutes on 2 cores)")
    s.add_argument("--cell", default="lstm",
                   help="the recurrent layer raced: lstm (default) or gru (Keras's GRU, reset_after=True, "
                        "against torch nn.GRU, the ONNX GRU op, OpenVINO and JAX)")
    s.add_argument("--backend", help="gpulstm backend(s), comma separated (default: every available one)")
    s.add_argument("--peers", help="comma separated among torch, onnxruntime, openvino, jax, tf_keras, "
                                   "torch-cuda, or 'all' (default: torch,onnxruntime,openvino,jax)")
    s.add_argument("--threads", default="1,all", help="thread counts, e.g. '1,2' (default: 1,all)")
    s.add_argument("--groups", help="case groups or tags: targets, streaming, nocudnn, long, deepbench, "
                                    "keras, quick, smoke, issue2, issue7, issue13, all "
                                    "(default: issue13, or smoke with --quick)")
    s.add_argument("--size", action="append", metavar="B,T,D,U",
                   help="an extra size to race (repeatable); alone, only these sizes run")
    s.add_argument("--repeats", type=int, help="samples per worker (default 7, quick 3)")
    s.add_argument("--passes", type=int, default=2,
                   help="workers per contender and thread count, order reversed every other pass; "
                        "the best median counts (default 2)")
    s.add_argument("--cpus", help="taskset -c list for every worker (default: the first "
                                  "N cores at N threads: 0 for 1 thread, 0,1 for 2)")
    s.add_argument("--max-load", type=float, metavar="CORES",
                   help="drop and redo samples during which other processes used more than "
                        "CORES cores (up to 3x the repeats); default: keep every sample")
    s.add_argument("--startup", action="store_true",
                   help="also time `import gpulstm` and a first call in fresh processes")
    s.add_argument("--busy", action="store_true",
                   help="busy-machine race: gpulstm-cpu and onnxruntime (or --backend/--peers), single "
                        "calls under a `while 1: pass` hog (median, 90th percentile)")
    s.add_argument("--calls", type=int, default=200, help="--busy: single calls per size (default 200)")
    s.add_argument("--loads", default="idle,unpinned,pinned",
                   help="--busy: loads among idle, unpinned, pinned (default: all three)")
    s.add_argument("--load-cpu", default="1", help="--busy: the core the pinned hog runs on (default 1)")
    s.add_argument("--pythreads", action="store_true",
                   help="Python threads sharing one model at (4,50,32,64): calls/s with 1 and 2")
    s.add_argument("--seconds", type=float, default=2.0, help="--pythreads: seconds per thread count")
    s.add_argument("--json", metavar="OUT", help="save the run (gpulstm-bench/2 JSON)")
    s.set_defaults(func=cmd_bench)
    return s


def _parse_size(text):
    from gpulstm import _cases

    try:
        B, T, D, U = (int(v) for v in text.split(","))
        if min(B, T, D, U) < 1:
            raise ValueError
    except ValueError:
        raise CommandError(f"Expected --size as four positive integers B,T,D,U. "
                           f"Received: --size={text!r}") from None
    return _cases.Case("custom", B, T, D, U)


def _threads(text):
    import os

    try:
        threads = [os.cpu_count() if t == "all" else int(t) for t in _split(text)] or [os.cpu_count()]
        if any(t < 1 for t in threads):
            raise ValueError
    except ValueError:
        raise CommandError(f"Expected --threads as positive integers or 'all', comma separated. "
                           f"Received: --threads={text!r}") from None
    return list(dict.fromkeys(threads))


def _contenders(args, backends=None, peers=None):
    """gpulstm backends then peers: the command line's, else ``backends``/``peers``, else every
    available backend and the default peers."""
    from gpulstm import _peers, dispatch

    backends = _split(args.backend) or backends or [n for n in dispatch.BACKENDS
                                                    if dispatch.BACKENDS[n].availability()[0]]
    for b in backends:
        _check_backend(b)
    peers = _split(args.peers) if args.peers is not None else list(peers or _peers.DEFAULT_PEERS)
    if peers == ["all"]:
        peers = list(_peers.PEERS)
    unknown = [p for p in peers if p not in _peers.PEERS]
    if unknown:
        raise CommandError(f"Unknown peer. Expected some of {list(_peers.PEERS)}. "
                           f"Received: --peers={args.peers!r}")
    return [f"gpulstm-{b}" for b in backends] + peers


def _cell_arg(args):
    from gpulstm import _cases

    if args.cell not in _cases.CELLS:
        raise CommandError(f"Expected --cell among {list(_cases.CELLS)}. Received: --cell={args.cell!r}")
    return args.cell


def _cases_of(args):
    import dataclasses

    from gpulstm import _cases

    cell = _cell_arg(args)
    groups = _split(args.groups) or ([] if args.size else ["smoke"] if args.quick else ["issue13"])
    cases = _cases.select(groups) + [_parse_size(s) for s in args.size or []]
    if not cases:
        raise CommandError(f"No benchmark case matches the groups. Expected names among "
                           f"{list(_cases.GROUPS) + list(_cases.TAGS) + ['all']}. "
                           f"Received: --groups={args.groups!r}")
    return [dataclasses.replace(c, cell=cell) for c in cases]


def _say(text):
    print(text, file=sys.stderr, flush=True)


def _progress(name, n, p, rows, load=None):
    _say(f"  {f'[{load}] ' if load else ''}{name} threads={n} pass {p + 1}: " + ", ".join(
        f"{r['case']} {_cell(r)}" for r in rows))


def _cell(row):
    from gpulstm import _results

    text = _results.cell_text(row)
    return text + (f" (p90 {row['p90_ms']:.3f})" if row.get("p90_ms") is not None else "")


def _race(args, threads, command):
    from gpulstm import _race, _results, _startup

    cases, contenders = _cases_of(args), _contenders(args)
    repeats = args.repeats or (3 if args.quick else 7)
    min_sample = 0.005 if args.quick else 0.03
    _say(f"gpulstm bench: {args.cell.upper()}, {len(cases)} cases x {len(threads)} thread count(s); contenders "
         f"{', '.join(contenders)}, each in its own process; best of {args.passes} pass(es), "
         f"median of {repeats} samples each")
    run = _race.race(cases, contenders, threads, repeats=repeats, min_sample_s=min_sample,
                     max_other_load=args.max_load, passes=args.passes, cpus=args.cpus,
                     progress=_progress, command=command)
    if args.startup:
        _say("measuring fresh-process start-up ...")
        run["startup"] = _startup.startup()
    print(_results.format_table(run, contenders=contenders))
    for line in _results.startup_lines(run):
        print(line)
    scaling = _results.thread_scaling_table(run)
    if scaling:
        print("\n" + scaling)
    return run


def _busy(args, threads, command):
    from gpulstm import _busy

    loads = _split(args.loads)
    if not loads or any(ld not in _busy.LOADS for ld in loads) or args.calls < 1:
        raise CommandError(f"Expected --loads among {list(_busy.LOADS)} and --calls >= 1. "
                           f"Received: --loads={args.loads!r} --calls={args.calls}")
    cases = _cases_of(args)
    contenders = _contenders(args, ["cpu"], ["onnxruntime"])  # busy_table compares these two
    _say(f"gpulstm bench --busy: {len(cases)} cases x {len(threads)} thread count(s) x loads "
         f"{', '.join(loads)}; {args.calls} single calls per size; {', '.join(contenders)}")
    run = _busy.busy_race(cases, threads, contenders=contenders, calls=args.calls, loads=loads,
                          cpus=args.cpus, load_cpu=args.load_cpu, command=command,
                          progress=lambda ld, *a: _progress(*a, load=ld))
    from gpulstm import _results

    print(_busy.busy_table(run["busy"]))
    scaling = _results.thread_scaling_table(_busy.idle_rows(run["busy"]))
    if scaling:
        print("\nIdle, single calls:\n" + scaling)
    return run


def _pythreads(args, command):
    from gpulstm import _pythreads
    from gpulstm._machine import machine_info
    from gpulstm._results import SCHEMA

    _say(f"gpulstm bench --pythreads: {_pythreads.SIZE}, 1 and 2 Python threads, ~{args.seconds:g} s each")
    section = _pythreads.run(seconds=args.seconds, cpus=args.cpus)
    for line in _pythreads.lines(section):
        print(line)
    return {"schema": SCHEMA, "created": _now(), "command": command,
            "machine": machine_info(), "settings": {"threads": [1]}, "results": [],
            "pythreads": section}


def _now():
    import datetime

    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def cmd_bench(args):
    from gpulstm import _results

    if args.passes < 1:
        raise CommandError(f"Expected --passes >= 1. Received: --passes={args.passes}")
    command = "gpulstm " + " ".join(args.argv)
    if args.pythreads:
        if _cell_arg(args) != "lstm":
            raise CommandError(f"--pythreads races an LSTM only. Received: --cell={args.cell!r}")
        run = _pythreads(args, command)
    else:
        threads = _threads(args.threads)
        run = _busy(args, threads, command) if args.busy else _race(args, threads, command)
    for line in _results.notes(run):
        print("note: " + line)
    env = run["machine"].get("env", {})
    if not args.pythreads:
        what = ("gpulstm / onnxruntime under the same load" if args.busy
                else "gpulstm / fastest installed peer")
        print(f"ms per call; ratio = {what}, < 1 means gpulstm is faster. Workers: `{run['settings']['worker_command']}`, OPENBLAS_CORETYPE="
              f"{env.get('OPENBLAS_CORETYPE') or 'unset'}, GPULSTM_NUMPY_TIER="
              f"{env.get('GPULSTM_NUMPY_TIER')}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(run, fh, indent=1)
        print(f"saved {args.json}")
    return 0
