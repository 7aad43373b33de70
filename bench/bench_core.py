"""Kernel timings of the compiled core against plain NumPy, one run, medians side by side.

    python -m bench.bench_core [--repeat 50] [--dtype float32]

Problem: x (200, 3072), w (3072, 100), b (100,) -- one CIFAR-10 minibatch through the
first layer of the course's two-layer net.  Rows: affine_forward, affine_backward (dx,
dw, db) and one Adam step on w; the NumPy column is the CS231n formulation of each.
"""
import argparse
import statistics
import time

import numpy as np

from fastfc import layers, optim

from bench.impls import numpy_ref


# the CS231n NumPy formulations, shared with the full benchmark
numpy_affine_forward = numpy_ref.affine_forward
numpy_affine_backward = numpy_ref.affine_backward
numpy_adam = numpy_ref.adam


def _median_us(fn, repeat, warmup=5):
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples) * 1e6


def run(repeat=50, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((200, 3072)).astype(dtype)
    w = (rng.standard_normal((3072, 100)) * 1e-3).astype(dtype)
    b = np.zeros(100, dtype=dtype)
    dout = rng.standard_normal((200, 100)).astype(dtype)
    dw = rng.standard_normal((3072, 100)).astype(dtype)
    _, cache = layers.affine_forward(x, w, b)
    _, ncache = numpy_affine_forward(x, w, b)
    adam_cfg = {"learning_rate": 1e-3, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8,
                "m": np.zeros_like(w), "v": np.zeros_like(w), "t": 0}
    np_cfg = dict(adam_cfg, m=np.zeros_like(w), v=np.zeros_like(w))
    w_inplace = w.copy()
    rows = [
        ("affine_forward", lambda: layers.affine_forward(x, w, b),
         lambda: numpy_affine_forward(x, w, b)),
        ("affine_backward", lambda: layers.affine_backward(dout, cache),
         lambda: numpy_affine_backward(dout, ncache)),
        ("adam (public, copies w)", lambda: optim.adam(w, dw, adam_cfg),
         lambda: numpy_adam(w, dw, np_cfg)),
        ("adam (in place)", lambda: optim.update_inplace("adam", w_inplace, dw, adam_cfg),
         lambda: numpy_adam(w, dw, np_cfg)),
    ]
    results = []
    for name, fast, ref in rows:
        # interleave the two so that drift of the machine hits both alike
        t_fast, t_ref = [], []
        for _ in range(3):
            t_fast.append(_median_us(fast, repeat // 3 + 1))
            t_ref.append(_median_us(ref, repeat // 3 + 1))
        results.append((name, statistics.median(t_fast), statistics.median(t_ref)))
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=60)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    args = parser.parse_args(argv)
    dtype = np.dtype(args.dtype).type
    print(f"x (200, 3072) . w (3072, 100), {args.dtype}, median of {args.repeat} calls")
    print(f"{'operation':<26}{'fastfc us':>12}{'numpy us':>12}{'speed-up':>10}")
    for name, fast, ref in run(args.repeat, dtype):
        print(f"{name:<26}{fast:>12.1f}{ref:>12.1f}{ref / fast:>9.2f}x")


if __name__ == "__main__":
    main()
