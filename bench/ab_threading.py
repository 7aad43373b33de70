"""A/B of fastfc's step-level threading: the pool against OpenBLAS's own threads.

    PYTHONPATH=src:. python -m bench.ab_threading [W1 W2 W3] [--blocks 12] [--steps 40]

One process, one Net per workload; the two modes alternate block by block (ABBA...), so
that a slow phase of the machine hits both alike.  Prints each mode's median step time
and the ratio pool / blas (below 1: the pool is faster).
"""
import argparse
import time

import numpy as np

WORKLOADS = {
    "W1": ([3072, 100, 10], 200),
    "W2": ([3072, 100, 100, 100, 100, 100, 10], 200),
    "W3": ([3072, 1024, 1024, 10], 256),
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workloads", nargs="*", default=list(WORKLOADS),
                        choices=list(WORKLOADS))
    parser.add_argument("--blocks", type=int, default=12, help="blocks per mode")
    parser.add_argument("--steps", type=int, default=0,
                        help="timed steps per block (default: 40, 8 for W3)")
    args = parser.parse_args(argv)

    import fastfc  # noqa: F401  (connects the thread control)
    from fastfc._kernels import blas
    from fastfc.net import Net

    if not blas.pool_info()["thread_control"]:
        raise SystemExit("fastfc found no BLAS thread control: the pool is unavailable")
    was_enabled = blas.pool_info()["enabled"]
    rng = np.random.default_rng(0)
    print(f"{'wl':4} {'pool':>10} {'blas':>10} {'pool/blas':>10}")
    for name in args.workloads:
        dims, batch = WORKLOADS[name]
        X = rng.standard_normal((batch, dims[0])).astype(np.float32)
        y = rng.integers(0, dims[-1], batch)
        net = Net(dims, seed=0, reg=1e-4)
        net.set_optimizer("adam", learning_rate=1e-3)
        steps = args.steps or (8 if name == "W3" else 40)
        medians = {True: [], False: []}
        try:
            for block in range(args.blocks):
                for pooled in ((True, False) if block % 2 == 0 else (False, True)):
                    blas.set_pool(pooled)
                    for _ in range(2):
                        net.train_step(X, y)
                    times = []
                    for _ in range(steps):
                        t0 = time.perf_counter()
                        net.train_step(X, y)
                        times.append(time.perf_counter() - t0)
                    medians[pooled].append(np.median(times))
        finally:
            blas.set_pool(was_enabled)
        pool, plain = np.median(medians[True]), np.median(medians[False])
        print(f"{name:4} {pool * 1e3:8.3f}ms {plain * 1e3:8.3f}ms {pool / plain:10.3f}")


if __name__ == "__main__":
    main()
