"""A/B of fastfc's GEMM backends: Net steps and the GEMMs alone, one process per mode.

    PYTHONPATH=src:. python -m bench.ab_gemm                      # W1, W3, W6, 5 rounds
    PYTHONPATH=src:. python -m bench.ab_gemm --workloads W3 --rounds 9 --gemm-only
    PYTHONPATH=src:. python -m bench.ab_gemm --workloads SQ2048 --gemm-only   # peak GEMM

Modes (each a fresh process, so no library or setting leaks between them):

* ``openblas``        SciPy's OpenBLAS on its own threads (the pool takes the rest)
* ``openblas-1t``     SciPy's OpenBLAS limited to 1 thread, fastfc's pool splits GEMMs
* ``openblas-serial`` SciPy's OpenBLAS on its own threads, fastfc's pool off (size 1)
* ``mkl``             MKL sequential, fastfc's pool splits GEMMs
* ``openblas-private`` the scipy-openblas32 wheel at 1 thread, the pool splits
* ``auto``            per-shape choice (the cache under a fresh temporary directory)
* ``bf16``            bfloat16 GEMMs (the one fastfc picks), float32 master weights
* ``bf16-mkl``        MKL's bfloat16 GEMM, float32 master weights

Rounds alternate the modes (order rotated), each mode times a block of steps; the
medians over all blocks are printed with the spread, and the load average before and
after, since a loaded machine makes every figure here unreliable.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

MODES = ("openblas", "openblas-1t", "openblas-serial", "mkl", "openblas-private", "auto",
         "bf16", "bf16-mkl")

_WORKER = r"""
import json, os, sys, time
import numpy as np
mode, wl_names, reps, gemm_only = sys.argv[1], sys.argv[2].split(","), int(sys.argv[3]), sys.argv[4] == "1"
import fastfc
from fastfc import _gemm
from fastfc._kernels import blas
from bench.workloads import WORKLOADS
from contextlib import ExitStack
stack = ExitStack()
if mode == "openblas-1t":
    fastfc.set_gemm_backend("openblas")
    stack.enter_context(fastfc.threads(2, blas_threads=1))
elif mode == "openblas-serial":
    fastfc.set_gemm_backend("openblas")
    fastfc.set_num_threads(1)
elif mode in ("bf16", "bf16-mkl"):
    if mode == "bf16-mkl":
        _gemm.set_bf16_gemm("mkl")
    fastfc.set_compute_dtype("bfloat16")
else:
    fastfc.set_gemm_backend(mode)
rng = np.random.default_rng(0)
out = {}
wls = WORKLOADS
for name in wl_names:
    if name == "SQ2048":        # the square peak GEMM of bench/ (one 2048^3 product)
        a = rng.standard_normal((2048, 2048)).astype(np.float32)
        b = rng.standard_normal((2048, 2048)).astype(np.float32)
        c = np.empty((2048, 2048), np.float32)
        def unit():
            blas._gemm_step(a, b, c, False, False)
    elif gemm_only:
        wl = wls[name]
        ops = []
        for m, n, k, ta, tb, _ in wl.gemm_shapes():
            a = rng.standard_normal((k, m) if ta else (m, k)).astype(np.float32)
            b = rng.standard_normal((n, k) if tb else (k, n)).astype(np.float32)
            ops.append((a, b, np.empty((m, n), np.float32), ta, tb))
        from fastfc._kernels import blas as B
        def unit():
            for a, b, c, ta, tb in ops:
                B._gemm_step(a, b, c, ta, tb)
    else:
        wl = wls[name]
        net = fastfc.Net(list(wl.dims), reg=1e-4, init="he", dtype=np.float32, seed=0,
                         normalization=wl.normalization, dropout_keep_ratio=wl.keep)
        net.set_optimizer("adam", learning_rate=1e-3)
        X = rng.standard_normal((wl.batch, 3 * 32 * 32 if not wl.toy else wl.dims[0])).astype(np.float32)
        y = rng.integers(0, wl.dims[-1], wl.batch)
        def unit():
            net.train_step(X, y)
    for _ in range(3):
        unit()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        unit()
        times.append(time.perf_counter() - t0)
    out[name] = times
print(json.dumps(out))
"""


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workloads", default="W1,W3,W6")
    p.add_argument("--modes", default=",".join(MODES))
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--reps", type=int, default=10, help="timed units per block")
    p.add_argument("--gemm-only", action="store_true",
                   help="time the step's GEMMs at their real shapes, not the Net step")
    args = p.parse_args(argv)
    modes = [m for m in args.modes.split(",") if m]
    samples = {m: {} for m in modes}
    load0 = os.getloadavg()
    env = dict(os.environ)
    env["FASTFC_CACHE_DIR"] = tempfile.mkdtemp(prefix="fastfc-ab-gemm-")
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = os.pathsep.join([os.path.join(here, "src"), here,
                                         env.get("PYTHONPATH", "")])
    for r in range(args.rounds):
        order = modes[r % len(modes):] + modes[:r % len(modes)]
        for mode in order:
            res = subprocess.run([sys.executable, "-c", _WORKER, mode, args.workloads,
                                  str(args.reps), "1" if args.gemm_only else "0"],
                                 capture_output=True, text=True, env=env)
            if res.returncode != 0:
                samples[mode] = {"error": res.stderr.strip().splitlines()[-1:]}
                continue
            for wl, ts in json.loads(res.stdout.strip().splitlines()[-1]).items():
                samples[mode].setdefault(wl, []).extend(ts)
    load1 = os.getloadavg()
    what = "GEMMs alone at the step's shapes" if args.gemm_only else "Net.train_step"
    print(f"{what}, float32, medians in ms (p25-p75), {args.rounds} rounds x {args.reps}")
    print(f"load average before {load0[0]:.2f}, after {load1[0]:.2f}"
          + ("  -- LOADED MACHINE: figures unreliable" if max(load0[0], load1[0]) > 1.5 else ""))
    wls = args.workloads.split(",")
    print(f"{'mode':<18}" + "".join(f"{w:>22}" for w in wls))
    for mode in modes:
        row = f"{mode:<18}"
        if "error" in samples[mode]:
            print(row + f"  failed: {samples[mode]['error']}")
            continue
        for w in wls:
            ts = sorted(samples[mode].get(w, []))
            if not ts:
                row += f"{'-':>22}"
                continue
            q = statistics.quantiles(ts, n=4) if len(ts) > 1 else [ts[0]] * 3
            row += f"{1e3 * statistics.median(ts):>10.2f} ({1e3 * q[0]:.1f}-{1e3 * q[2]:.1f})"
            if w == "SQ2048":
                row += f" {2 * 2048 ** 3 / ts[0] / 1e9:.0f} GF/s best"
        print(row)


if __name__ == "__main__":
    main()
