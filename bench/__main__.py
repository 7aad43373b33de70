"""``python -m bench``: fastfc against the CS231n NumPy code, PyTorch and scikit-learn.

    python -m bench --quick          # < 2 minutes, prints the tables
    python -m bench                  # full run, < 10 minutes, writes bench/RESULTS.md
                                     # and bench/results.json (raw samples)
    python -m bench --workloads W1,W4 --impls fastfc-net,numpy-ref --rounds 3
    python -m bench --from-json bench/results.json   # re-render the report

Run from the project root (with an installed fastfc, or ``PYTHONPATH=src:.`` for an
in-place build).  See bench/harness.py for how blocks are scheduled and bench/report.py
for what the columns mean.
"""
import argparse
import concurrent.futures
import json
import os
import shlex
import sys
import time

from bench import harness, report
from bench.impls import GEMM_ROWS, IMPLS, PEERS, load
from bench.workloads import WORKLOADS, SharedPool

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORE_IMPLS = ("fastfc-net", "fastfc-compat", "numpy-ref")
EPOCH64_IMPLS = ("fastfc-net", "numpy-ref")


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m bench",
                                description="fastfc benchmark: medians, ratios, GEMM bound")
    p.add_argument("--quick", action="store_true",
                   help="fewer rounds, shorter blocks, no W5, lighter memory checks (< 2 min)")
    p.add_argument("--workloads", default=None,
                   help="comma-separated subset of " + ",".join(WORKLOADS))
    p.add_argument("--impls", default=None,
                   help="comma-separated subset of " + ",".join(PEERS))
    p.add_argument("--float64", choices=("all", "core", "none"), default=None,
                   help="which implementations also run float64: all, core "
                        "(fastfc-net, fastfc-compat, numpy-ref) or none "
                        "(default: all for a full run, core for --quick)")
    p.add_argument("--threads", type=int, default=None,
                   help="BLAS/torch threads per worker (default: the number of cores)")
    p.add_argument("--rounds", type=int, default=None, help="interleaved rounds of blocks")
    p.add_argument("--epoch-rounds", type=int, default=None,
                   help="W5 epochs timed per implementation (one per round)")
    p.add_argument("--block-time", type=float, default=None,
                   help="target seconds of one block of steps")
    p.add_argument("--budget", type=float, default=None,
                   help="seconds from the start after which no new round is begun (at least "
                        "2 rounds run); default 420 for a full run, 80 for --quick")
    p.add_argument("--peak-n", type=int, default=2048, help="size of the square peak GEMM")
    p.add_argument("--memory", choices=("full", "light", "none"), default=None,
                   help="memory probes (default: full for a full run, light for --quick)")
    p.add_argument("--flat-steps", type=int, default=10_000,
                   help="W4 steps for the RSS flatness check (compared with after 100)")
    p.add_argument("--out", default=None,
                   help="markdown report (default: bench/RESULTS.md for a full run, "
                        "none for --quick)")
    p.add_argument("--json", default=None,
                   help="raw samples (default: bench/results.json for a full run, "
                        "none for --quick)")
    p.add_argument("--from-json", default=None,
                   help="do not measure: render the report of a saved results JSON")
    p.add_argument("--retry-busy", type=float, default=None, metavar="SHARE",
                   help="re-run a block (up to 3 times) when other processes used more than "
                        "this share (0-1) of the CPU during it; default: keep every block")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def plan(args):
    quick = args.quick
    cfg = {
        "quick": quick,
        "threads": args.threads or os.cpu_count() or 1,
        "rounds": args.rounds or (3 if quick else 10),
        "epoch_rounds": args.epoch_rounds or (1 if quick else 5),
        "block_time": args.block_time or (0.06 if quick else 0.15),
        "peak_n": args.peak_n,
        "budget": args.budget or (80.0 if quick else 420.0),
        "peak_repeat": 3 if quick else 5,
        "memory": args.memory or ("light" if quick else "full"),
        "flat_steps": args.flat_steps,
        "float64": args.float64 or ("core" if quick else "all"),
        "seed": args.seed,
        "retry_busy": args.retry_busy,
        "command": "PYTHONPATH=src:. python -m bench" + "".join(
            " " + shlex.quote(a) for a in (sys.argv[1:] if args.from_json is None else [])),
    }
    if args.workloads:
        wls = [w.strip().upper() for w in args.workloads.split(",") if w.strip()]
        bad = [w for w in wls if w not in WORKLOADS]
        if bad:
            raise SystemExit(f"unknown workloads {bad}; choose from {list(WORKLOADS)}")
    else:
        wls = [w for w in WORKLOADS if not (quick and WORKLOADS[w].kind == "epoch")]
    if args.impls:
        impls = [i.strip() for i in args.impls.split(",") if i.strip()]
        bad = [i for i in impls if i not in PEERS]
        if bad:
            raise SystemExit(f"unknown implementations {bad}; choose from {PEERS}")
    else:
        impls = list(PEERS)
    f64 = {"all": impls, "core": [i for i in impls if i in CORE_IMPLS], "none": []}[cfg["float64"]]
    dtypes = ["float32"] + (["float64"] if f64 else [])
    cfg.update(workloads=wls, impls=impls, dtypes=dtypes, float64_impls=f64)
    jobs = []
    for impl in impls + ["gemm"]:
        mod, _ = load(impl)
        for dtype in dtypes:
            if dtype == "float64" and impl != "gemm" and impl not in f64:
                continue
            for wl_name in wls:
                wl = WORKLOADS[wl_name]
                if wl_name == "W6" and dtype != "float32":
                    continue     # the recipe is float32
                if wl.kind == "epoch" and dtype == "float64" and impl not in EPOCH64_IMPLS:
                    continue     # float64 epochs: fastfc's Net and the code it replaces
                if mod.supports(wl, dtype):
                    jobs.append((impl, dtype, wl_name))
    # the GEMM bound of each backend and dtype (float32 steps): rows that say why not
    # when their backend is missing
    for impl in GEMM_ROWS[1:]:
        mod, _ = load(impl)
        for wl_name in wls:
            if WORKLOADS[wl_name].kind == "step" and mod.supports(WORKLOADS[wl_name], "float32"):
                jobs.append((impl, "float32", wl_name))
    # gemm for W5 is derived from W2's shapes: make sure W2's gemm job exists
    if "W5" in wls and "W2" not in wls:
        for dtype in dtypes:
            jobs.append(("gemm", dtype, "W2"))
    return cfg, jobs


def log(msg):
    print(msg, flush=True)


def measure(cfg, jobs):
    t_start = time.perf_counter()
    res = {"meta": report.machine_meta(ROOT), "config": cfg, "samples": {}, "peak": {},
           "worker_info": {}, "errors": {}, "unavailable": {}, "memory": {}}
    harness.set_thread_env(cfg["threads"])
    need_pool = any(not WORKLOADS[w].toy for _, _, w in jobs) or cfg["memory"] == "full"
    pool = None
    try:
        if need_pool:
            t0 = time.perf_counter()
            pool = SharedPool.create(cfg["dtypes"], seed=cfg["seed"])
            log(f"training pool: {pool.n_train:,} samples of shape (3, 32, 32), "
                f"{', '.join(cfg['dtypes'])}, in {pool.directory} "
                f"({time.perf_counter() - t0:.1f} s)")
        t0 = time.perf_counter()
        log(f"starting {len({j[:2] for j in jobs})} workers "
            f"({cfg['threads']} threads each) ...")
        workers = harness.start_workers(jobs, cfg["threads"], pool, log=log)
        for (impl, dtype), w in workers.items():
            key = f"{impl}|{dtype}"
            if w.status == "ready":
                res["worker_info"][key] = w.info
            elif w.status == "unavailable":
                res["unavailable"][key] = w.note
            else:
                res["errors"][key] = w.note
        log(f"  ready in {time.perf_counter() - t0:.1f} s")
        sched = harness.Scheduler(workers, jobs, block_time=cfg["block_time"],
                                  retry_busy=cfg["retry_busy"], log=log)
        try:
            t0 = time.perf_counter()
            sched.calibrate()
            log(f"calibrated {len(sched.plan)} jobs in {time.perf_counter() - t0:.1f} s")
            peaks = {d: [] for d in cfg["dtypes"]}

            row_peaks = {impl: [] for impl in GEMM_ROWS[1:]}

            def take_peak():
                for d in cfg["dtypes"]:
                    g = sched.peak(d, cfg["peak_n"], cfg["peak_repeat"])
                    if g:
                        peaks[d].append(g)
                for impl in row_peaks:
                    g = sched.peak("float32", cfg["peak_n"], cfg["peak_repeat"], impl=impl)
                    if g:
                        row_peaks[impl].append(g)

            take_peak()
            step_wls = [w for w in cfg["workloads"] if WORKLOADS[w].kind == "step"]
            if "W5" in cfg["workloads"] and "W2" not in step_wls:
                step_wls.append("W2")
            epoch_wls = [w for w in cfg["workloads"] if WORKLOADS[w].kind == "epoch"]
            rounds = max(cfg["rounds"], cfg["epoch_rounds"] if epoch_wls else 0)
            est = {"step": 0.0, "epoch": 0.0}
            done = {"step": 0, "epoch": 0}
            for r in range(rounds):
                parts = []
                if r < cfg["rounds"] and step_wls:
                    parts.append(("step", step_wls))
                if r < cfg["epoch_rounds"] and epoch_wls:
                    parts.append(("epoch", epoch_wls))
                elapsed = time.perf_counter() - t_start
                need = sum(est[k] for k, _ in parts)
                if r >= 2 and elapsed + need > cfg["budget"]:
                    log(f"time budget ({cfg['budget']:.0f} s): stopping after {r} rounds")
                    break
                busy = []
                t_round = time.perf_counter()
                # the first round always runs whole; later ones stop at the budget
                deadline = None if r == 0 else t_start + cfg["budget"]
                for kind, wls in parts:
                    t0 = time.perf_counter()
                    busy += sched.run_round(r, wls, deadline)
                    est[kind] = time.perf_counter() - t0
                    if not sched.out_of_time:
                        done[kind] += 1
                sched.replan()
                busy.sort()
                log(f"round {r + 1}/{rounds}: {time.perf_counter() - t_round:.1f} s "
                    f"({sched.blocks} blocks so far; other processes used "
                    f"{100 * (busy[len(busy) // 2] if busy else 0):.0f}% of the CPU "
                    f"in the median block)")
                if sched.out_of_time:
                    log(f"time budget ({cfg['budget']:.0f} s) reached during round {r + 1}")
                    break
                if not cfg["quick"] and r == rounds // 2:
                    take_peak()
            cfg["rounds_done"], cfg["epoch_rounds_done"] = done["step"], done["epoch"]
            take_peak()
            for d, ps in peaks.items():
                res["peak"][d] = {"gflops": max(ps) if ps else None, "samples": ps,
                                  "n": cfg["peak_n"]}
            res["peak_rows"] = {impl: {"gflops": max(ps) if ps else None, "samples": ps,
                                       "n": cfg["peak_n"]} for impl, ps in row_peaks.items()}
        finally:
            for w in workers.values():
                w.close()
        for job, samples in sched.samples.items():
            impl, dtype, wl = job
            if not samples:
                continue
            n, warm, _ = sched.plan[job]
            res["samples"][report.job_key(impl, dtype, wl)] = {
                "unit": WORKLOADS[wl].kind, "units_per_block": n, "warmup_per_block": warm,
                "busy": sched.busy[job],
                "retried_blocks": sched.retried[job], "samples": samples}
        for job, err in sched.errors.items():
            res["errors"][report.job_key(*job)] = err
        res["meta"]["timing_s"] = time.perf_counter() - t_start
        memory(cfg, pool, res)
    finally:
        if pool is not None:
            pool.remove()
    try:
        res["meta"]["loadavg_end"] = os.getloadavg()
    except OSError:
        pass
    res["meta"]["duration_s"] = time.perf_counter() - t_start
    return res


def memory(cfg, pool, res):
    if cfg["memory"] == "none":
        return
    t0 = time.perf_counter()
    impls = [i for i in cfg["impls"]]
    probes = []
    if cfg["memory"] == "full" and pool is not None:
        for impl in impls:
            probes.append(("epoch", impl, "float32", "W5"))
        for impl in impls:
            if impl in EPOCH64_IMPLS and "float64" in pool.paths:
                probes.append(("epoch", impl, "float64", "W5"))
    flat_impls = impls if cfg["memory"] == "full" else [i for i in impls if i in CORE_IMPLS]
    for impl in flat_impls:
        probes.append(("flat", impl, "float32", "W4"))
    log(f"memory: {len(probes)} probes in fresh processes ...")
    out = {"epoch": [], "flat": []}

    parallel = 2 if (os.cpu_count() or 1) >= 2 else 1

    def one(p):
        kind, impl, dtype, wl = p
        # nothing is timed here: two probes at a time, each computing on one thread
        # (the libraries still start with the run's thread count in the environment)
        threads = 1 if parallel > 1 else cfg["threads"]
        return kind, harness.memory_probe(kind, impl, dtype, wl, threads, pool,
                                          n_low=100, n_high=cfg["flat_steps"])

    with concurrent.futures.ThreadPoolExecutor(max_workers=parallel) as ex:
        for kind, r in ex.map(one, probes):
            out[kind].append(r)
    res["memory"] = out
    log(f"  memory probes done in {time.perf_counter() - t0:.1f} s")


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.from_json:
        with open(args.from_json) as f:
            res = json.load(f)
        print(report.console(res))
        if args.out:
            with open(args.out, "w") as f:
                f.write(report.markdown(res))
            print(f"\nwrote {args.out}")
        return 0
    cfg, jobs = plan(args)
    log(f"fastfc bench ({'quick' if cfg['quick'] else 'full'}): workloads "
        f"{','.join(cfg['workloads'])}; implementations {','.join(cfg['impls'])}; "
        f"dtypes {','.join(cfg['dtypes'])}; {len(jobs)} jobs")
    res = measure(cfg, jobs)
    out = args.out if args.out is not None else (None if cfg["quick"] else
                                                 os.path.join(ROOT, "bench", "RESULTS.md"))
    js = args.json if args.json is not None else (None if cfg["quick"] else
                                                  os.path.join(ROOT, "bench", "results.json"))
    print()
    print(report.console(res))
    if js:
        report.write_json(res, js)
        print(f"\nwrote {js}")
    if out:
        with open(out, "w") as f:
            f.write(report.markdown(res))
        print(f"wrote {out}")
    print(f"\ntotal {res['meta']['duration_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
