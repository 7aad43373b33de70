"""Statistics, the markdown report and the JSON of raw samples.

Everything here works from the results dict that ``python -m bench`` writes as JSON,
so a report can be re-rendered from a saved run (``python -m bench --from-json FILE``).

Conventions of the tables:

* a time is the median of all timed units (steps, or epochs for W5) of all blocks,
  with the 25th-75th percentiles beside it;
* ``x bound`` = median / (minimal step GEMM FLOPs / measured BLAS peak), so 1.00 is the
  physical limit of this machine's BLAS and lower is better;
* ``x gemm@shapes`` = median / the median time of the same GEMMs at the step's real
  shapes run back to back (what BLAS achieves at these sizes);
* ``vs numpy-ref`` and ``vs torch`` are speed-ups: the peer's median divided by this
  row's median (> 1: this row is faster), same dtype; ``torch`` is the best peer: the
  fastest of torch-eager, torch-fused and jax-jit.
"""
import datetime
import json
import os
import platform
import subprocess

import numpy as np

from bench.impls import BEST_PEERS, GEMM_ROWS, IMPLS, PEERS, TORCH
from bench.workloads import WORKLOADS, Workload, N_TRAIN

# (workload, what, goal, comparison) for item 5 of the issue; float32 medians
TARGETS = [
    ("W1", "x bound", 1.30, "<="),
    ("W2", "x bound", 1.35, "<="),
    ("W2", "speed-up vs torch-fused", 2.0, ">="),
    ("W3", "x bound", 1.15, "<="),
    ("W4", "us per step", 10.0, "<="),
    ("W4", "speed-up vs best torch", 25.0, ">="),
    ("W5", "x bound (epoch)", 1.60, "<="),
]


def _verdict(value, goal, cmp):
    """PASS or MISS of a measured value against a goal ('<=' or '>='); n/a without one."""
    if value is None:
        return "n/a"
    ok = value <= goal if cmp == "<=" else value >= goal
    return "PASS" if ok else "MISS"


def job_key(impl, dtype, wl):
    return f"{impl}|{dtype}|{wl}"


def split_key(key):
    impl, dtype, wl = key.split("|")
    return impl, dtype, wl


def samples_of(entry):
    """Seconds per unit of a samples entry (the JSON stores integer nanoseconds)."""
    if "samples" in entry:
        return entry["samples"]
    return [v * 1e-9 for v in entry.get("samples_ns", [])]


def stats(samples):
    a = np.asarray(samples, dtype=float)
    if a.size == 0:
        return None
    p25, med, p75 = np.percentile(a, [25, 50, 75])
    return {"median": float(med), "p25": float(p25), "p75": float(p75), "n": int(a.size),
            "min": float(a.min())}


# --------------------------------------------------------------------------- machine

def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_revision(root):
    try:
        rev = subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", root, "status", "--porcelain", "--", "src"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return rev + ("+dirty" if dirty else "") if rev else None
    except (OSError, subprocess.SubprocessError):
        return None


def cpu_flags():
    """The CPU's matrix and vector extensions that decide the GEMM paths (from
    /proc/cpuinfo; empty elsewhere)."""
    wanted = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16")
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    have = set(line.split(":", 1)[1].split())
                    return [w for w in wanted if w in have]
    except OSError:
        pass
    return []


def machine_meta(root):
    meta = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "git": git_revision(root),
        "cpu_flags": cpu_flags(),
    }
    try:
        meta["loadavg_start"] = os.getloadavg()
    except OSError:
        pass
    try:
        import fastfc
        meta["fastfc"] = fastfc.__version__ if hasattr(fastfc, "__version__") else "?"
    except ImportError:
        meta["fastfc"] = None
    return meta


def _blas_line(info):
    pools = info.get("threadpools") if info else None
    if not isinstance(pools, list):
        return "?"
    parts = []
    for p in pools:
        if p.get("user_api") != "blas":
            continue
        path = p.get("filepath") or ""
        owner = next((o for o in ("scipy", "numpy", "torch", "sklearn")
                      if f"/{o}.libs/" in path or f"/{o}/" in path), p.get("prefix"))
        parts.append(f"{owner}'s {p.get('internal_api')} {p.get('version')} "
                     f"({p.get('architecture') or '?'} kernels, "
                     f"{p.get('num_threads')} threads)")
    return "; ".join(dict.fromkeys(parts)) or "?"


def machine_line(res):
    m = res["meta"]
    infos = res.get("worker_info", {})
    fast = infos.get("fastfc-net|float32") or infos.get("gemm|float32") or {}
    torch_info = infos.get("torch-fused|float32") or infos.get("torch-eager|float32")
    sk = infos.get("sklearn-mlp|float32")
    bits = [f"{m['cpu']}, {m['cores']} cores, {res['config']['threads']} BLAS threads",
            f"Python {m['python']}", f"numpy {fast.get('numpy', '?')}",
            f"scipy {fast.get('scipy', '?')}",
            f"fastfc {m.get('fastfc')} ({m.get('git') or 'no git'})",
            f"BLAS: {_blas_line(fast)} (fastfc calls scipy's)"]
    if torch_info:
        bits.append(f"torch {torch_info.get('torch')} ({torch_info.get('torch_threads')} threads)")
    elif any(k.startswith("torch") for k in res.get("unavailable") or {}):
        bits.append("torch not installed")
    if sk:
        bits.append(f"scikit-learn {sk.get('sklearn')}")
    bits.append(m["date"])
    la = m.get("loadavg_start")
    lb = m.get("loadavg_end")
    if la:
        bits.append("load average %.2f at start" % la[0]
                    + (", %.2f at end" % lb[0] if lb else ""))
    return "; ".join(bits)


# --------------------------------------------------------------------------- derived numbers

def fmt_time(seconds):
    if seconds is None:
        return "—"
    if seconds < 1e-6:
        return f"{seconds * 1e9:.1f} ns"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def fmt_range(st):
    if not st:
        return "—"
    lo, hi = st["p25"], st["p75"]
    if hi < 1e-3:
        return f"{lo * 1e6:.1f}–{hi * 1e6:.1f} µs"
    if hi < 1:
        return f"{lo * 1e3:.2f}–{hi * 1e3:.2f} ms"
    return f"{lo:.2f}–{hi:.2f} s"


def fmt_ratio(x, digits=2):
    if x is None or not np.isfinite(x):
        return "—"
    if x >= 100:
        return f"{x:.0f}×"
    if x >= 10:
        return f"{x:.1f}×"
    return f"{x:.{digits}f}×"


class Analysis:
    """Medians, bounds and ratios computed from a results dict."""

    def __init__(self, res):
        self.res = res
        self.stats = {k: stats(samples_of(v)) for k, v in res["samples"].items()}
        self.busy = {k: [b for b in v.get("busy", []) if b is not None]
                     for k, v in res["samples"].items()}
        self.peak = {d: p.get("gflops") for d, p in res.get("peak", {}).items()}

    def st(self, impl, dtype, wl):
        return self.stats.get(job_key(impl, dtype, wl))

    def median(self, impl, dtype, wl):
        s = self.st(impl, dtype, wl)
        return s["median"] if s else None

    def bound(self, dtype, wl):
        """Seconds per timed unit at the measured peak (a step, or an epoch for W5)."""
        peak = self.peak.get(dtype)
        if not peak:
            return None
        return WORKLOADS[wl].unit_flops() / (peak * 1e9)

    def gemm_at_shapes(self, dtype, wl):
        w = WORKLOADS[wl]
        if w.kind == "epoch":
            # the same step shapes as the step workload with these dims and batch
            for other in WORKLOADS.values():
                if other.kind == "step" and other.dims == w.dims and other.batch == w.batch:
                    m = self.median("gemm", dtype, other.name)
                    return m * w.steps_per_epoch if m else None
            return None
        return self.median("gemm", dtype, wl)

    def best_torch(self, dtype, wl):
        """The fastest peer (torch-eager, torch-fused or jax-jit) as (name, median)."""
        best = None
        for t in BEST_PEERS:
            m = self.median(t, dtype, wl)
            if m is not None and (best is None or m < best[1]):
                best = (t, m)
        return best

    def row(self, impl, dtype, wl):
        st = self.st(impl, dtype, wl)
        if st is None:
            return None
        med = st["median"]
        b = self.bound(dtype, wl)
        g = self.gemm_at_shapes(dtype, wl)
        ref = self.median("numpy-ref", dtype, wl)
        bt = self.best_torch(dtype, wl)
        return {
            "impl": impl, "dtype": dtype, "workload": wl, "stats": st, "median": med,
            "x_bound": med / b if b else None,
            "x_gemm": med / g if g else None,
            "vs_ref": ref / med if ref else None,
            "vs_torch": bt[1] / med if bt else None,
            "torch_best": bt[0] if bt else None,
        }

    def busy_median(self, impl, dtype, wl):
        b = self.busy.get(job_key(impl, dtype, wl))
        return float(np.median(b)) if b else None

    def busy_all(self):
        allb = [b for v in self.busy.values() for b in v]
        if not allb:
            return None
        return {"median": float(np.median(allb)), "p75": float(np.percentile(allb, 75)),
                "share_over_25": float(np.mean(np.asarray(allb) > 0.25)), "n": len(allb)}

    def impls_run(self):
        seen = []
        for key in self.res["samples"]:
            impl = split_key(key)[0]
            if impl not in seen:
                seen.append(impl)
        return [i for i in list(IMPLS) if i in seen]

    def gemm_targets(self, impl):
        """Item 5 of the GEMM-backend issue for one fastfc row (float32 medians):
        ahead of torch-fused and jax-jit on W1-W6 (1.15x on W3 and W6), W3 within
        1.15x of the fp32 bound (the fastest square peak of any backend measured), W4
        within 5 us.  Each entry: (what, value, goal, cmp, verdict)."""
        out = []

        def add(what, value, goal, cmp):
            out.append((what, value, goal, cmp, _verdict(value, goal, cmp)))

        for wl in ("W1", "W2", "W3", "W4", "W5", "W6"):
            mine = self.median(impl, "float32", wl)
            goal = 1.15 if wl in ("W3", "W6") else 1.0
            for peer in ("torch-fused", "jax-jit"):
                theirs = self.median(peer, "float32", wl)
                add(f"{wl} speed-up vs {peer}", theirs / mine if mine and theirs else None,
                    goal, ">=")
        peaks = [v.get("gflops") for k, v in (self.res.get("peak_rows") or {}).items()
                 if v.get("gflops") and "bf16" not in k]       # float32 peaks only
        peaks += [p["gflops"] for d, p in (self.res.get("peak") or {}).items()
                  if d == "float32" and p.get("gflops")]
        w3 = self.median(impl, "float32", "W3")
        bound = WORKLOADS["W3"].flops() / (max(peaks) * 1e9) if peaks else None
        add("W3 x bound (fastest fp32 peak)", w3 / bound if w3 and bound else None,
            1.15, "<=")
        w4 = self.median(impl, "float32", "W4")
        add("W4 us per step", w4 * 1e6 if w4 else None, 5.0, "<=")
        return out

    def targets(self):
        out = []
        for wl, what, goal, cmp in TARGETS:
            row = self.row("fastfc-net", "float32", wl)
            value = None
            if row is not None:
                if what.startswith("x bound"):
                    value = row["x_bound"]
                elif what == "us per step":
                    value = row["median"] * 1e6
                elif what == "speed-up vs torch-fused":
                    tf = self.median("torch-fused", "float32", wl)
                    value = tf / row["median"] if tf else None
                elif what == "speed-up vs best torch":
                    ts = [m for m in (self.median(t, "float32", wl) for t in TORCH) if m]
                    value = min(ts) / row["median"] if ts else None
            out.append({"workload": wl, "what": what, "goal": goal, "cmp": cmp,
                        "value": value, "verdict": _verdict(value, goal, cmp)})
        return out


# --------------------------------------------------------------------------- markdown

def _table(header, rows, align=None):
    align = align or ["l"] + ["r"] * (len(header) - 1)
    sep = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(sep) + " |"]
    for r in rows:
        lines.append("| " + " | ".join(str(c) for c in r) + " |")
    return "\n".join(lines)


def headline(an, dtype="float32"):
    """The README table: one line per workload, float32 medians and ratios."""
    rows = []
    for wl in ("W1", "W2", "W3", "W4", "W5", "W6"):
        net = an.row("fastfc-net", dtype, wl)
        if net is None:
            continue
        w = WORKLOADS[wl]
        cells = [f"{wl} {w.describe()}" + (" — epoch" if w.kind == "epoch" else "")]
        cells.append(fmt_time(net["median"]))
        # W4's GEMM bound is a few nanoseconds: its time is all overhead
        cells.append("(overhead)" if w.toy else fmt_ratio(net["x_bound"]))
        for impl in ("fastfc-compat", "numpy-ref"):
            cells.append(fmt_time(an.median(impl, dtype, wl)))
        bt = an.best_torch(dtype, wl)
        cells.append(fmt_time(bt[1]) if bt else "—")
        cells.append(fmt_time(an.median("sklearn-mlp", dtype, wl)))
        cells.append(fmt_ratio(net["vs_ref"], 1))
        cells.append(fmt_ratio(net["vs_torch"], 1))
        rows.append(cells)
    header = ["workload (float32)", "fastfc Net", "× bound", "fastfc compat", "NumPy (CS231n)",
              "best peer (PyTorch, JAX)", "sklearn MLP", "Net vs NumPy", "Net vs best peer"]
    return _table(header, rows)


def full_table(an, dtypes):
    rows = []
    for wl in WORKLOADS:
        for dtype in dtypes:
            b = an.bound(dtype, wl)
            for impl in an.impls_run():
                r = an.row(impl, dtype, wl)
                if r is None:
                    continue
                st = r["stats"]
                w = WORKLOADS[wl]
                per_step = (fmt_time(r["median"] / w.steps_per_epoch)
                            if w.kind == "epoch" else "")
                busy = an.busy_median(impl, dtype, wl)
                rows.append([wl, dtype, impl, fmt_time(r["median"]), fmt_range(st),
                             per_step, fmt_ratio(r["x_bound"]) if b else "—",
                             fmt_ratio(r["x_gemm"]), fmt_ratio(r["vs_ref"]),
                             fmt_ratio(r["vs_torch"]), st["n"],
                             "—" if busy is None else f"{100 * busy:.0f}%"])
    header = ["wl", "dtype", "implementation", "median", "p25–p75", "per step (W5)",
              "× bound", "× gemm@shapes", "vs numpy-ref", "vs torch", "samples", "other CPU"]
    return _table(header, rows, ["l", "l", "l"] + ["r"] * 9)


def _fmt_flops(f):
    if f < 1e6:
        return f"{f:,.0f}"
    if f < 1e9:
        return f"{f / 1e6:,.1f} M"
    return f"{f / 1e9:,.2f} G"


def bounds_table(an, dtypes):
    rows = []
    run = an.res["config"].get("workloads", list(WORKLOADS))
    for wl, w in WORKLOADS.items():
        if wl not in run:
            continue
        for dtype in dtypes:
            b = an.bound(dtype, wl)
            if b is None or (wl == "W6" and dtype != "float32"):
                continue
            g = an.gemm_at_shapes(dtype, wl)
            unit = "epoch" if w.kind == "epoch" else "step"
            rows.append([wl, w.describe(), dtype, f"{_fmt_flops(w.unit_flops())} / {unit}",
                         fmt_time(b), fmt_time(g), fmt_ratio(g / b if g else None)])
    header = ["wl", "net", "dtype", "minimal GEMM FLOPs", "bound at peak",
              "GEMMs at real shapes", "gemm@shapes / bound"]
    return _table(header, rows, ["l", "l", "l", "r", "r", "r", "r"])


def gemm_targets_lines(an, res):
    """The GEMM issue's item 5 for the default row and the per-shape choice."""
    rows = []
    impls = [i for i in ("fastfc-net", "fastfc-net[auto]", "fastfc-net[openblas-private]")
             if an.median(i, "float32", "W6") is not None]
    if not impls:
        return []
    table = {i: an.gemm_targets(i) for i in impls}
    for k, (what, _, goal, cmp, _) in enumerate(table[impls[0]]):
        unit = " µs" if what.endswith("us per step") else "×"
        cells = [what, f"{cmp.replace('<=', '≤').replace('>=', '≥')} {goal:g}{unit}"]
        for i in impls:
            value, verdict = table[i][k][1], table[i][k][4]
            # a third digit where two would read as the goal itself
            shown = ("—" if value is None else f"{value:.3f}{unit}"
                     if round(value, 2) == goal else f"{value:.2f}{unit}")
            cells.append(f"{shown} **{verdict}**")
        rows.append(cells)
    bf16 = ("no AMX on this CPU: the bf16 targets (W6 bf16 step >= 2x torch-fused float32 "
            "and >= 1.5x torch-bf16) are for a CPU with AMX and were not measured")
    flags = res["meta"].get("cpu_flags")
    bf = an.median("fastfc-net[bf16]", "float32", "W6")
    tf = an.median("torch-fused", "float32", "W6")
    tb = an.median("torch-bf16", "float32", "W6")
    measured = (f"W6 bf16 step {fmt_time(bf)}: {tf / bf:.2f}x torch-fused float32 "
                f"(target 2x), {tb / bf:.2f}x torch-bf16 (target 1.5x)"
                if bf and tf and tb else None)
    if flags is None:
        bf16 = "the run did not record the CPU's flags; see fastfc info for AMX"
    elif "amx_bf16" in flags:
        bf16 = measured or bf16
    elif "avx512_bf16" in flags and measured:
        bf16 += (f"; with AVX512-BF16 (no AMX) this run measured them anyway: {measured}")
    return (["## Targets of the GEMM backends (float32 medians of this run)", "",
             _table(["target", "goal"] + impls, rows, ["l", "r"] + ["r"] * len(impls)),
             "", f"bfloat16: {bf16}.", ""])


def targets_table(an):
    rows = []
    for t in an.targets():
        v = t["value"]
        if v is None:
            shown = "—"
        elif t["what"] == "us per step":
            shown = f"{v:.2f} µs"
        else:
            # a third digit where two would read as the goal itself
            shown = f"{v:.3f}×" if round(v, 2) == t["goal"] else f"{v:.2f}×"
        goal = f"{t['cmp'].replace('<=', '≤').replace('>=', '≥')} {t['goal']:g}" + (
            " µs" if t["what"] == "us per step" else "×")
        rows.append([t["workload"], t["what"], shown, goal, f"**{t['verdict']}**"])
    return _table(["wl", "fastfc-net float32", "measured", "target", ""], rows,
                  ["l", "l", "r", "r", "l"])


def missed_lines(an):
    """For each missed target, what this run's own numbers say about the reason."""
    out = []
    for t in an.targets():
        if t["verdict"] != "MISS":
            continue
        wl = t["workload"]
        row = an.row("fastfc-net", "float32", wl)
        b = an.bound("float32", wl)
        g = an.gemm_at_shapes("float32", wl)
        if t["what"].startswith("x bound") and b and g:
            out.append(f"- {wl} {t['what']} {t['value']:.3f}× (target {t['goal']:g}×): the "
                       f"step's GEMMs alone, through the same BLAS at the same shapes, take "
                       f"{g / b:.2f}× the bound; fastfc's step is {row['x_gemm']:.2f}× "
                       "their time.")
        elif t["what"] == "speed-up vs torch-fused" and g:
            tf = an.median("torch-fused", "float32", wl)
            need = tf / t["goal"]
            out.append(f"- {wl} {t['what']} {t['value']:.2f}× (target {t['goal']:g}×): "
                       f"{t['goal']:g}× needs a step of {fmt_time(need)}, {need / g:.2f}× "
                       "of the time its GEMMs alone take through this BLAS.")
        else:
            out.append(f"- {wl} {t['what']}: {t['value']:.2f} (target {t['goal']:g}).")
    if out:
        out.append("")
        out.append("The profile behind these lines (where the rest of a step goes, and what "
                   "was tried) is in bench/ANALYSIS.md.")
    return out


def w6_lines(an):
    net = an.median("fastfc-net", "float32", "W6")
    if net is None:
        return []
    steps = N_TRAIN / WORKLOADS["W6"].batch
    out = []
    bt = an.best_torch("float32", "W6")
    line = (f"W6 (recipe net 3072-1024-512-256-10, batch norm, dropout keep 0.8, Adam, "
            f"batch 256, float32): fastfc Net {fmt_time(net)} per step, "
            f"epoch (49,000 / 256 = {steps:.1f} steps) {fmt_time(net * steps)}")
    if bt:
        line += (f"; best peer ({bt[0]}) {fmt_time(bt[1])} per step, epoch "
                 f"{fmt_time(bt[1] * steps)}; ratio peer / fastfc = {bt[1] / net:.2f}×")
    for t in TORCH:
        m = an.median(t, "float32", "W6")
        if m and (not bt or t != bt[0]):
            line += f" ({t}: {fmt_time(m)}, {m / net:.2f}×)"
    out.append(line + ".")
    return out


def memory_tables(res):
    mem = res.get("memory") or {}
    parts = []
    ep = mem.get("epoch") or []
    if ep:
        rows = []
        for r in ep:
            if "peak" in r:
                rows.append([r["impl"], r["dtype"], f"{r['rss_setup'] / 2**20:,.0f} MiB",
                             f"{r['peak'] / 2**20:,.0f} MiB",
                             f"{(r['peak'] - r['rss_setup']) / 2**20:+,.1f} MiB"])
            else:
                rows.append([r["impl"], r["dtype"], "—", "—",
                             r.get("unavailable") or _short(r.get("error"))])
        parts.append("Peak RSS of one W5 epoch, each in a fresh process holding a private "
                     "copy of the 49,000-sample training set (the peak counter is reset "
                     "after set-up, so 'epoch peak' is the highest RSS during the epoch):\n\n"
                     + _table(["implementation", "dtype", "RSS after set-up", "epoch peak",
                               "epoch adds"], rows, ["l", "l", "r", "r", "r"]))
    fl = mem.get("flat") or []
    if fl:
        rows = []
        for r in fl:
            if "rss_high" in r:
                grow = r["rss_high"] - r["rss_low"]
                hist = r.get("history_high", 0) - r.get("history_low", 0)
                verdict = "flat" if grow - max(hist, 0) <= 128 * 1024 else "GROWS"
                rows.append([r["impl"], r["dtype"], f"{r['rss_low'] / 2**20:,.2f} MiB",
                             f"{r['rss_high'] / 2**20:,.2f} MiB", f"{grow / 1024:+,.0f} KiB",
                             f"{hist / 1024:,.0f} KiB", verdict])
            else:
                rows.append([r["impl"], r["dtype"], "—", "—", "—", "—",
                             r.get("unavailable") or _short(r.get("error"))])
        n_low = fl[0].get("n_low", 100)
        n_high = fl[0].get("n_high", 10_000)
        parts.append(f"RSS after {n_low:,} and after {n_high:,} W4 steps (fresh process "
                     "each; 'history' is the part of the growth that is the loss history "
                     "the Solver (or sklearn's loss_curve_) keeps by design; 'flat' = growth "
                     "beyond that ≤ 128 KiB):\n\n"
                     + _table(["implementation", "dtype", f"after {n_low:,}",
                               f"after {n_high:,}", "growth", "history", ""], rows,
                              ["l", "l", "r", "r", "r", "r", "l"]))
    return parts


def _short(text):
    if not text:
        return "?"
    return text.strip().splitlines()[-1][:80]


def markdown(res):
    an = Analysis(res)
    cfg = res["config"]
    dtypes = [d for d in ("float32", "float64") if d in cfg["dtypes"]]
    out = ["# fastfc benchmark results", ""]
    out.append(f"Machine: {machine_line(res)}.")
    out.append("")
    mode = "quick" if cfg.get("quick") else "full"
    out.append(f"Reproduce: `{cfg.get('command', 'python -m bench')}` from the project root "
               f"({mode} mode, {res['meta'].get('duration_s', 0):.0f} s; "
               f"{cfg.get('rounds_done', cfg['rounds'])} interleaved rounds of "
               f"~{cfg['block_time'] * 1e3:.0f} ms blocks"
               + (f", {cfg.get('epoch_rounds_done', cfg['epoch_rounds'])} timed epochs per "
                  "implementation for W5" if
                  'W5' in cfg['workloads'] else "") + ").")
    out.append("")
    ba = an.busy_all()
    if ba:
        out.append(f"Noise: other processes used a median {100 * ba['median']:.0f}% "
                   f"(p75 {100 * ba['p75']:.0f}%) of the CPU during the timed blocks; "
                   f"{100 * ba['share_over_25']:.0f}% of the blocks ran with more than 25% "
                   "taken by others." + (" Such blocks were re-run up to 3 times when over "
                                         f"{100 * cfg['retry_busy']:.0f}%."
                                         if cfg.get("retry_busy") is not None else ""))
        out.append("")
    peaks = ", ".join(f"{d} {p['gflops']:.1f} GFLOP/s" for d, p in res.get("peak", {}).items()
                      if p.get("gflops"))
    if peaks:
        out.append(f"Measured BLAS peak (square {cfg['peak_n']}² GEMM through fastfc's "
                   f"GEMM table, best of all measurements in the run): {peaks}.")
        out.append("")
    out.extend(backend_lines(an, res, markdown=True))
    out.append("")
    out.extend(gemm_targets_lines(an, res))
    out.append("")
    out.append("## Headline (for the README)")
    out.append("")
    out.append("<!-- README table: paste from here -->")
    out.append(headline(an))
    out.append("")
    out.append("Medians of one training step (forward + backward + Adam, lr 1e-3, L2 1e-4, "
               "He-initialised ReLU nets, float32 data of CIFAR-10 shape with 10 learnable "
               "classes; W5: one epoch of W2 over 49,000 "
               "samples including minibatch sampling), each implementation in its own "
               "process, blocks interleaved. '× bound' = time ÷ (the step's minimal GEMM "
               "FLOPs ÷ this machine's measured BLAS peak); 'Net vs …' = the peer's median "
               "÷ fastfc Net's (higher is better for fastfc). fastfc compat = "
               "FullyConnectedNet + Solver, the course code with `fastfc.` imports; "
               "NumPy (CS231n) = the course's own NumPy code (bench/impls/numpy_ref.py).")
    out.append("")
    w6 = w6_lines(an)
    if w6:
        out.extend(w6)
        out.append("")
    out.append(f"Machine: {machine_line(res)}. Reproduce with `python -m bench` from the "
               "project root (`pip install \".[bench]\"` first, or `PYTHONPATH=src:.` for an "
               "in-place build); full results in bench/RESULTS.md.")
    out.append("<!-- README table: to here -->")
    out.append("")
    out.append("## Targets of the first performance round (fastfc-net, float32 medians of this run)")
    out.append("")
    out.append(targets_table(an))
    out.append("")
    missed = missed_lines(an)
    if missed:
        out.append("Why the missed ones are missed, from this run's own measurements:")
        out.append("")
        out.extend(missed)
        out.append("")
    out.append("## All measurements")
    out.append("")
    out.append(full_table(an, dtypes))
    out.append("")
    out.append("'other CPU' is the median share of the machine's CPU that other processes "
               "used while this row's blocks ran (from /proc/stat; 0% = a quiet machine).")
    out.append("")
    out.append("'vs numpy-ref' and 'vs torch' are speed-ups of the row over that peer "
               "(peer median ÷ row median, same dtype; torch = the faster of eager and "
               "fused). W5 times are per epoch; 'per step' divides by "
               f"{WORKLOADS['W5'].steps_per_epoch} steps.")
    out.append("")
    out.append("## The bound")
    out.append("")
    out.append(bounds_table(an, dtypes))
    out.append("")
    out.append("Minimal step FLOPs = Σ over layers of 2·n·d_in·d_out for the forward GEMM "
               "and for dW, plus the same for dX of every layer but the first. "
               "'GEMMs at real shapes' runs exactly those GEMMs back to back through "
               "fastfc's `_gemm` (Python call overhead included, ~1 µs per call): small and "
               "skinny shapes do not reach the square-GEMM peak.")
    out.append("")
    mem = memory_tables(res)
    if mem:
        out.append("## Memory")
        out.append("")
        for p in mem:
            out.append(p)
            out.append("")
    out.append("## What is timed")
    out.append("")
    for impl in an.impls_run():
        out.append(f"- **{impl}**: {IMPLS[impl][2]}.")
    out.append("- Steps of fastfc-compat and numpy-ref include the Solver's minibatch "
               "sampling (`np.random.choice` + `X_train[batch_mask]` from the 49,000-sample "
               "pool), as the course code does; fastfc-net, torch and sklearn step on a "
               "preallocated minibatch. In W5 every implementation samples (sklearn: its "
               "own per-epoch shuffle).")
    out.append("- Data: standard-normal inputs of shape (3, 32, 32), labels from a fixed "
               "random linear teacher (argmax(x·R)), so every net is learning while it is "
               "timed; weights He-initialised (randn·√(2/fan_in)) in every implementation "
               "but sklearn (its own Glorot init). With the course default weight_scale=1e-2 "
               "the six-layer nets collapse (all ReLUs dead) within two epochs.")
    out.append("- Each implementation and dtype runs in its own worker process with the same "
               f"thread count ({cfg['threads']}: OpenBLAS via threadpoolctl and environment, "
               "torch.set_num_threads); one block runs at a time; set-up is not timed; "
               "each block starts with a few untimed warm-up steps.")
    unav = res.get("unavailable") or {}
    for key, note in unav.items():
        out.append(f"- {key}: {note}")
    errs = res.get("errors") or {}
    for key, note in errs.items():
        out.append(f"- {key}: error: {_short(note)}")
    out.append("")
    return "\n".join(out)


FASTFC_ROWS = ("fastfc-net", "fastfc-net[openblas]", "fastfc-net[mkl]",
               "fastfc-net[openblas-private]", "fastfc-net[auto]", "fastfc-net[bf16]")
PEER_ROWS = ("torch-fused", "jax-jit", "torch-bf16")


def backend_lines(an, res, markdown=False):
    """fastfc per GEMM backend and dtype, the GEMM bound of each, the peers and the ratio
    of each fastfc row to the best float32 peer (torch-eager, torch-fused, jax-jit)."""
    cols = [c for c in FASTFC_ROWS + GEMM_ROWS + PEER_ROWS
            if any(an.median(c, "float32", wl) for wl in WORKLOADS)
            or f"{c}|float32" in (res.get("unavailable") or {})]
    if not cols:
        return []
    lines = ["GEMM backends and dtypes (float32 data, medians; x best peer = best peer's "
             "median / this median):"]
    rows = []
    for wl in WORKLOADS:
        cells = [wl]
        best = an.best_torch("float32", wl)
        any_value = False
        for c in cols:
            m = an.median(c, "float32", wl)
            if m is None:
                cells.append("—")
                continue
            any_value = True
            ratio = (f" ({best[1] / m:.2f}x)" if best and c in FASTFC_ROWS else "")
            cells.append(fmt_time(m) + ratio)
        cells.append(best[0] if best else "—")
        if any_value:
            rows.append(cells)
    header = ["wl"] + cols + ["best peer"]
    if markdown:
        lines = ["## GEMM backends and bfloat16", "", lines[0], "", _table(header, rows)]
    else:
        widths = [max(len(str(r[i])) for r in rows + [header]) + 2 for i in range(len(header))]
        lines.append("".join(f"{h:>{w}}" for h, w in zip(header, widths)))
        lines.extend("".join(f"{c:>{w}}" for c, w in zip(r, widths)) for r in rows)
    peaks = res.get("peak_rows") or {}
    shown = ", ".join(f"{k} {v['gflops']:.1f} GFLOP/s" for k, v in peaks.items()
                      if v.get("gflops"))
    if shown:
        lines.append("")
        lines.append(f"GEMM peak per backend (square {res['config'].get('peak_n', 2048)}², "
                     f"float32 data): {shown}")
    missing = {k: v for k, v in (res.get("unavailable") or {}).items()
               if k.split("|")[0] in cols}
    for k, v in missing.items():
        lines.append(f"{'* ' if markdown else '  '}{k.split('|')[0]}: not measured ({v})")
    return lines


def console(res):
    """Plain-text summary printed at the end of a run."""
    an = Analysis(res)
    cfg = res["config"]
    dtypes = [d for d in ("float32", "float64") if d in cfg["dtypes"]]
    lines = [f"machine: {machine_line(res)}", ""]
    peaks = ", ".join(f"{d} {p['gflops']:.1f} GFLOP/s" for d, p in res.get("peak", {}).items()
                      if p.get("gflops"))
    lines.append(f"BLAS peak: {peaks or 'not measured'}")
    ba = an.busy_all()
    if ba:
        lines.append(f"other processes used a median {100 * ba['median']:.0f}% (p75 "
                     f"{100 * ba['p75']:.0f}%) of the CPU during timed blocks")
    lines.append("")
    lines.append(f"{'wl':<4}{'dtype':<9}{'implementation':<15}{'median':>12}{'p25-p75':>22}"
                 f"{'x bound':>9}{'x gemm':>8}{'vs ref':>8}{'vs torch':>9}{'n':>7}{'busy':>6}")
    for wl in WORKLOADS:
        for dtype in dtypes:
            for impl in an.impls_run():
                r = an.row(impl, dtype, wl)
                if r is None:
                    continue
                lines.append(f"{wl:<4}{dtype:<9}{impl:<15}{fmt_time(r['median']):>12}"
                             f"{fmt_range(r['stats']):>22}{fmt_ratio(r['x_bound']):>9}"
                             f"{fmt_ratio(r['x_gemm']):>8}{fmt_ratio(r['vs_ref']):>8}"
                             f"{fmt_ratio(r['vs_torch']):>9}{r['stats']['n']:>7}"
                             + (f"{100 * b:>5.0f}%" if (b := an.busy_median(impl, dtype, wl))
                                is not None else "     —"))
    lines.append("")
    lines.extend(backend_lines(an, res))
    lines.append("")
    lines.extend(w6_lines(an))
    lines.append("")
    lines.append("targets (fastfc-net, float32):")
    for t in an.targets():
        v = t["value"]
        shown = "—" if v is None else (f"{v:.2f} us" if t["what"] == "us per step"
                                       else f"{v:.2f}x")
        lines.append(f"  {t['workload']} {t['what']:<26}{shown:>12}  target {t['cmp']} "
                     f"{t['goal']:g}   {t['verdict']}")
    skipped = dict(res.get("unavailable") or {})
    skipped.update({k: "ERROR " + _short(v) for k, v in (res.get("errors") or {}).items()})
    if skipped:
        lines.append("")
        lines.append("not measured:")
        for key, note in skipped.items():
            lines.append(f"  {key}: {note}")
    mem = res.get("memory") or {}
    if mem.get("epoch") or mem.get("flat"):
        lines.append("")
        lines.append("memory:")
        for r in mem.get("epoch") or []:
            if "peak" in r:
                lines.append(f"  W5 epoch {r['impl']:<14}{r['dtype']:<8} set-up "
                             f"{r['rss_setup'] / 2**20:8.0f} MiB  peak {r['peak'] / 2**20:8.0f} MiB"
                             f"  (+{(r['peak'] - r['rss_setup']) / 2**20:.1f} MiB)")
            else:
                lines.append(f"  W5 epoch {r['impl']:<14}{r['dtype']:<8} "
                             f"{r.get('unavailable') or _short(r.get('error'))}")
        for r in mem.get("flat") or []:
            if "rss_high" in r:
                grow = r["rss_high"] - r["rss_low"]
                hist = r.get("history_high", 0) - r.get("history_low", 0)
                lines.append(f"  W4 RSS {r['impl']:<16}{r['dtype']:<8} after {r['n_low']}: "
                             f"{r['rss_low'] / 2**20:.2f} MiB, after {r['n_high']}: "
                             f"{r['rss_high'] / 2**20:.2f} MiB ({grow / 1024:+.0f} KiB; "
                             f"history {hist / 1024:.0f} KiB)")
            else:
                lines.append(f"  W4 RSS {r['impl']:<16}{r['dtype']:<8} "
                             f"{r.get('unavailable') or _short(r.get('error'))}")
    return "\n".join(lines)


def to_json(res):
    """A copy of the results with samples as integer nanoseconds (compact, exact enough)."""
    out = dict(res)
    out["samples"] = {}
    for key, entry in res["samples"].items():
        e = {k: v for k, v in entry.items() if k != "samples"}
        if "samples" in entry:
            e["samples_ns"] = [int(round(v * 1e9)) for v in entry["samples"]]
        out["samples"][key] = e
    return out


def write_json(res, path):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(to_json(res), f, separators=(",", ":"), default=_json_default)
        f.write("\n")
    os.replace(tmp, path)


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Workload):
        return o.__dict__
    return str(o)
