"""Turn a saved benchmark run into a Markdown ratio table and a PNG plot.

    python bench/report.py bench/results/RUN.json                   # Markdown on stdout
    python bench/report.py RUN.json --md OUT.md --png OUT.png --title "CPU, 2 cores"

RUN.json is a ``gpulstm bench --json`` run (schema ``gpulstm-bench/1``, see
``gpulstm._race``) or a ``pytest bench --benchmark-json`` file, converted on
reading.  The ratio is gpulstm's median time over the fastest peer that ran the
same case at the same thread count: below 1 gpulstm is faster.
"""
import argparse
import sys

from gpulstm import _results


def header(run):
    """Machine and settings lines above the table."""
    m, s = run.get("machine", {}), run.get("settings", {})
    versions = m.get("versions", {})
    peers = {}
    for row in run["results"]:
        if row.get("version") and row["kind"] == "peer":
            peers[row["contender"]] = row["version"]
    env = m.get("env") or {}
    blas = ", ".join(f"{k}={env.get(k) or 'unset'}" for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"))
    lines = [
        f"- Run: {run.get('created', '?')}, `{run.get('command', '?')}`",
        f"- Machine: {m.get('cpu', '?')}, {m.get('cpu_count', '?')} CPUs, {m.get('platform', '?')}"
        + (f"; GPU: {m['gpu']}" if m.get("gpu") else ""),
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items() if v)
        + ("; " + ", ".join(f"{k} {v}" for k, v in peers.items()) if peers else ""),
        f"- Source: git {m.get('git') or '?'}, kernels fingerprint {m.get('kernels_fingerprint') or '?'}",
        f"- Settings: {s.get('statistic', 'median')} of {s.get('repeats', '?')} "
        f"{'interleaved ' if s.get('interleaved') else ''}samples, dtype {s.get('dtype', 'float32')}, "
        f"threads {s.get('threads', '?')}; {blas}",
    ]
    if s.get("isolation") == "process":
        unset = ", ".join(f"{k} (was {v})" for k, v in (m.get("env_unset_in_workers") or {}).items() if v)
        lines.append(f"- Each contender in its own process per thread count, best of {s.get('passes')} "
                     f"pass(es) in alternating order: `{s.get('worker_command')}`"
                     + (f"; unset in the workers: {unset}" if unset else "")
                     + (f"; CPU kind: {m['isa']}" if m.get("isa") else ""))
    if m.get("loadavg_start") is not None:
        lines.append(f"- Load average (1 min) at start / end: {m['loadavg_start'][0]:.2f} / "
                     f"{(m.get('loadavg_end') or [float('nan')])[0]:.2f}")
    return "\n".join(lines)


# Issue 13's CPU targets (were issue 7's): gpulstm / best peer at most this, per size (B, T, D, U).
RATIO_TARGETS = {(1, 100, 32, 128): 1.0, (1, 1000, 16, 64): 1.0, (1, 100, 256, 512): 1.0,
                 (8, 100, 64, 256): 1.0, (64, 100, 32, 256): 1.0, (256, 50, 128, 512): 1.0,
                 (8, 20, 16, 16): 1.0, (32, 50, 16, 16): 1.0}
STREAM_VS_TORCH = 5.0  # stateful T=1, B=1 calls: torch / gpulstm at least this
IMPORT_S, FIRST_CALL_S = 0.3, 0.5


def targets(run, contender="gpulstm-cpu"):
    """Markdown checklist of the targets (issue 13's ratios, issue 7's streaming and start-up)
    met or missed by ``contender`` in ``run``."""
    lines = []
    for e in _results.ratio_rows(run):
        me = e["cells"].get(contender)
        if me is None or me["status"] != "ok":
            continue
        key = (me["B"], me["T"], me["D"], me["U"])
        if key in RATIO_TARGETS and not me["flags"]:
            ratio, goal = e["ratios"].get(contender), RATIO_TARGETS[key]
            if ratio is not None:
                mark = "x" if ratio <= goal else " "
                lines.append(f"- [{mark}] {e['case']}, {e['threads']} thread(s): {ratio:.2f} "
                             f"(target <= {goal}, best peer {e['best_peer']})")
        torch = e["cells"].get("torch")
        if me["flags"].get("stateful") and me["B"] == 1 and torch and torch["status"] == "ok":
            speedup = torch["median_ms"] / me["median_ms"]
            mark = "x" if speedup >= STREAM_VS_TORCH else " "
            lines.append(f"- [{mark}] {e['case']}, {e['threads']} thread(s): torch / gpulstm "
                         f"{speedup:.1f}x (target >= {STREAM_VS_TORCH:g}x)")
    st = run.get("startup")
    if st and "error" not in st:
        ok = st["import_s"] <= IMPORT_S and not st["numba_on_import"]
        lines.append(f"- [{'x' if ok else ' '}] import gpulstm {st['import_s'] * 1e3:.0f} ms, numba "
                     f"{'imported' if st['numba_on_import'] else 'not imported'} (target <= "
                     f"{IMPORT_S * 1e3:.0f} ms, never compiles)")
        mark = "x" if st["first_call_s"] <= FIRST_CALL_S else " "
        how = ""
        if st.get("first_call_tier"):
            how = f" on the {st['first_call_tier']} tier"
            if st.get("first_call_numba_s") is not None:
                how += f"; numba kernels from the first call: {st['first_call_numba_s'] * 1e3:.0f} ms"
        lines.append(f"- [{mark}] first call in a fresh process, warm cache: {st['first_call_s'] * 1e3:.0f} ms "
                     f"(target <= {FIRST_CALL_S * 1e3:.0f} ms){how}")
    return "\n".join(lines)


def sections(run):
    """Issue 13's extra tables, where the run has them: 2 threads vs 1, busy machine, Python threads."""
    from gpulstm import _busy, _pythreads

    parts = []
    scaling = _results.thread_scaling_table(run)
    if scaling:
        parts += ["2 threads vs 1 (gpulstm-cpu, this run):", "", scaling, ""]
    busy = run.get("busy")
    if busy:
        parts += [f"Busy machine: {busy['calls']} single calls per cell; hog `{busy['load_command']}` "
                  f"(unpinned: without taskset):", "", _busy.busy_table(busy), ""]
        scaling = _results.thread_scaling_table(_busy.idle_rows(busy))
        if scaling:
            parts += ["2 threads vs 1, idle phase (single calls):", "", scaling, ""]
    if run.get("pythreads"):
        parts += _pythreads.lines(run["pythreads"]) + [""]
    return parts


def markdown(run, title=None):
    """Header, ratio table and notes as one Markdown string."""
    parts = []
    if title:
        parts.append(f"### {title}\n")
    parts.append(header(run))
    if run["results"]:
        parts += ["", _results.format_table(run, markdown=True)]
    parts += [""] + sections(run)
    parts += _results.startup_lines(run)
    goals = targets(run)
    if goals:
        parts += ["", "Targets (ratios: issue 13; streaming and start-up: issue 7):", "", goals, ""]
    notes = _results.notes(run)
    if notes:
        parts += ["Empty cells:", ""] + [f"- {n}" for n in notes] + [""]
    return "\n".join(parts)


def plot(run, path, title=None):
    """Horizontal bars of gpulstm / best peer per case and thread count, from parity
    (1) to the ratio on a log scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker  # noqa: F401

    entries = [e for e in _results.ratio_rows(run) if e["ratios"]]
    mine = list(dict.fromkeys(c for e in entries for c in e["ratios"]))
    labels = [f"{e['case']} ({e['threads']}t)" for e in entries]
    fig, ax = plt.subplots(figsize=(8, 0.3 * max(4, len(entries) * max(1, len(mine))) + 1.2))
    height = 0.8 / max(1, len(mine))
    seen = []
    for k, name in enumerate(mine):
        ys = [i + k * height for i in range(len(entries))]
        vals = [e["ratios"].get(name) or float("nan") for e in entries]
        # bars grow from 1 (parity) to the ratio, so their length means something on a log axis
        ax.barh(ys, [v - 1.0 for v in vals], left=1.0, height=height, label=name)
        for y, v in zip(ys, vals):
            if v == v:
                seen.append(v)
                ax.annotate(f"{v:.2f}", (v, y), xytext=(3 if v >= 1 else -3, 0),
                            textcoords="offset points", va="center",
                            ha="left" if v >= 1 else "right", fontsize=7)
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_xscale("log")
    if seen:
        lo, hi = min(0.5, min(seen) / 1.25), max(2.0, max(seen) * 1.25)
        ax.set_xlim(lo, hi)
        ticks = [t for t in (0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10) if lo <= t <= hi]
        ax.xaxis.set_major_locator(matplotlib.ticker.FixedLocator(ticks))
    ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_yticks([i + 0.4 - height / 2 for i in range(len(entries))])
    ax.set_yticklabels(labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("time / fastest peer (< 1: gpulstm faster)")
    ax.set_title(title or "gpulstm vs fastest peer")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", help="saved run: gpulstm-bench/1 JSON or pytest-benchmark JSON")
    p.add_argument("--md", help="write the Markdown here (default: stdout)")
    p.add_argument("--png", help="write the plot here")
    p.add_argument("--title")
    args = p.parse_args(argv)
    try:
        run = _results.load_run(args.run)
    except (OSError, ValueError, KeyError) as exc:
        print(f"report: error: {args.run}: {exc}", file=sys.stderr)
        return 1
    text = markdown(run, args.title)
    if args.md:
        with open(args.md, "w") as fh:
            fh.write(text)
    else:
        print(text)
    if args.png:
        plot(run, args.png, args.title)
    return 0


if __name__ == "__main__":
    sys.exit(main())
