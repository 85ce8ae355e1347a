"""The ``gpulstm`` command (also ``python -m gpulstm``).

Subcommands::

    gpulstm info [--json]
    gpulstm bench [--quick] [--backend B] [--peers torch,onnxruntime] [--threads 1,2]
                  [--groups targets,streaming] [--repeats N] [--json OUT.json]
    gpulstm predict MODEL INPUT.npy -o OUT.npy [--batch-size N] [--backend B]
    gpulstm summary FILE

Every error is one line on stderr (``gpulstm: error: ...``) and a non-zero exit
code: 1 for a failed command, 2 for a wrong command line.
"""
import argparse
import json
import os
import sys


class CommandError(Exception):
    """A failure to report as one line and exit code 1."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        # argparse prints usage plus the message; keep it to one line with a pointer.
        self.exit(2, f"gpulstm: error: {message} (see 'gpulstm --help')\n")


def _check_backend(name):
    """Validate a backend name early so a typo is an error before any work starts."""
    from gpulstm import dispatch

    try:
        dispatch.resolve_backend(name)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    except dispatch.BackendUnavailableError as exc:
        raise CommandError(str(exc)) from None


# ----------------------------------------------------------------------------- info
def cmd_info(args):
    from gpulstm._info import format_info, info

    data = info()
    print(json.dumps(data, indent=2) if args.json else format_info(data))
    return 0


# ----------------------------------------------------------------------------- bench
def _split(text):
    return [t.strip() for t in text.split(",") if t.strip()] if text else []


def _parse_size(text):
    from gpulstm import _race

    try:
        B, T, D, U = (int(v) for v in text.split(","))
        if min(B, T, D, U) < 1:
            raise ValueError
    except ValueError:
        raise CommandError(f"Expected --size as four positive integers B,T,D,U. "
                           f"Received: --size={text!r}") from None
    return _race.Case("custom", B, T, D, U)


def cmd_bench(args):
    from gpulstm import _peers, _race, _results, _startup, dispatch

    backends = _split(args.backend) or [n for n in dispatch.BACKENDS
                                        if dispatch.BACKENDS[n].availability()[0]]
    for b in backends:
        _check_backend(b)
    peers = _split(args.peers) if args.peers is not None else list(_peers.DEFAULT_PEERS)
    if peers == ["all"]:
        peers = list(_peers.PEERS)
    unknown = [p for p in peers if p not in _peers.PEERS]
    if unknown:
        raise CommandError(f"Unknown peer. Expected some of {list(_peers.PEERS)}. "
                           f"Received: --peers={args.peers!r}")
    try:
        threads = [None if t == "all" else int(t) for t in _split(args.threads)] or [None]
        if any(t is not None and t < 1 for t in threads):
            raise ValueError
    except ValueError:
        raise CommandError(f"Expected --threads as positive integers or 'all', comma separated. "
                           f"Received: --threads={args.threads!r}") from None
    groups = _split(args.groups) or ([] if args.size else ["quick"] if args.quick else ["issue7"])
    cases = _race.select(groups) + [_parse_size(s) for s in args.size or []]
    if not cases:
        raise CommandError(f"No benchmark case matches the groups. Expected names among "
                           f"{list(_race.GROUPS) + ['quick', 'issue2', 'issue7', 'all']}. "
                           f"Received: --groups={args.groups!r}")
    contenders = [f"gpulstm-{b}" for b in backends] + peers
    repeats = args.repeats or (5 if args.quick else 7)
    min_sample = 0.01 if args.quick else 0.03
    print(f"gpulstm bench: {len(cases)} cases x {len(threads)} thread setting(s); "
          f"contenders {', '.join(contenders)}; median of {repeats} interleaved samples",
          file=sys.stderr, flush=True)
    done = []

    def progress(rows):
        done.extend(rows)
        print(f"  {rows[0]['case']} threads={rows[0]['threads']}: "
              + ", ".join(f"{r['contender']} {_results.cell_text(r)}" for r in rows),
              file=sys.stderr, flush=True)

    run = _race.race(cases, contenders, threads, repeats=repeats, min_sample_s=min_sample,
                     max_other_load=args.max_load, progress=progress, command="gpulstm " + " ".join(args.argv))
    if args.startup:
        print("measuring fresh-process start-up ...", file=sys.stderr, flush=True)
        run["startup"] = _startup.startup()
    print(_results.format_table(run, contenders=contenders))
    for line in _results.startup_lines(run):
        print(line)
    for line in _results.notes(run):
        print("note: " + line)
    env = run["machine"]["env"]
    print(f"ms per call (median); ratio = gpulstm / fastest installed peer, < 1 means gpulstm is "
          f"faster. OPENBLAS_CORETYPE={env.get('OPENBLAS_CORETYPE') or 'unset'}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(run, fh, indent=1)
        print(f"saved {args.json}")
    return 0


# ----------------------------------------------------------------------------- predict / summary
def _loader(name):
    """``gpulstm.io.<name>``, or a clear error while model loading is not there yet."""
    try:
        import gpulstm.io as io_mod
        return getattr(io_mod, name)
    except (ImportError, AttributeError) as exc:
        raise CommandError(f"model loading is not available yet in this gpulstm build "
                           f"(gpulstm.io.{name}: {exc})") from None


def _need_file(path, what):
    if not os.path.exists(path):
        raise CommandError(f"{what} not found: {path!r}")


def _progress(total, enabled):
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit="sample", file=sys.stderr, leave=False)


def cmd_predict(args):
    import numpy as np

    _need_file(args.model, "model file")
    _need_file(args.input, "input file")
    if args.batch_size is not None and args.batch_size < 1:
        raise CommandError(f"Expected --batch-size >= 1. Received: --batch-size={args.batch_size}")
    if args.backend:
        _check_backend(args.backend)
    load_model = _loader("load_model")
    try:
        x = np.load(args.input, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise CommandError(f"cannot read {args.input!r} as a .npy array ({exc})") from None
    model = load_model(args.model)
    batch = args.batch_size or 32
    n = x.shape[0] if x.ndim else 0
    if n == 0:
        raise CommandError(f"Expected an input with a batch axis and at least one sample. "
                           f"Received: shape={x.shape}")
    bar = _progress(n, not args.no_progress and n > batch)
    outs = []
    for start in range(0, n, batch):
        outs.append(model.predict(x[start:start + batch], backend=args.backend or None))
        if bar is not None:
            bar.update(min(batch, n - start))
    if bar is not None:
        bar.close()
    if isinstance(outs[0], (list, tuple)):
        result = [np.concatenate([o[k] for o in outs]) for k in range(len(outs[0]))]
        if len(result) > 1:
            np.savez(args.output, *result)
            print(f"wrote {len(result)} outputs to {args.output}")
            return 0
        result = result[0]
    else:
        result = np.concatenate(outs)
    np.save(args.output, result)
    print(f"wrote {args.output}: shape {result.shape}, dtype {result.dtype}")
    return 0


def cmd_summary(args):
    _need_file(args.file, "model file")
    try:
        text = _loader("summary_text")(args.file)
    except CommandError:
        model = _loader("load_model")(args.file)
        text = model.summary()
    if text:
        print(text)
    return 0


# ----------------------------------------------------------------------------- main
def build_parser():
    from gpulstm._version import __version__

    p = _Parser(prog="gpulstm", description="Keras-exact LSTM inference without TensorFlow.")
    p.add_argument("--version", action="version", version=f"gpulstm {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    s = sub.add_parser("info", help="versions, backends, threads and cache (compiles nothing)")
    s.add_argument("--json", action="store_true", help="print JSON")
    s.set_defaults(func=cmd_info)

    s = sub.add_parser("bench", help="race gpulstm against torch / onnxruntime; print ms and ratios")
    s.add_argument("--quick", action="store_true", help="a small set of sizes (a few minutes on 2 cores)")
    s.add_argument("--backend", help="gpulstm backend(s), comma separated (default: every available one)")
    s.add_argument("--peers", help="comma separated among torch, onnxruntime, tf_keras, torch-cuda, "
                                   "or 'all' (default: torch,onnxruntime)")
    s.add_argument("--threads", default="all", help="thread counts, e.g. '1,all' (default: all)")
    s.add_argument("--groups", help="case groups or tags: targets, streaming, nocudnn, long, deepbench, "
                                    "keras, quick, issue2, issue7, all (default: issue7, or quick)")
    s.add_argument("--size", action="append", metavar="B,T,D,U",
                   help="an extra size to race (repeatable); alone, only these sizes run")
    s.add_argument("--repeats", type=int, help="interleaved samples per contender (default 7, quick 5)")
    s.add_argument("--max-load", type=float, metavar="CORES",
                   help="drop and redo rounds during which other processes used more than "
                        "CORES cores (up to 3x the repeats); default: keep every round")
    s.add_argument("--startup", action="store_true",
                   help="also time `import gpulstm` and a first call in fresh processes")
    s.add_argument("--json", metavar="OUT", help="save the run (gpulstm-bench/1 JSON)")
    s.set_defaults(func=cmd_bench)

    s = sub.add_parser("predict", help="run a saved model on a .npy input")
    s.add_argument("model")
    s.add_argument("input")
    s.add_argument("-o", "--output", required=True)
    s.add_argument("--batch-size", type=int)
    s.add_argument("--backend")
    s.add_argument("--no-progress", action="store_true")
    s.set_defaults(func=cmd_predict)

    s = sub.add_parser("summary", help="print a saved model's layers, shapes and parameter counts")
    s.add_argument("file")
    s.set_defaults(func=cmd_summary)
    return p


def main(argv=None):
    """Run the ``gpulstm`` command; return the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error already printed
        return exc.code if isinstance(exc.code, int) else 2
    args.argv = argv
    try:
        return args.func(args)
    except CommandError as exc:
        msg = str(exc)
    except (ValueError, OSError, RuntimeError, ImportError) as exc:
        msg = f"{type(exc).__name__}: {exc}" if not isinstance(exc, ValueError) else str(exc)
    except KeyboardInterrupt:
        msg = "interrupted"
    print("gpulstm: error: " + " ".join(msg.split()), file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
