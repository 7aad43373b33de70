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
    "gemm": ("bench.gemm", {}, "the step's GEMMs at real shapes through fastfc's BLAS"),
}

PEERS = ["fastfc-net", "fastfc-compat", "numpy-ref", "torch-eager", "torch-fused", "sklearn-mlp"]
TORCH = ("torch-eager", "torch-fused")


def load(name):
    module, options, _ = IMPLS[name]
    return importlib.import_module(module), options
