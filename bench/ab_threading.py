"""A/B of fastfc's step-level threading: the pool against OpenBLAS's own threads.

    PYTHONPATH=src:. python -m bench.ab_threading [W1 W2 W3 W6] [--blocks 12] [--steps 40]

One process, one Net per workload; the modes alternate block by block (ABC, CBA, ...),
so that a slow phase of the machine hits them alike.  Modes: ``pool`` (the default
set-up: fastfc's pool sized as OpenBLAS, OpenBLAS keeps its threads), ``blas`` (no
pool: FASTFC_THREADING=blas) and ``pool1`` (the explicit fast set-up: OpenBLAS limited
to one thread with threadpoolctl, fastfc's pool of as many threads as OpenBLAS had, so
that every large GEMM is split too).  Prints each mode's median step time and the
ratios to ``blas`` (below 1: faster).
"""
import argparse
import time

import numpy as np

WORKLOADS = {
    "W1": ([3072, 100, 10], 200),
    "W2": ([3072, 100, 100, 100, 100, 100, 10], 200),
    "W3": ([3072, 1024, 1024, 10], 256),
    "W6": ([3072, 1024, 512, 256, 10], 256),
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workloads", nargs="*", help=f"any of {', '.join(WORKLOADS)} "
                        "(default: all)")
    parser.add_argument("--blocks", type=int, default=12, help="blocks per mode")
    parser.add_argument("--steps", type=int, default=0,
                        help="timed steps per block (default: 40, 8 for W3 and W6)")
    args = parser.parse_args(argv)
    for name in args.workloads:
        if name not in WORKLOADS:
            parser.error(f"unknown workload {name!r}")
    args.workloads = args.workloads or list(WORKLOADS)

    import contextlib

    import fastfc
    from fastfc import _openblas
    from fastfc._kernels import blas
    from fastfc.net import Net
    from threadpoolctl import threadpool_limits

    if hasattr(_openblas, "connect"):
        _openblas.connect()             # what the first Net does
    if not blas.pool_info()["thread_control"]:
        raise SystemExit("fastfc found no BLAS thread control: the pool is unavailable")
    was_enabled = blas.pool_info()["enabled"]
    threads = blas.pool_info()["blas_threads"]

    def mode(name):
        """Context of one set-up (pool1 on older fastfc: the same as pool)."""
        stack = contextlib.ExitStack()
        blas.set_pool(name != "blas")
        if name == "pool1" and hasattr(fastfc, "threads"):
            stack.enter_context(threadpool_limits(1, user_api="blas"))
            stack.enter_context(fastfc.threads(threads))
        return stack

    modes = ("pool", "blas", "pool1")
    rng = np.random.default_rng(0)
    print(f"{'wl':4} {'pool':>10} {'blas':>10} {'pool1':>10} {'pool/blas':>10} "
          f"{'pool1/blas':>10}")
    for name in args.workloads:
        dims, batch = WORKLOADS[name]
        X = rng.standard_normal((batch, dims[0])).astype(np.float32)
        y = rng.integers(0, dims[-1], batch)
        net = Net(dims, seed=0, reg=1e-4)
        net.set_optimizer("adam", learning_rate=1e-3)
        steps = args.steps or (8 if name in ("W3", "W6") else 40)
        medians = {m: [] for m in modes}
        try:
            for block in range(args.blocks):
                for m in (modes if block % 2 == 0 else modes[::-1]):
                    with mode(m):
                        for _ in range(2):
                            net.train_step(X, y)
                        times = []
                        for _ in range(steps):
                            t0 = time.perf_counter()
                            net.train_step(X, y)
                            times.append(time.perf_counter() - t0)
                    medians[m].append(np.median(times))
        finally:
            blas.set_pool(was_enabled)
        med = {m: np.median(v) for m, v in medians.items()}
        print(f"{name:4} {med['pool'] * 1e3:8.3f}ms {med['blas'] * 1e3:8.3f}ms "
              f"{med['pool1'] * 1e3:8.3f}ms {med['pool'] / med['blas']:10.3f} "
              f"{med['pool1'] / med['blas']:10.3f}")


if __name__ == "__main__":
    main()
