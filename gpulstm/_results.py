"""Saved benchmark runs: the JSON schema, its check, and the ratio table.

Saved runs follow one JSON schema, ``SCHEMA`` (checked by ``check_run``); files of
the previous version, ``gpulstm-bench/1`` (one process, interleaved contenders),
read the same way, without the fields marked /2::

    {"schema": "gpulstm-bench/2", "created": ISO-8601 str, "command": str,
     "machine": {...},   # platform, cpu, cores, gpu, library versions, env (OPENBLAS_*, ...)
     "settings": {"repeats": int, "min_sample_s": float, "statistic": str,
                  "interleaved": bool, "threads": [int, ...],
                  # /2: "isolation": "process", "passes": int, "order": "alternating",
                  # "cpus": taskset list, "worker_command": str, "worker_env": {...},
                  # "calls": int | null (single-call timing), "peers": {name: how run},
                  # "cells": ["lstm" | "gru", ...] (the layers raced; absent: LSTM)
                  ...},
     "results": [{"case": str, "group": str, "B": int, "T": int, "D": int, "U": int,
                  "flags": {...},   # {"cell": "gru"} for a GRU case (its name ends "cell=gru")
                  "threads": int, "contender": str,
                  "kind": "gpulstm" | "peer", "device": "cpu" | "cuda", "dtype": "float32",
                  "status": "ok" | "missing" | "unsupported" | "invalid" | "failed",
                  "reason": str | null, "version": str | null,
                  "median_ms": float | null, "times_ms": [float, ...],
                  "first_call_ms": float | null, "max_abs_err": float | null,
                  "tolerance": float | null,
                  # optional: samples dropped for neighbour load, the load (cores) of each
                  # kept sample, and whether too few quiet rounds forced using all of them
                  "discarded_ms": [float, ...], "other_load": [float | null, ...],
                  "noisy": bool,
                  # /2, optional: the median of every pass (best one reported), the
                  # cores the worker kept busy while timed (> 1 at 1 thread: the
                  # setting was not honoured), the 90th percentile (single-call timing),
                  # the runner's notes
                  "pass_medians_ms": [float | null, ...], "cpu_util": float | null,
                  "p90_ms": float, "notes": str | null,
                  # optional (since the GRU race): the recurrent layer, "lstm" or "gru"
                  "cell": str}, ...],
     # optional: fresh-process costs (``gpulstm._startup.startup``)
     "startup": {"import_s": float, "first_call_s": float, "cold_first_call_s": float,
                 "numba_on_import": bool, "samples": [...],
                 # since the NumPy tier: which tier ran the first call, and the first
                 # call with the tier off (numba kernels, warm cache)
                 "first_call_tier": "numpy" | "numba" | "numba/numpy" (processes
                 differed), "first_call_numba_s": float}
                | {"error": str},
     # /2, optional: the busy-machine race (``gpulstm._busy``) and Python threads
     # sharing one model (``gpulstm._pythreads``)
     "busy": {"loads": [str, ...], "load_command": str, "calls": int,
              "results": [row + {"load": str, "p90_ms": float}, ...]},
     "pythreads": {"size": [B, T, D, U], "seconds": float, "env": {...},
                   "results": [{"threads": int, "calls": int, "calls_per_s": float,
                                "identical": bool, "cpu_util": float}, ...],
                   "speedup": float, ...} | {"error": str}}

The ratio of a (case, threads) row is gpulstm's median over the best ``ok`` peer's.
"""
import json

SCHEMA = "gpulstm-bench/2"
SCHEMAS = ("gpulstm-bench/1", SCHEMA)  # every version ``check_run`` reads
STATUSES = ("ok", "missing", "unsupported", "invalid", "failed")


def check_run(run):
    """Raise ValueError unless ``run`` follows ``SCHEMA``."""
    def need(obj, key, types, where):
        if key not in obj or not isinstance(obj[key], types):
            raise ValueError(f"Expected {where}[{key!r}] of type {types}. Received: {obj.get(key)!r}")

    if not isinstance(run, dict) or run.get("schema") not in SCHEMAS:
        raise ValueError(f"Expected a run with schema among {SCHEMAS}. Received: "
                         f"schema={run.get('schema') if isinstance(run, dict) else type(run).__name__!r}")
    for key, types in (("created", str), ("machine", dict), ("settings", dict), ("results", list)):
        need(run, key, types, "run")
    num = (int, float)
    for i, row in enumerate(run["results"]):
        where = f"results[{i}]"
        for key in ("B", "T", "D", "U", "threads"):
            need(row, key, int, where)
        for key in ("case", "group", "contender", "kind", "device", "dtype", "status"):
            need(row, key, str, where)
        need(row, "flags", dict, where)
        need(row, "times_ms", list, where)
        if row["status"] not in STATUSES or row["kind"] not in ("gpulstm", "peer"):
            raise ValueError(f"Expected status in {STATUSES} and kind gpulstm/peer. "
                             f"Received: {where} status={row['status']!r} kind={row['kind']!r}")
        if row["status"] == "ok":
            need(row, "median_ms", num, where)
            if not row["times_ms"]:
                raise ValueError(f"Expected samples in {where}['times_ms'] for an ok row. Received: []")
    return run


def load_run(path):
    """Read a saved run (``SCHEMA`` JSON, or a pytest-benchmark JSON converted to it)."""
    with open(path) as fh:
        data = json.load(fh)
    if isinstance(data, dict) and "benchmarks" in data and "schema" not in data:
        data = from_pytest_benchmark(data)
    return check_run(data)


def from_pytest_benchmark(data):
    """Convert ``pytest --benchmark-json`` output of ``bench/`` into a ``SCHEMA`` run."""
    results = []
    for b in data["benchmarks"]:
        e = b.get("extra_info", {})
        if "contender" not in e:
            continue
        row = {k: e[k] for k in ("case", "group", "B", "T", "D", "U", "flags", "threads",
                                 "contender", "kind", "device", "dtype")}
        row["cell"] = e.get("cell", "lstm")
        stats = b["stats"]
        row.update(status="ok", reason=None, version=e.get("version"),
                   median_ms=stats["median"] * 1e3, times_ms=[t * 1e3 for t in stats.get("data", [])]
                   or [stats["median"] * 1e3], first_call_ms=None,
                   max_abs_err=e.get("max_abs_err"), tolerance=e.get("tolerance"))
        row["rounds"] = stats.get("rounds") or len(row["times_ms"])
        results.append(row)
    rounds = sorted({r.pop("rounds") for r in results})
    return {"schema": SCHEMA, "created": data.get("datetime", ""), "command": "pytest bench",
            "machine": {**data.get("machine_info", {}).get("gpulstm", data.get("machine_info", {})),
                        "pytest_benchmark": True},
            "settings": {"statistic": "median", "interleaved": False, "source": "pytest-benchmark",
                         "repeats": rounds[0] if len(rounds) == 1 else rounds or "?",
                         "threads": sorted({r["threads"] for r in results}, key=str)},
            "results": results}


def ratio_rows(run):
    """One dict per (case, threads): contenders' medians, the best peer and the ratio."""
    table = {}
    for row in run["results"]:
        key = (row["case"], row["threads"])
        entry = table.setdefault(key, {"case": row["case"], "group": row["group"],
                                       "threads": row["threads"], "cells": {}})
        entry["cells"][row["contender"]] = row
    out = []
    for entry in table.values():
        cells = entry["cells"]
        peers = [r for r in cells.values() if r["kind"] == "peer" and r["status"] == "ok"]
        mine = [r for r in cells.values() if r["kind"] == "gpulstm" and r["status"] == "ok"]
        best = min(peers, key=lambda r: r["median_ms"]) if peers else None
        entry["best_peer"] = best["contender"] if best else None
        entry["ratios"] = {r["contender"]: (r["median_ms"] / best["median_ms"] if best else None)
                           for r in mine}
        out.append(entry)
    return out


def cell_text(row):
    if row is None:
        return "-"
    if row["status"] == "ok":
        return f"{row['median_ms']:.3f}" + ("*" if row.get("noisy") else "")
    return {"missing": "not installed", "unsupported": "n/a", "invalid": "WRONG",
            "failed": "error"}[row["status"]]


def format_table(run, markdown=False, contenders=None):
    """The ratio table: ms per call for every contender, and gpulstm / best peer."""
    entries = ratio_rows(run)
    if contenders is None:
        contenders = list(dict.fromkeys(r["contender"] for r in run["results"]))
    mine = [c for c in contenders if c.startswith("gpulstm-")]
    head = ["case", "threads"] + [f"{c} ms" for c in contenders] + [f"{c} / best peer" for c in mine]
    body = []
    for e in entries:
        ratios = []
        for c in mine:
            r = e["ratios"].get(c)
            ratios.append("-" if r is None else f"{r:.2f} ({e['best_peer']})")
        body.append([e["case"], str(e["threads"])] + [cell_text(e["cells"].get(c)) for c in contenders] + ratios)
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(r) + " |" for r in body]
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in [head] + body) for i in range(len(head))]
    fmt = "  ".join("{:<%d}" % w for w in widths)
    return "\n".join(fmt.format(*r) for r in [head] + body)


def notes(run):
    """Why each non-ok cell is empty, one line per distinct reason."""
    seen = {}
    for row in run["results"]:
        if row["status"] != "ok":
            seen.setdefault((row["contender"], row["status"], row["reason"]), row["case"])
    out = [f"{c}: {s} ({reason}) e.g. {case}" for (c, s, reason), case in seen.items()]
    if any(row.get("noisy") for row in run["results"]):
        out.append("*: too few rounds below max_other_load; the median uses every round")
    busy = {}
    for row in run["results"]:
        if row["threads"] == 1 and row.get("cpu_util") is not None:
            busy[row["contender"]] = max(row["cpu_util"], busy.get(row["contender"], 0.0))
    if busy:
        out.append("cores each worker kept busy at 1 thread (most over the sizes): " + ", ".join(
            f"{c} {u:.2f}" + (" (setting not honoured)" if u > ONE_THREAD_UTIL else "")
            for c, u in busy.items()))
    return out


ONE_THREAD_UTIL = 1.3  # cores a 1-thread worker may keep busy before its setting counts as ignored
TWO_VS_ONE = 1.05  # issue 13: where 2 threads are not faster than 1, t(2) / t(1) at most this


def thread_scaling(run, contender="gpulstm-cpu", lo=1, hi=2):
    """Per case: ``contender``'s time at ``hi`` threads over ``lo`` threads, from an idle race.

    Returns dicts with case, t_lo, t_hi, ratio (t_hi / t_lo), faster (t_hi < t_lo) and
    ok (faster, or ratio <= ``TWO_VS_ONE``); cases missing either thread count are left out.
    """
    ms = {}
    for row in run["results"]:
        if row["contender"] == contender and row["status"] == "ok" and row["threads"] in (lo, hi):
            ms.setdefault(row["case"], {})[row["threads"]] = row["median_ms"]
    out = []
    for case, t in ms.items():
        if lo in t and hi in t:
            ratio = t[hi] / t[lo]
            out.append({"case": case, "t_lo": t[lo], "t_hi": t[hi], "ratio": ratio,
                        "faster": ratio < 1.0, "ok": ratio <= TWO_VS_ONE})
    return out


def thread_scaling_table(run, contender="gpulstm-cpu", lo=1, hi=2):
    """Markdown: is ``hi`` threads faster than ``lo`` per case, else t(hi) / t(lo) vs the target."""
    rows = thread_scaling(run, contender, lo, hi)
    if not rows:
        return ""
    lines = [f"| case | {contender} {lo} thread ms | {hi} threads ms | {hi} faster? | "
             f"t({hi}) / t({lo}) (target <= {TWO_VS_ONE} where not faster) |", "|---|---|---|---|---|"]
    for r in rows:
        verdict = "-" if r["faster"] else f"{r['ratio']:.2f} {'ok' if r['ok'] else 'MISSED'}"
        lines.append(f"| {r['case']} | {r['t_lo']:.3f} | {r['t_hi']:.3f} | "
                     f"{'yes' if r['faster'] else 'no'} | {verdict} |")
    return "\n".join(lines)


def startup_lines(run):
    """The fresh-process start-up costs of a run, as text lines (none if not measured)."""
    st = run.get("startup")
    if not st:
        return []
    if "error" in st:
        return [f"start-up: not measured ({st['error']})"]
    tier = f" on the {st['first_call_tier']} tier" if st.get("first_call_tier") else ""
    numba = (f"; with GPULSTM_NUMPY_TIER=0 (numba kernels) {st['first_call_numba_s'] * 1e3:.0f} ms"
             if st.get("first_call_numba_s") is not None else "")
    return [f"start-up (fresh process, median of {len(st.get('samples', []))}): import gpulstm "
            f"{st['import_s'] * 1e3:.0f} ms (numba imported: {'yes' if st['numba_on_import'] else 'no'}); "
            f"first LSTM(128) call on (1, 100, 32) with a warm numba cache {st['first_call_s'] * 1e3:.0f} ms"
            f"{tier}{numba} (cold cache: {st['cold_first_call_s'] * 1e3:.0f} ms)"]
