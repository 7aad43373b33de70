"""The benchmark workloads, their minimal GEMM FLOPs, and their data.

Every workload is one training step of a fully-connected ReLU net with softmax loss,
Adam (learning rate 1e-3) and L2 1e-4 on the weights, on float data of CIFAR-10 shape
(N, 3, 32, 32) with 10 classes -- or, for W5, one whole epoch of such steps including
the minibatch sampling.

The data are shared between worker processes: the parent writes one training pool per
dtype (49,000 samples, standard normal, labels from a fixed random linear "teacher",
``argmax(x @ R)``, so the task is learnable) as ``.npy`` files
under /dev/shm, and every worker maps them copy-on-write, so ten workers do not hold
ten private copies of 600 MB (float32) / 1.2 GB (float64).
"""
import os
import tempfile
from dataclasses import dataclass, field

import numpy as np

N_TRAIN = 49_000          # CIFAR-10 training split of the course (the rest is validation)
CIFAR_SHAPE = (3, 32, 32)
REG = 1e-4
LEARNING_RATE = 1e-3
# Weights: He initialisation, randn * sqrt(2 / fan_in), in every implementation but
# sklearn (which has its own Glorot init).  Not FullyConnectedNet's default
# weight_scale=1e-2: with it the six-layer nets collapse (every ReLU dead, loss at
# chance) within two epochs, and a benchmark should time a net that is learning.


def he_scale(fan_in):
    return float(np.sqrt(2.0 / fan_in))


def teacher_labels(X_flat, n_classes, rng):
    """Labels of a fixed random linear teacher: argmax(X @ R) (learnable, balanced)."""
    R = rng.standard_normal((X_flat.shape[1], n_classes)).astype(X_flat.dtype)
    return np.argmax(X_flat @ R, axis=1).astype(np.int64)


@dataclass(frozen=True)
class Workload:
    name: str
    dims: tuple
    batch: int
    title: str
    kind: str = "step"                 # 'step': one training step; 'epoch': one epoch
    normalization: str = None          # None or 'batchnorm'
    keep: float = 1.0                  # dropout keep ratio (1 = no dropout)
    n_train: int = N_TRAIN             # samples in an epoch / in the sampling pool
    toy: bool = False                  # tiny input (W4): no CIFAR pool

    @property
    def steps_per_epoch(self):
        """Solver's iterations_per_epoch: max(num_train // batch_size, 1)."""
        return max(self.n_train // self.batch, 1)

    @property
    def plain(self):
        """No normalisation and no dropout (what numpy-ref and sklearn implement)."""
        return self.normalization is None and self.keep == 1.0

    def gemm_shapes(self):
        """The GEMMs of one minimal step as (m, n, k, trans_a, trans_b, what).

        Forward ``z_i = x_i @ W_i`` (n x d_in x d_out), ``dW_i = x_i.T @ dz_i`` for every
        layer, and ``dx_i = dz_i @ W_i.T`` for every layer but the first.
        """
        n = self.batch
        out = []
        layers = list(zip(self.dims[:-1], self.dims[1:]))
        for i, (d_in, d_out) in enumerate(layers, 1):
            out.append((n, d_out, d_in, False, False, f"z{i} = x{i} W{i}"))
        for i in range(len(layers), 0, -1):
            d_in, d_out = layers[i - 1]
            out.append((d_in, d_out, n, True, False, f"dW{i} = x{i}.T dz{i}"))
            if i > 1:
                out.append((n, d_in, d_out, False, True, f"dx{i} = dz{i} W{i}.T"))
        return out

    def flops(self):
        """Minimal GEMM FLOPs of one step: 2 m n k summed over :meth:`gemm_shapes`."""
        return float(sum(2.0 * m * n * k for m, n, k, *_ in self.gemm_shapes()))

    def unit_flops(self):
        """FLOPs of one timed unit: a step, or a whole epoch for kind 'epoch'."""
        f = self.flops()
        return f * self.steps_per_epoch if self.kind == "epoch" else f

    def describe(self):
        arch = "-".join(str(d) for d in self.dims)
        return f"{arch}, batch {self.batch}"


WORKLOADS = {
    "W1": Workload("W1", (3072, 100, 10), 200, "two-layer net (course default)"),
    "W2": Workload("W2", (3072, 100, 100, 100, 100, 100, 10), 200, "six-layer net"),
    "W3": Workload("W3", (3072, 1024, 1024, 10), 256, "wide net (GEMM-bound)"),
    "W4": Workload("W4", (4, 10, 3), 5, "toy net (pure overhead)", n_train=50, toy=True),
    "W5": Workload("W5", (3072, 100, 100, 100, 100, 100, 10), 200,
                   "one epoch of W2 over 49,000 samples, with sampling", kind="epoch"),
    "W6": Workload("W6", (3072, 1024, 512, 256, 10), 256,
                   "recipe net: batch norm, dropout keep 0.8", normalization="batchnorm",
                   keep=0.8),
}


# --------------------------------------------------------------------------- data

_MAPPED = {}


@dataclass
class SharedPool:
    """Paths of the shared training pools (one per dtype) written by the parent."""
    n_train: int
    paths: dict = field(default_factory=dict)     # dtype name -> (X path, y path)
    directory: str = None

    @classmethod
    def create(cls, dtypes, n_train=N_TRAIN, seed=0, directory=None):
        if directory is None:
            base = "/dev/shm" if os.path.isdir("/dev/shm") else None
            directory = tempfile.mkdtemp(prefix="fastfc-bench-", dir=base)
        pool = cls(n_train=n_train, directory=directory)
        rng = np.random.default_rng(seed)
        shape = (n_train,) + CIFAR_SHAPE
        x32_path = os.path.join(directory, "X_float32.npy")
        x32 = np.lib.format.open_memmap(x32_path, mode="w+", dtype=np.float32, shape=shape)
        flat = x32.reshape(n_train, -1)
        chunk = 4096
        for start in range(0, n_train, chunk):
            stop = min(start + chunk, n_train)
            rng.standard_normal(out=flat[start:stop], dtype=np.float32)
        x32.flush()
        y = teacher_labels(flat, 10, rng)
        y_path = os.path.join(directory, "y.npy")
        np.save(y_path, y)
        pool.paths["float32"] = (x32_path, y_path)
        if "float64" in dtypes:
            x64_path = os.path.join(directory, "X_float64.npy")
            x64 = np.lib.format.open_memmap(x64_path, mode="w+", dtype=np.float64, shape=shape)
            flat64 = x64.reshape(n_train, -1)
            for start in range(0, n_train, chunk):
                stop = min(start + chunk, n_train)
                flat64[start:stop] = flat[start:stop]
            x64.flush()
            del x64, flat64
            pool.paths["float64"] = (x64_path, y_path)
        del x32, flat
        return pool

    def load(self, dtype, private=False):
        """(X, y) of the pool: shared copy-on-write maps, or private copies."""
        x_path, y_path = self.paths[np.dtype(dtype).name]
        if private:
            return np.load(x_path), np.load(y_path)
        if x_path not in _MAPPED:      # one map per process, shared by its workloads
            X = np.asarray(np.load(x_path, mmap_mode="c"))   # plain ndarray over the map
            _MAPPED[x_path] = (X, np.load(y_path))
        return _MAPPED[x_path]

    def remove(self):
        if self.directory and os.path.isdir(self.directory):
            for name in os.listdir(self.directory):
                try:
                    os.remove(os.path.join(self.directory, name))
                except OSError:
                    pass
            try:
                os.rmdir(self.directory)
            except OSError:
                pass


@dataclass
class Data:
    """What an implementation is given for one workload (all in the workload's dtype).

    X_pool, y_pool: the training set the Solver-style steps sample from (shape (N, 3,
    32, 32) for CIFAR workloads, (N, 4) for W4); X_batch, y_batch: one preallocated
    minibatch (the first ``batch`` rows of the pool, a private contiguous copy).
    """
    X_pool: np.ndarray
    y_pool: np.ndarray
    X_batch: np.ndarray
    y_batch: np.ndarray


def make_data(wl, dtype, pool=None, private=False, seed=1):
    dtype = np.dtype(dtype)
    if wl.toy or pool is None:
        rng = np.random.default_rng(seed)
        n = wl.n_train if wl.toy else max(wl.batch * 8, 1000)
        shape = (n, wl.dims[0]) if wl.toy else (n,) + CIFAR_SHAPE
        X = rng.standard_normal(shape).astype(dtype)
        y = teacher_labels(X.reshape(n, -1), wl.dims[-1], rng)
    else:
        X, y = pool.load(dtype, private=private)
    Xb = np.ascontiguousarray(X[:wl.batch]).copy()
    yb = np.ascontiguousarray(y[:wl.batch]).astype(np.intp)
    return Data(X, y, Xb, yb)
