"""The implementations under test; each runs in its own worker process.

Every implementation module offers ``available() -> (ok, note)``, ``supports(workload,
dtype)``, ``set_threads(n)`` and ``setup(workload, dtype, data, **options) -> runner``
where ``runner.run()`` is one timed unit (a step, or an epoch for W5) and
``runner.includes_sampling`` says whether that unit draws its own minibatch.
"""
import importlib

# name -> (module, setup options, short description for the report)
IMPLS = {
    "fastfc-net": ("bench.impls.fastfc_net", {},
                   "fastfc.Net.train_step on a preallocated batch (W5: with sampling)"),
    "fastfc-compat": ("bench.impls.fastfc_compat", {},
                      "fastfc FullyConnectedNet + fastfc Solver._step (with sampling)"),
    "numpy-ref": ("bench.impls.numpy_ref", {},
                  "CS231n NumPy FullyConnectedNet + Solver step + adam (with sampling)"),
    "torch-eager": ("bench.impls.torch_impl", {"fused": False},
                    "PyTorch nn.Sequential + Adam (default, for-loop)"),
    "torch-fused": ("bench.impls.torch_impl", {"fused": True},
                    "PyTorch nn.Sequential + Adam(fused=True)"),
    "sklearn-mlp": ("bench.impls.sklearn_mlp", {},
                    "MLPClassifier(solver='adam'): partial_fit per step, fit(max_iter=1) per epoch"),
    "fastfc-net[openblas]": ("bench.impls.fastfc_net", {"gemm": "openblas"},
                             "fastfc-net with every GEMM on SciPy's OpenBLAS"),
    "fastfc-net[mkl]": ("bench.impls.fastfc_net", {"gemm": "mkl"},
                        "fastfc-net with every GEMM on MKL (sequential, fastfc's pool)"),
    "fastfc-net[openblas-private]": ("bench.impls.fastfc_net", {"gemm": "openblas-private"},
                                     "fastfc-net on the private OpenBLAS (one thread per "
                                     "call, fastfc's pool splits)"),
    "fastfc-net[auto]": ("bench.impls.fastfc_net", {"gemm": "auto"},
                         "fastfc-net, GEMM backend chosen per shape (timed, cached)"),
    "fastfc-net[bf16]": ("bench.impls.fastfc_net", {"compute_dtype": "bfloat16"},
                         "fastfc-net, bfloat16 GEMMs (fastfc's own AVX512-BF16 one, or MKL's "
                         "on Intel), float32 master weights"),
    "torch-bf16": ("bench.impls.torch_impl", {"fused": True, "autocast": True},
                   "PyTorch Adam(fused=True) + autocast(cpu, bfloat16)"),
    "jax-jit": ("bench.impls.jax_impl", {},
                "JAX, the whole step under jax.jit (donated buffers), torch's Adam formula"),
    "gemm": ("bench.gemm", {}, "the step's GEMMs at real shapes through fastfc's BLAS"),
    "gemm[openblas]": ("bench.gemm", {"gemm": "openblas"}, "the step's GEMMs on OpenBLAS"),
    "gemm[mkl]": ("bench.gemm", {"gemm": "mkl"}, "the step's GEMMs on MKL"),
    "gemm[openblas-private]": ("bench.gemm", {"gemm": "openblas-private"},
                               "the step's GEMMs on the private OpenBLAS"),
    "gemm[bf16]": ("bench.gemm", {"compute_dtype": "bfloat16"},
                   "the step's GEMMs in bfloat16 (the bf16 GEMM fastfc picks)"),
}

PEERS = ["fastfc-net", "fastfc-compat", "numpy-ref", "torch-eager", "torch-fused", "sklearn-mlp",
         "jax-jit", "torch-bf16", "fastfc-net[openblas]", "fastfc-net[mkl]",
         "fastfc-net[openblas-private]", "fastfc-net[auto]", "fastfc-net[bf16]"]
TORCH = ("torch-eager", "torch-fused")
#: the float32 peers a fastfc row is compared with ("vs best peer"): the fastest of these
BEST_PEERS = ("torch-eager", "torch-fused", "jax-jit")
#: GEMM-only rows: one per backend and dtype (the bound of each)
GEMM_ROWS = ("gemm", "gemm[openblas]", "gemm[mkl]", "gemm[openblas-private]", "gemm[bf16]")


def load(name):
    module, options, _ = IMPLS[name]
    return importlib.import_module(module), options


def available(mod, options):
    """``mod.available()``, given the row's options when it takes them."""
    import inspect
    if options and len(inspect.signature(mod.available).parameters) > 0:
        return mod.available(**options)
    return mod.available()
