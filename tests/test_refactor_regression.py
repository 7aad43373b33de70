"""What training computes, recorded before the one-home redesign and kept after it.

Three float64 runs -- (a) the course path, a FullyConnectedNet trained by the Solver
(a plain net, which takes the fused step, and a batch-norm net, which takes the
per-layer path), (b) a Net trained by the Solver with batch norm and dropout, and (c) a
FCClassifier fit -- have their loss histories, accuracy histories and final
parameters stored in ``tests/golden/``.  A refactor must reproduce them bit for bit.

Float64 results depend (in the last bits) on the BLAS kernels the CPU selects, so the
files are keyed by a fingerprint of the machine's BLAS (library, version, CPU kernel)
and of NumPy/SciPy's versions.  On a machine with a recorded fingerprint the
comparison is exact; elsewhere it is against every recorded file with a tolerance that
covers another BLAS kernel's rounding (relative 1e-8 on parameters after a few hundred
steps), so the test never passes vacuously.

Record (or re-record, only before a refactor) with ``FASTFC_RECORD_GOLDEN=1 python -m
pytest tests/test_refactor_regression.py``.
"""
import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest

from fastfc import Net, Solver
from fastfc.classifiers.fc_net import FullyConnectedNet

GOLDEN = Path(__file__).parent / "golden"
RECORD = os.environ.get("FASTFC_RECORD_GOLDEN", "0") not in ("", "0")
RTOL_OTHER_MACHINE = 1e-8


def _fingerprint():
    from threadpoolctl import threadpool_info
    import scipy
    import scipy.linalg  # noqa: F401  (loads SciPy's BLAS so threadpoolctl sees it)

    blas = sorted((i.get("internal_api", ""), i.get("version", ""), i.get("architecture", ""))
                  for i in threadpool_info() if i.get("user_api") == "blas"
                  and "scipy" in i.get("filepath", ""))
    text = json.dumps([blas, np.__version__, scipy.__version__])
    return hashlib.sha256(text.encode()).hexdigest()[:12], text


def _data(seed=0, n=300, d=20, c=4):
    rng = np.random.default_rng(seed)
    R = rng.standard_normal((d, c))
    X = rng.standard_normal((n, d))
    y = np.argmax(X @ R, axis=1)
    return {"X_train": X[:240], "y_train": y[:240], "X_val": X[240:], "y_val": y[240:]}


def _solver_record(solver):
    out = {"loss": np.asarray(solver.loss_history, dtype=np.float64),
           "train_acc": np.asarray(solver.train_acc_history, dtype=np.float64),
           "val_acc": np.asarray(solver.val_acc_history, dtype=np.float64)}
    for name, value in solver.model.params.items():
        out[f"param/{name}"] = np.array(value, dtype=np.float64)
    return out


def run_course_plain():
    np.random.seed(1)
    model = FullyConnectedNet([30, 20], input_dim=20, num_classes=4, reg=1e-3,
                              weight_scale=5e-2, dtype=np.float64)
    solver = Solver(model, _data(), update_rule="adam", optim_config={"learning_rate": 3e-3},
                    batch_size=20, num_epochs=4, verbose=False)
    solver.train()
    return _solver_record(solver)


def run_course_batchnorm():
    np.random.seed(2)
    model = FullyConnectedNet([30, 20], input_dim=20, num_classes=4, reg=1e-3,
                              weight_scale=5e-2, normalization="batchnorm",
                              dropout_keep_ratio=0.9, dtype=np.float64)
    solver = Solver(model, _data(), update_rule="sgd_momentum",
                    optim_config={"learning_rate": 1e-2}, lr_decay=0.9, batch_size=20,
                    num_epochs=4, verbose=False)
    solver.train()
    out = _solver_record(solver)
    for i, bn in enumerate(model.bn_params):
        out[f"bn{i}/running_mean"] = np.asarray(bn["running_mean"])
        out[f"bn{i}/running_var"] = np.asarray(bn["running_var"])
    return out


def run_net_solver():
    np.random.seed(3)
    net = Net([20, 30, 20, 4], normalization="batchnorm", dropout_keep_ratio=0.8,
              reg=1e-3, dtype=np.float64, seed=5)
    solver = Solver(net, _data(), update_rule="adam", optim_config={"learning_rate": 3e-3},
                    batch_size=20, num_epochs=4, verbose=False)
    solver.train()
    out = _solver_record(solver)
    for name, value in net._extra_state().items():
        out[f"extra/{name}"] = np.asarray(value)
    return out


def run_estimator():
    from fastfc.sklearn import FCClassifier

    data = _data()
    clf = FCClassifier(hidden_dims=(30,), num_epochs=5, batch_size=20, dtype="float64",
                       random_state=0)
    clf.fit(data["X_train"], data["y_train"])
    out = {"decision": np.asarray(clf.decision_function(data["X_val"]), dtype=np.float64)}
    for name, value in clf.net_.params.items():
        out[f"param/{name}"] = np.array(value, dtype=np.float64)
    return out


RUNS = {"course_plain": run_course_plain, "course_batchnorm": run_course_batchnorm,
        "net_solver": run_net_solver, "estimator": run_estimator}


def _compare(got, want, exact, label):
    assert sorted(got) == sorted(want), f"{label}: recorded {sorted(want)}, got {sorted(got)}"
    for key in want:
        if exact:
            np.testing.assert_array_equal(got[key], want[key], err_msg=f"{label} {key}")
        else:
            np.testing.assert_allclose(got[key], want[key], rtol=RTOL_OTHER_MACHINE,
                                       atol=1e-12, err_msg=f"{label} {key}")


@pytest.mark.parametrize("name", sorted(RUNS))
def test_training_computes_what_was_recorded(name):
    key, text = _fingerprint()
    got = RUNS[name]()
    path = GOLDEN / f"{name}-{key}.npz"
    if RECORD:
        GOLDEN.mkdir(exist_ok=True)
        np.savez(path, **got)
        (GOLDEN / f"machine-{key}.json").write_text(text + "\n")
    recorded = sorted(GOLDEN.glob(f"{name}-*.npz"))
    assert recorded, f"nothing recorded for {name} in {GOLDEN}"
    if path.exists():
        with np.load(path) as want:
            _compare(got, dict(want), exact=True, label=f"{name} (this machine's BLAS)")
        return
    for other in recorded:       # another BLAS kernel: agreement to rounding
        with np.load(other) as want:
            _compare(got, dict(want), exact=False, label=f"{name} vs {other.name}")
