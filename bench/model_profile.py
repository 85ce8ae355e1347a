"""A gpulstm model's per-layer profile: each layer's share of predict time and, for
LSTMs on the numba CPU backend, the kernel path the call took.

The path is read from the arguments ``kernels/cpu.py`` hands its compiled entry points
(``cpu_fast.run_rows`` / ``run_parallel``, the reference loop ``_forward_plain``),
wrapped only while the profile runs; if those change shape it reads "unknown".
"""
import contextlib
import time

from gpulstm.models import profile as _profile


def _describe_call(args, parallel):
    (x, W, WT, x_proj, _bias, ut, P, _rk, h, _c, _mask, _act, _ract, _f32, wide, blas,
     pfirst) = args[:17]
    B = h.shape[0]
    if P.size:
        rec = "panels"
        proj = ("x@W up front on panels" if pfirst else
                "x_proj given" if x_proj.size else "[x_t|h] stacked per step")
    else:
        rec = "blas" if blas else "gemv axpy" if B == 1 and not ut.size else \
            ("tiles 4x4" if wide else "tiles 4x2")
        proj = ("x_proj given/GEMM" if x_proj.size else "up front on tiles" if WT.size else
                "fused per step" if W.size else "?")
    blocks = f"{len(args[-1]) - 1} row blocks" if parallel else "1 thread"
    return f"{rec}; proj {proj}; {blocks}; B={B}"


@contextlib.contextmanager
def _kernel_spy():
    try:
        from gpulstm.kernels import cpu
    except ImportError:
        yield
        return
    fast, saved = cpu.cpu_fast, {}

    def wrap(name, parallel):
        orig = getattr(fast, name)

        def spy(*args):
            try:
                _profile.note(_describe_call(args, parallel))
            except Exception:  # the entry points changed shape
                _profile.note("unknown")
            return orig(*args)
        saved[name] = orig
        setattr(fast, name, spy)

    wrap("run_rows", False)
    wrap("run_parallel", True)
    plain = cpu._forward_plain

    def plain_spy(*args, **kwargs):
        _profile.note("reference loop (custom activation / recurrent dropout)")
        return plain(*args, **kwargs)
    cpu._forward_plain = plain_spy
    try:
        yield
    finally:
        for name, orig in saved.items():
            setattr(fast, name, orig)
        cpu._forward_plain = plain


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
