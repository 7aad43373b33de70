"""fastfc-net: ``fastfc.Net.train_step`` -- forward, loss, backward and Adam in one call.

Step workloads time ``train_step`` on a preallocated minibatch (no sampling).  The
epoch workload (W5) runs what ``Solver`` does for a Net: ``np.random.choice`` per step,
the labels gathered with ``np.take`` into a preallocated array, and the rows gathered
by the kernel itself (``train_step(X_train, y_batch, indices=batch_mask)``).
"""
import numpy as np

NAME = "fastfc-net"


def available(gemm=None, compute_dtype=None):
    """fastfc importable; for the [mkl] and [openblas-private] rows that library; for
    [bf16] a bf16 GEMM that runs bf16 natively here (emulated bf16 is not worth timing)."""
    try:
        import fastfc  # noqa: F401
    except ImportError as exc:   # pragma: no cover - the package is the point
        return False, f"fastfc not importable: {exc}"
    from fastfc import _gemm
    if gemm == "openblas-private":
        try:
            _gemm._load("openblas-private")
        except (ImportError, OSError):
            return False, "no private OpenBLAS (pip install 'fastfc[openblas]')"
    if gemm == "mkl":
        try:
            _gemm._load("mkl")
        except (ImportError, OSError):
            return False, "no MKL (pip install 'fastfc[mkl]')"
    if compute_dtype == "bfloat16":
        try:
            _gemm.set_bf16_gemm("auto")
        except RuntimeError as exc:
            return False, f"no bf16 GEMM here ({exc})"
        name, isa = _gemm._bf16_plan()
        if isa is None:
            return False, (f"no AMX or AVX512-BF16 that {name}'s bf16 GEMM uses on this "
                           "CPU (bf16 would be emulated)")
        return True, f"{'fastfc' if name == 'native' else name}'s bf16 GEMM, {isa}"
    return True, ""


def supports(wl, dtype):
    return True


def set_threads(n):
    pass


class Runner:
    includes_sampling = False

    def __init__(self, wl, dtype, data):
        from fastfc import Net
        self.net = Net(list(wl.dims), reg=1e-4, init="he", dtype=np.dtype(dtype).type,
                       seed=0, normalization=wl.normalization, dropout_keep_ratio=wl.keep)
        self.net.set_optimizer("adam", learning_rate=1e-3)
        self.X = data.X_batch
        self.y = data.y_batch
        if wl.kind == "epoch":
            self.includes_sampling = True
            self.X_train = data.X_pool
            self.y_train = np.ascontiguousarray(data.y_pool, dtype=np.intp)
            self.y_buf = np.empty(wl.batch, dtype=np.intp)
            self.num_train = data.X_pool.shape[0]
            self.batch = wl.batch
            self.steps = wl.steps_per_epoch
            self.run = self.epoch
        else:
            self.run = self.step

    def step(self):
        return self.net.train_step(self.X, self.y)

    def epoch(self):
        train_step = self.net.train_step
        X, y_train, y_buf = self.X_train, self.y_train, self.y_buf
        num_train, batch = self.num_train, self.batch
        for _ in range(self.steps):
            batch_mask = np.random.choice(num_train, batch)
            np.take(y_train, batch_mask, out=y_buf)
            train_step(X, y_buf, indices=batch_mask)

    def history_bytes(self):
        return 0


def setup(wl, dtype, data, gemm=None, compute_dtype=None):
    """The runner, with the GEMM backend (``gemm``: a mode of FASTFC_GEMM, None: the
    default) and compute dtype of this worker process set first."""
    import fastfc
    if gemm is not None:
        fastfc.set_gemm_backend(gemm)
    if compute_dtype is not None and np.dtype(dtype) == np.float32:
        fastfc.set_compute_dtype(compute_dtype)
    return Runner(wl, dtype, data)
