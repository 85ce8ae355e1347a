"""The ``gpulstm`` command (also ``python -m gpulstm``).

Subcommands::

    gpulstm info [--json]
    gpulstm bench [--quick] [--backend B] [--peers torch,onnxruntime,openvino,jax] [--threads 1,2]
                  [--groups issue13] [--repeats N] [--passes N] [--cpus 0,1] [--json OUT.json]
    gpulstm bench --busy [--calls 200] | --pythreads      (gpulstm/_bench_cmd.py)
    gpulstm predict MODEL INPUT.npy|INPUT.npz -o OUT [--batch-size N] [--backend B]
    gpulstm summary FILE

``predict`` writes exactly ``OUT`` (through a temporary file renamed over it):
one output as ``.npy`` content, several as an ``.npz`` archive (see
:mod:`gpulstm._arrayfiles`).

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


# ----------------------------------------------------------------------------- bench (_bench_cmd)
def _split(text):
    return [t.strip() for t in text.split(",") if t.strip()] if text else []


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
    return tqdm(total=total, unit="sample", file=sys.stderr, leave=True)


def _rows(x, start, stop):
    return {k: v[start:stop] for k, v in x.items()} if isinstance(x, dict) else x[start:stop]


def cmd_predict(args):
    import numpy as np

    from gpulstm import _arrayfiles

    _need_file(args.model, "model file")
    _need_file(args.input, "input file")
    if args.batch_size is not None and args.batch_size < 1:
        raise CommandError(f"Expected --batch-size >= 1. Received: --batch-size={args.batch_size}")
    if args.backend:
        _check_backend(args.backend)
    _arrayfiles.check_destination(args.output)  # before any work: a bad -o costs nothing
    load_model = _loader("load_model")
    model = load_model(args.model)
    n_outputs = len(getattr(model, "outputs", None) or ())
    if n_outputs:
        _arrayfiles.check_name(args.output, n_outputs)
    x = _arrayfiles.read_inputs(args.input, getattr(model, "input_names", None) or [])
    first = next(iter(x.values())) if isinstance(x, dict) else x
    batch = args.batch_size or 32
    n = first.shape[0] if first.ndim else 0
    if n == 0:
        raise CommandError(f"Expected an input with a batch axis and at least one sample. "
                           f"Received: shape={first.shape}")
    bar = _progress(n, not args.no_progress and n > batch)
    outs = []
    for start in range(0, n, batch):
        outs.append(model.predict(_rows(x, start, start + batch), backend=args.backend or None))
        if bar is not None:
            bar.update(min(batch, n - start))
    if bar is not None:
        bar.close()
    if isinstance(outs[0], (list, tuple)):
        result = [np.concatenate([o[k] for o in outs]) for k in range(len(outs[0]))]
    else:
        result = [np.concatenate(outs)]
    written = _arrayfiles.write_outputs(args.output, result)
    if len(result) > 1:
        print(f"wrote {written}: {len(result)} outputs, "
              + ", ".join(f"arr_{k} shape {r.shape} {r.dtype}" for k, r in enumerate(result)))
    else:
        print(f"wrote {written}: shape {result[0].shape}, dtype {result[0].dtype}")
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
    from gpulstm import _bench_cmd
    from gpulstm._version import __version__

    p = _Parser(prog="gpulstm", description="Keras-exact LSTM inference without TensorFlow.")
    p.add_argument("--version", action="version", version=f"gpulstm {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    s = sub.add_parser("info", help="versions, backends, threads and cache (compiles nothing)")
    s.add_argument("--json", action="store_true", help="print JSON")
    s.set_defaults(func=cmd_info)

    _bench_cmd.add_parser(sub)  # gpulstm/_bench_cmd.py

    s = sub.add_parser("predict", help="run a saved model on a .npy (or .npz) input",
                       description="Run a saved model on a .npy input (or an .npz archive: one "
                                   "array, or one per model input by input name).")
    s.add_argument("model")
    s.add_argument("input")
    s.add_argument("-o", "--output", required=True, metavar="FILE",
                   help="exactly the file written: one output as .npy content, several as one "
                        ".npz archive (arr_0, arr_1, ... in output order); a .npz name for one "
                        "output or a .npy name for several is refused; a folder is refused")
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
