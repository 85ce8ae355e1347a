"""A gpulstm model's per-layer profile: each layer's share of predict time and, for
LSTMs on the numba CPU backend, the kernel path the call took.

The path is read from the arguments ``kernels/cpu.py`` hands its compiled entry points
(``cpu_fast.run_rows`` / ``cpu.run_parallel``, the reference loop ``_forward_plain``),
wrapped only while the profile runs; if those change shape it reads "unknown".
"""
import contextlib
import time

from gpulstm.models import profile as _profile


def _describe_call(args, parallel, kind):
    (x, W, WT, x_proj, _bias, ut, P, _rk, h, _c, _mask, _act, _ract, _f32, _wide, blas,
     pfirst) = args[:17]
    B = h.shape[0]
    if P.size:
        rec = kind  # a panel kernel
        proj = ("x@W up front on panels" if pfirst else
                "x_proj given" if x_proj.size else "[x_t|h] stacked per step")
    else:
        rec = "blas" if blas else "gemv axpy" if B == 1 and not ut.size else kind
        proj = ("x_proj given/GEMM" if x_proj.size else "up front on tiles" if WT.size else
                "fused per step" if W.size else "?")
    blocks = f"{len(args[22]) - 1} row blocks over {args[23]} threads" if parallel else \
        "1 thread"
    return f"{rec}; proj {proj}; {blocks}; B={B}"


@contextlib.contextmanager
def _kernel_spy():
    try:
        from gpulstm.kernels import cpu
    except ImportError:
        yield
        return
    kind = getattr(cpu, "product_kernel", lambda: "?")()
    saved = []

    def wrap(module, name, describe):
        orig = getattr(module, name)

        def spy(*args, **kwargs):
            try:
                _profile.note(describe(args))
            except Exception:  # the entry points changed shape
                _profile.note(f"{name} (arguments not understood)")
            return orig(*args, **kwargs)
        saved.append((module, name, orig))
        setattr(module, name, spy)

    wrap(cpu.cpu_fast, "run_rows", lambda a: _describe_call(a, False, kind))
    # run_parallel(args, bounds, n, ticket): run_rows' arguments as one tuple
    wrap(cpu, "run_parallel", lambda a: _describe_call(tuple(a[0]) + a[1:], True, kind))
    split = getattr(cpu, "cpu_split", None)
    if split is not None:
        wrap(split, "forward", lambda a: f"{kind}; units split over {a[13]} threads per "
             f"step (cpu_split); x_proj {'given' if a[12] is not None else 'inside'}; "
             f"B={a[4].shape[0]}")
    wrap(cpu, "_forward_plain", lambda a: "reference loop (custom activation / dropout)")
    try:
        yield
    finally:
        for module, name, orig in saved:
            setattr(module, name, orig)


def run(predict, xs, batch):
    """Profile one ``predict(xs, batch)``: ``{"total_s", "layers": [...]}``."""
    with _kernel_spy(), _profile.profile() as rec:
        t0 = time.perf_counter()
        predict(xs, batch)
        total = time.perf_counter() - t0
    layers = [{"layer": name, "class": kind, "seconds": s, "share": s / total, "calls": n,
               "paths": notes} for name, kind, s, n, notes in rec.rows()]
    return {"total_s": total, "layers": layers,
            "outside_layers_share": 1.0 - sum(r["share"] for r in layers)}


def describe(prof):
    parts = []
    for r in prof["layers"]:
        path = f" [{'; '.join(r['paths'])}]" if r["paths"] else ""
        parts.append(f"{r['layer']} ({r['class']}) {100 * r['share']:.0f}%{path}")
    parts.append(f"outside layers {100 * prof['outside_layers_share']:.0f}%")
    return ", ".join(parts)
