"""``fastfc train --loss mse`` on the embedded regression data (diabetes), ``evaluate``
and ``gradcheck --loss``; the Solver's R^2 scoring of regression nets; the data set.

Runs the real command in process, as tests/test_cli_train.py does.
"""
import json

import numpy as np
import pytest

from fastfc import Net, Solver, cli
from fastfc import _cli_train as T
from fastfc.data_utils import DIABETES_SPLIT, load_regression_data
from fastfc.solver import _r2_score

pytest.importorskip("sklearn")


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def train(*argv):
    return cli.main(["train", "--no-progress", *argv])


def error_line(capsys):
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("fastfc: error: "), err
    return err[0]


# ------------------------------------------------------------------ the data set

def test_regression_data_split_and_standardisation():
    d = load_regression_data(return_stats=True)
    n_train, n_val, n_test = DIABETES_SPLIT
    assert d["X_train"].shape == (n_train, 10) and d["y_train"].shape == (n_train, 1)
    assert d["X_val"].shape == (n_val, 10) and d["y_test"].shape == (n_test, 1)
    np.testing.assert_allclose(d["X_train"].mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(d["X_train"].std(axis=0), 1, rtol=1e-12)
    np.testing.assert_allclose(d["y_train"].std(), 1, rtol=1e-12)
    raw = load_regression_data(standardize=False)
    np.testing.assert_allclose(d["y_val"] * d["y_std"] + d["y_mean"], raw["y_val"],
                               rtol=1e-12)
    assert 25 <= raw["y_train"].min() and raw["y_train"].max() <= 346
    # the split is fixed and leaves NumPy's global generator alone
    np.random.seed(5)
    state = np.random.get_state()[1].copy()
    again = load_regression_data(np.float32)
    np.testing.assert_array_equal(np.random.get_state()[1], state)
    assert again["X_test"].dtype == np.float32
    np.testing.assert_allclose(again["X_test"], d["X_test"], rtol=1e-6)


# ------------------------------------------------------------------ Solver

def test_r2_score_matches_scikit_learn_and_is_clipped():
    from sklearn.metrics import r2_score
    rng = np.random.default_rng(0)
    y = rng.standard_normal((30, 2))
    pred = y + 0.3 * rng.standard_normal((30, 2))
    assert abs(_r2_score(y, pred) - r2_score(y, pred)) < 1e-12
    assert _r2_score(y[:, 0], pred[:, :1]) == pytest.approx(r2_score(y[:, 0], pred[:, 0]))
    assert _r2_score(y, -y) == 0.0          # worse than the mean: clipped at 0
    assert _r2_score(y, y) == 1.0


def test_solver_trains_a_regression_net_and_keeps_the_best():
    d = load_regression_data(np.float32)
    np.random.seed(0)
    net = Net([10, 32, 1], loss="mse", seed=0)
    solver = Solver(net, d, update_rule="adam", optim_config={"learning_rate": 1e-2},
                    num_epochs=20, batch_size=32, verbose=False)
    solver.train()
    assert len(solver.val_acc_history) >= 20
    assert all(0.0 <= v <= 1.0 for v in solver.val_acc_history)
    assert solver.best_val_acc == max(solver.val_acc_history) > 0.3
    # the best epoch's parameters are in the net at the end
    assert _r2_score(d["y_val"], net.predict(d["X_val"])) == pytest.approx(
        solver.best_val_acc, abs=1e-6)
    # the linear model's R^2 on this split is about 0.5: the net is in that range
    assert _r2_score(d["y_test"], net.predict(d["X_test"])) > 0.35


def test_solver_takes_1d_targets_for_one_output():
    d = load_regression_data()
    d1 = {k: (v[:, 0] if k.startswith("y_") else v) for k, v in d.items()}
    runs = []
    for data in (d, d1):
        np.random.seed(1)
        net = Net([10, 8, 1], loss="mse", seed=1, dtype=np.float64)
        Solver(net, data, update_rule="sgd", num_epochs=2, batch_size=50,
               verbose=False).train()
        runs.append(net.params["W1"].copy())
    np.testing.assert_array_equal(*runs)


# ------------------------------------------------------------------ the command

def test_train_mse_on_diabetes_writes_a_regression_run(in_tmp, capsys):
    assert train("--dataset", "diabetes", "--epochs", "25", "--batch-size", "32",
                 "--learning-rate", "1e-2", "--out", "run") == 0
    out = capsys.readouterr().out
    assert "data: diabetes, 310 train / 66 val / 66 test samples" in out
    assert "train R2: " in out and "val_R2: " in out
    last = out.strip().splitlines()[-1]
    assert last.startswith("train R2 ") and "(66 samples)" in last
    config = json.loads((in_tmp / "run" / "config.json").read_text())
    assert config["loss"] == "mse" and config["dataset"] == "diabetes"
    metrics = json.loads((in_tmp / "run" / "metrics.json").read_text())
    assert metrics["metric"] == "r2"
    assert metrics["final_accuracy"]["test"] > 0.3
    assert (in_tmp / "run" / "history.png").exists()
    assert not (in_tmp / "run" / "weights.png").exists()   # not images
    net = Net.load(in_tmp / "run" / "model.npz")
    assert net.loss_name == "mse" and net.layer_dims[-1] == 1
    assert "loss='mse'" in repr(net)
    d = load_regression_data(np.float32)
    assert _r2_score(d["y_test"], net.predict(d["X_test"])) == pytest.approx(
        metrics["final_accuracy"]["test"], abs=1e-6)
    # evaluate reads it back
    assert cli.main(["evaluate", "run"]) == 0
    out = capsys.readouterr().out
    assert f"diabetes test: R2 {metrics['final_accuracy']['test']:.4f}" in out
    assert "mean squared error" in out and "on 66 samples" in out
    # and --resume continues it
    assert train("--resume", "run", "--epochs", "27", "--quiet") == 0
    assert json.loads((in_tmp / "run" / "metrics.json").read_text())["epochs"] == 27


def test_explicit_loss_mse_and_default_loss_per_dataset(in_tmp, capsys):
    assert train("--dataset", "diabetes", "--loss", "mse", "--epochs", "1", "--quiet",
                 "--out", "a") == 0
    assert train("--epochs", "1", "--quiet", "--out", "b") == 0
    assert json.loads((in_tmp / "b" / "config.json").read_text())["loss"] == "softmax"
    assert train("--loss", "svm", "--epochs", "1", "--quiet", "--out", "c") == 0
    assert Net.load(in_tmp / "c" / "model.npz").loss_name == "svm"


@pytest.mark.parametrize("argv, words", [
    (["--loss", "mse"], "--loss mse does not fit the data set digits"),
    (["--dataset", "diabetes", "--loss", "softmax"],
     "--loss softmax does not fit the data set diabetes"),
    (["--dataset", "diabetes", "--augment", "translate=1"], "the diabetes data are not images"),
    (["--dataset", "diabetes", "--preprocess", "mean"], "--preprocess mean is for images"),
    (["--dataset", "diabetes", "--num-test", "67"], "--num-test must be an integer between "
                                                     "1 and 66"),
])
def test_bad_regression_options(in_tmp, capsys, argv, words):
    assert train(*argv, "--epochs", "1") == 2
    assert words in error_line(capsys)
    assert not (in_tmp / "runs").exists() or not list((in_tmp / "runs").iterdir())


def test_old_config_without_loss_resumes_as_softmax(in_tmp, capsys):
    assert train("--epochs", "1", "--quiet", "--out", "run") == 0
    path = in_tmp / "run" / "config.json"
    config = json.loads(path.read_text())
    del config["loss"]
    path.write_text(json.dumps(config))
    assert train("--resume", "run", "--epochs", "2", "--quiet") == 0
    assert json.loads(path.read_text())["loss"] == "softmax"


@pytest.mark.parametrize("extra", [[], ["--normalization", "batchnorm"],
                                   ["--normalization", "layernorm", "--num-classes", "1"]])
def test_gradcheck_mse(capsys, extra):
    assert cli.main(["gradcheck", "--loss", "mse", *extra]) == 0
    assert "gradient check passed" in capsys.readouterr().out


def test_gradcheck_mse_catches_a_wrong_gradient(monkeypatch, capsys):
    loss = Net.loss

    def wrong(self, X, y=None, **kw):
        out = loss(self, X, y, **kw)
        if y is not None:
            out[1]["b2"] = out[1]["b2"] * 2
        return out
    monkeypatch.setattr(Net, "loss", wrong)
    assert cli.main(["gradcheck", "--loss", "mse", "--hidden-dims", "5"]) == 1
    assert "FAILED for b2" in capsys.readouterr().out


def test_datasets_tables_agree():
    assert set(T.IMAGE_SHAPES) == set(T.DATASETS) == set(T.TEST_IMAGES)
    assert set(T.REGRESSION_DATASETS) <= set(T.DATASETS)
    assert T.TEST_IMAGES["diabetes"] == DIABETES_SPLIT[2]
