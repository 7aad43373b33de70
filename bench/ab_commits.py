"""A/B of two fastfc source trees on the bench workloads, in one run.

    PYTHONPATH=src:. python -m bench.ab_commits --base /path/to/old/checkout/src \
        [--workloads W1,W2,W3,W4,W5,W6] [--impls fastfc-net,fastfc-compat] [--rounds 6]

The "new" side is the fastfc this process imports (``PYTHONPATH``); the "base" side is
the fastfc under ``--base`` (a source tree with its kernels built in place, e.g. a
``git worktree`` of the commit before a refactor, built with ``setup.py build_ext
--inplace``).  Each (side, implementation) runs in its own worker process with the
same harness, workloads and data as ``python -m bench``; blocks of the two sides
alternate, orders rotated each round, so that a slow phase of the machine hits both
alike.  Prints the median of each side and the ratio new / base (below 1: the new tree
is faster), with the share of the CPU other processes used.
"""
import argparse
import os
import statistics
import sys
import time

from bench import harness
from bench.workloads import WORKLOADS, SharedPool

BASE = "@base"


def _ab_worker(conn, spec):
    """Worker entry point: imports fastfc from ``spec['src']`` when given."""
    spec = dict(spec)
    src = spec.pop("src", None)
    if src:
        sys.path.insert(0, src)
        import fastfc
        if not os.path.abspath(fastfc.__file__).startswith(src + os.sep):
            raise RuntimeError(f"fastfc came from {fastfc.__file__}, not from {src}")
    spec["impl"] = spec["impl"].replace(BASE, "")
    harness.worker_main(conn, spec)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="src/ folder of the base tree")
    parser.add_argument("--workloads", default="W1,W2,W3,W4,W5,W6")
    parser.add_argument("--impls", default="fastfc-net,fastfc-compat")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--block-time", type=float, default=0.15)
    args = parser.parse_args(argv)
    base = os.path.abspath(args.base)
    if not os.path.isdir(os.path.join(base, "fastfc")):
        parser.error(f"--base must be a src/ folder holding fastfc/, got {args.base!r}")
    wls = args.workloads.split(",")
    for w in wls:
        if w not in WORKLOADS:
            parser.error(f"unknown workload {w!r}")
    impls = args.impls.split(",")

    harness.set_thread_env(args.threads)
    jobs = [(impl + side, args.dtype, w) for w in wls for impl in impls
            for side in ("", BASE)]
    pool = None
    if any(not WORKLOADS[w].toy for w in wls):
        pool = SharedPool.create([args.dtype])
    ctx = harness.context()
    workers = {}
    try:
        for impl in impls:
            for side in ("", BASE):
                spec = {"impl": impl + side, "dtype": args.dtype, "threads": args.threads,
                        "pool": pool, "workloads": wls, "src": base if side else None}
                workers[(impl + side, args.dtype)] = harness.Worker(ctx, _ab_worker, spec)
        for key, w in workers.items():
            if not w.wait_ready():
                raise SystemExit(f"{key}: {w.status}: {w.note}")
        sched = harness.Scheduler(workers, jobs, block_time=args.block_time)
        sched.calibrate()
        step_wls = [w for w in wls if WORKLOADS[w].kind == "step"]
        epoch_wls = [w for w in wls if WORKLOADS[w].kind == "epoch"]
        busy = []
        for r in range(args.rounds):
            t0 = time.perf_counter()
            for group in (step_wls, epoch_wls):
                if group:
                    busy += sched.run_round(r, group)
            sched.replan()
            print(f"round {r + 1}/{args.rounds}: {time.perf_counter() - t0:.1f} s", flush=True)
    finally:
        for w in workers.values():
            w.close()
        if pool is not None:
            pool.remove()
    busy = sorted(b for b in busy if b is not None)
    print(f"\nmedian share of the CPU used by other processes during a block: "
          f"{100 * (busy[len(busy) // 2] if busy else 0):.0f}%")
    print(f"{'workload':<9}{'implementation':<16}{'new':>12}{'base':>12}{'new/base':>10}")
    for w in wls:
        unit = 1e6 if WORKLOADS[w].toy else 1e3
        label = "ms" if unit == 1e3 else "us"
        for impl in impls:
            new = sched.samples.get((impl, args.dtype, w)) or []
            old = sched.samples.get((impl + BASE, args.dtype, w)) or []
            if not new or not old:
                print(f"{w:<9}{impl:<16}{'--':>12}{'--':>12}")
                continue
            mn, mo = statistics.median(new), statistics.median(old)
            print(f"{w:<9}{impl:<16}{mn * unit:>9.3f} {label}{mo * unit:>9.3f} {label}"
                  f"{mn / mo:>10.3f}")


if __name__ == "__main__":
    main()
