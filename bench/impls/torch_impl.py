"""torch-eager / torch-fused: the same nets in PyTorch on the CPU.

``nn.Sequential`` of ``Linear`` (He-initialised, zero bias) [-> ``BatchNorm1d``] -> ``ReLU``
[-> ``Dropout``] ... -> ``Linear``, ``F.cross_entropy``, and ``torch.optim.Adam(lr=1e-3)`` with the L2 term as
Adam's ``weight_decay=1e-4`` on the weight matrices only (the course's ``reg * W``
added to the gradient; biases and batch-norm parameters get none).  One step is
``zero_grad(set_to_none=True)``, forward, ``backward()``, ``opt.step()``; the loss is
not turned into a Python float (one less sync than the others do).

* torch-eager: ``Adam`` with its defaults (on CPU tensors: the per-parameter for-loop);
* torch-fused: ``Adam(fused=True)``, the fused multi-tensor CPU kernel.
* torch-bf16: as torch-fused, with forward and loss under
  ``torch.autocast("cpu", dtype=torch.bfloat16)`` (float32 master weights).

``torch.set_num_threads`` is set to the BLAS thread count of the run.  The first layer's
input does not require grad, so torch skips its dX too.  Epoch workloads sample like the
Solver: ``np.random.choice`` per step, then ``index_select`` on tensors sharing the
NumPy training pool's memory.
"""
import numpy as np

NAMES = ("torch-eager", "torch-fused", "torch-bf16")


def available():
    try:
        import torch
    except ImportError:
        return False, "not installed (pip install torch==2.13.0, the bench extra)"
    return True, torch.__version__


def supports(wl, dtype):
    return True


def set_threads(n):
    import torch
    torch.set_num_threads(int(n))


def build(wl, dtype, fused):
    import torch
    from torch import nn
    torch.manual_seed(0)
    tdtype = torch.float32 if np.dtype(dtype) == np.float32 else torch.float64
    mods = []
    n_layers = len(wl.dims) - 1
    for i, (d_in, d_out) in enumerate(zip(wl.dims[:-1], wl.dims[1:])):
        mods.append(nn.Linear(d_in, d_out))
        if i < n_layers - 1:
            if wl.normalization == "batchnorm":
                mods.append(nn.BatchNorm1d(d_out, eps=1e-5, momentum=0.1))
            mods.append(nn.ReLU())
            if wl.keep < 1:
                mods.append(nn.Dropout(p=1.0 - wl.keep))
    for m in mods:
        if isinstance(m, nn.Linear):      # He initialisation, as the other implementations
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            nn.init.zeros_(m.bias)
    model = nn.Sequential(*mods).to(tdtype)
    model.train()
    weights = [m.weight for m in model if isinstance(m, nn.Linear)]
    wids = {id(w) for w in weights}
    others = [p for p in model.parameters() if id(p) not in wids]
    groups = [{"params": weights, "weight_decay": 1e-4}, {"params": others, "weight_decay": 0.0}]
    if fused:
        opt = torch.optim.Adam(groups, lr=1e-3, fused=True)
    else:
        opt = torch.optim.Adam(groups, lr=1e-3)
    return model, opt


class Runner:
    def __init__(self, wl, dtype, data, fused, autocast=False):
        import torch
        self.autocast = autocast and np.dtype(dtype) == np.float32
        import torch.nn.functional as F
        self.torch = torch
        self.model, self.opt = build(wl, dtype, fused)
        self.F = F
        n = data.X_batch.shape[0]
        self.X = torch.from_numpy(data.X_batch.reshape(n, -1))
        self.y = torch.from_numpy(data.y_batch.astype(np.int64))
        self.includes_sampling = wl.kind == "epoch"
        if wl.kind == "epoch":
            N = data.X_pool.shape[0]
            self.X_train = torch.from_numpy(data.X_pool.reshape(N, -1))
            self.y_train = torch.from_numpy(np.ascontiguousarray(data.y_pool, dtype=np.int64))
            self.num_train = N
            self.batch = wl.batch
            self.steps = wl.steps_per_epoch
            self.run = self.epoch
        else:
            self.run = self.step

    def _step(self, X, y):
        opt = self.opt
        opt.zero_grad(set_to_none=True)
        if self.autocast:
            with self.torch.autocast("cpu", dtype=self.torch.bfloat16):
                loss = self.F.cross_entropy(self.model(X), y)
        else:
            loss = self.F.cross_entropy(self.model(X), y)
        loss.backward()
        opt.step()
        return loss

    def step(self):
        return self._step(self.X, self.y)

    def epoch(self):
        torch = self.torch
        for _ in range(self.steps):
            batch_mask = torch.from_numpy(np.random.choice(self.num_train, self.batch))
            self._step(self.X_train.index_select(0, batch_mask),
                       self.y_train.index_select(0, batch_mask))

    def history_bytes(self):
        return 0


def setup(wl, dtype, data, fused=False, autocast=False):
    return Runner(wl, dtype, data, fused, autocast)
