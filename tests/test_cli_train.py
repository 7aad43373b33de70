"""Tests of ``fastfc train | evaluate | gradcheck``: the real command on small data.

Most tests call ``fastfc.cli.main([...])`` in process (the digits data set, a few
epochs); the Ctrl-C test runs ``python -m fastfc`` and sends it SIGINT.
"""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from fastfc import Net, cli
from fastfc import _cli_train as T
from fastfc._defaults import FRONTEND_DEFAULTS, describe_rule
from fastfc.checkpoint import load_checkpoint

import fastfc

SRC = os.path.dirname(os.path.dirname(os.path.abspath(fastfc.__file__)))


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """Run in an empty directory (runs/ is created relative to the working directory)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def train(*argv):
    return cli.main(["train", "--no-progress", *argv])


def one_error_line(capsys):
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("fastfc: error: ")
    return lines[0]


def params_of(path):
    arrays, _ = load_checkpoint(path)
    return {k: v for k, v in arrays.items() if k.startswith(("param/", "model/running"))}


def assert_same_arrays(a, b):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def run_files(run):
    return {name: (run / name).read_bytes() for name in sorted(os.listdir(run))}


# ------------------------------------------------------------------ defaults (issue 15.2)

def test_train_defaults_are_the_front_end_defaults():
    fd = FRONTEND_DEFAULTS
    assert T.DEFAULTS["hidden_dims"] == list(fd["hidden_dims"])
    for key in ("activation", "normalization", "dropout_keep_ratio", "reg", "update_rule",
                "learning_rate", "lr_decay", "batch_size"):
        assert T.DEFAULTS[key] == fd[key], key


def test_train_prints_the_update_rule_it_uses(in_tmp, capsys):
    assert train("--epochs", "1", "--out", "a") == 0
    out = capsys.readouterr().out
    rule = describe_rule(FRONTEND_DEFAULTS["update_rule"], FRONTEND_DEFAULTS["learning_rate"])
    assert rule in out.splitlines()
    config = json.loads((in_tmp / "a" / "config.json").read_text())
    assert config["update_rule"] == FRONTEND_DEFAULTS["update_rule"]
    assert config["learning_rate"] == FRONTEND_DEFAULTS["learning_rate"]
    assert config["hidden_dims"] == list(FRONTEND_DEFAULTS["hidden_dims"])
    assert config["batch_size"] == FRONTEND_DEFAULTS["batch_size"]

    assert train("--num-epochs", "1", "--out", "b", "--update-rule", "sgd",
                 "--learning-rate", "0.05") == 0
    assert describe_rule("sgd", 0.05) in capsys.readouterr().out.splitlines()
    assert train("--epochs", "1", "--out", "c", "--quiet") == 0
    assert "update rule" not in capsys.readouterr().out


# ------------------------------------------------------------------ preprocessing (15.1)

def _fake_cifar(calls):
    def get_CIFAR10_data(**kwargs):
        calls.append(kwargs)
        rng = np.random.default_rng(0)
        dtype = kwargs.get("dtype", np.float64)
        n = {"train": 60, "val": 20, "test": kwargs["num_test"]}
        data = {}
        for split, k in n.items():
            data[f"X_{split}"] = rng.standard_normal((k, 3, 32, 32)).astype(dtype)
            data[f"y_{split}"] = rng.integers(0, 10, size=k)
        return data
    return get_CIFAR10_data


@pytest.mark.parametrize("argv, standardize, subtract_mean", [
    ([], True, False),
    (["--preprocess", "standardize"], True, False),
    (["--preprocess", "mean"], False, True),
    (["--no-standardize"], False, True),
    (["--preprocess", "none"], False, False),
], ids=["default", "standardize", "mean", "no-standardize", "none"])
def test_cifar10_preprocessing_default_is_per_channel_standardisation(
        in_tmp, monkeypatch, argv, standardize, subtract_mean):
    from fastfc import data_utils
    calls = []
    monkeypatch.setattr(data_utils, "get_CIFAR10_data", _fake_cifar(calls))
    assert train("--dataset", "cifar10", "--epochs", "1", "--num-test", "10", "--quiet",
                 "--out", "run", *argv) == 0
    (kwargs,) = calls
    assert kwargs["standardize"] is standardize
    assert kwargs["subtract_mean"] is subtract_mean
    config = json.loads((in_tmp / "run" / "config.json").read_text())
    assert config["preprocess"] == ("standardize" if standardize else
                                    "mean" if subtract_mean else "none")


def test_digits_default_preprocessing_standardises_with_training_statistics():
    settings = dict(T.DEFAULTS)
    data, shape = T.load_data(settings)
    assert shape == (1, 8, 8)
    X = data["X_train"].astype(np.float64)
    assert abs(X.mean()) < 1e-5 and abs(X.std() - 1) < 1e-5
    assert data["X_train"].dtype == np.float32
    assert abs(data["X_test"].mean()) < 0.2     # the same shift, not its own statistics


def test_preprocess_is_documented_in_help(capsys):
    assert cli.main(["train", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "--preprocess {standardize,mean,none,zca}" in out
    assert "--no-standardize" in out


# ------------------------------------------------------------------ resume (15.4, 16.5)

def test_resume_extends_the_run_to_more_epochs_exactly(in_tmp, capsys):
    common = ["--quiet", "--hidden", "20", "--batch-size", "50"]
    assert train(*common, "--epochs", "2", "--out", "short") == 0
    assert train("--resume", "short", "--epochs", "4", "--quiet") == 0
    assert train(*common, "--epochs", "4", "--out", "straight") == 0
    assert_same_arrays(params_of(in_tmp / "short" / "solver.npz"),
                       params_of(in_tmp / "straight" / "solver.npz"))
    assert_same_arrays(params_of(in_tmp / "short" / "model.npz"),
                       params_of(in_tmp / "straight" / "model.npz"))
    extended = json.loads((in_tmp / "short" / "metrics.json").read_text())
    straight = json.loads((in_tmp / "straight" / "metrics.json").read_text())
    assert extended["epochs"] == 4
    assert extended["history"] == straight["history"]
    assert json.loads((in_tmp / "short" / "config.json").read_text())["num_epochs"] == 4


def test_resume_refuses_fewer_epochs_than_done(in_tmp, capsys):
    assert train("--quiet", "--epochs", "3", "--out", "run") == 0
    before = run_files(in_tmp / "run")
    capsys.readouterr()
    assert train("--resume", "run", "--epochs", "2") == 2
    line = one_error_line(capsys)
    assert "--num-epochs 2" in line and "3 epochs" in line
    assert run_files(in_tmp / "run") == before


def test_resume_with_nothing_left_rewrites_nothing(in_tmp, capsys):
    assert train("--quiet", "--epochs", "2", "--out", "run", "--normalization",
                 "batchnorm") == 0
    before = run_files(in_tmp / "run")
    capsys.readouterr()
    assert train("--resume", "run") == 0
    assert "nothing left to train" in capsys.readouterr().out
    assert run_files(in_tmp / "run") == before


def test_resume_refuses_options_that_would_change_the_run(in_tmp, capsys):
    assert train("--quiet", "--epochs", "1", "--out", "run") == 0
    capsys.readouterr()
    assert train("--resume", "run", "--lr", "0.5") == 2
    line = one_error_line(capsys)
    assert "--learning-rate" in line and "config.json" in line


def _start(argv, cwd):
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""),
               PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "fastfc", "train", "--no-progress",
                             *argv], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.mark.skipif(os.name == "nt", reason="SIGINT to a child process is POSIX")
def test_ctrl_c_then_resume_ends_as_an_uninterrupted_run(tmp_path):
    # long enough that SIGINT lands mid-run: ~25 iterations per epoch, 60 epochs
    argv = ["--hidden", "64", "--batch-size", "50", "--epochs", "60",
            "--normalization", "batchnorm", "--dropout-keep", "0.9"]
    proc = _start(argv + ["--out", "run"], tmp_path)
    for line in proc.stdout:                       # wait for the end of the first epoch
        if line.startswith("(Epoch 1 /"):
            break
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    if proc.returncode == 0:
        pytest.skip("the run ended before SIGINT arrived (machine too fast)")
    assert proc.returncode == 130, err
    lines = err.splitlines()
    assert len(lines) == 1, err                    # one line: no warning, no traceback
    assert lines[0].startswith("fastfc: interrupted at iteration ")
    assert f"fastfc train --resume {'run'}" in lines[0]
    assert "state saved to" in lines[0]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["interrupted"] is True and metrics["epochs"] < 60

    done = subprocess.run([sys.executable, "-m", "fastfc", "train", "--resume", "run",
                           "--quiet"], cwd=tmp_path, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=SRC), timeout=300)
    assert done.returncode == 0, done.stderr
    straight = _start(argv + ["--out", "straight", "--quiet"], tmp_path)
    out, err = straight.communicate(timeout=300)
    assert straight.returncode == 0, err
    assert_same_arrays(params_of(tmp_path / "run" / "solver.npz"),
                       params_of(tmp_path / "straight" / "solver.npz"))
    assert_same_arrays(params_of(tmp_path / "run" / "model.npz"),
                       params_of(tmp_path / "straight" / "model.npz"))
    a = Net.load(tmp_path / "run" / "model.npz")
    b = Net.load(tmp_path / "straight" / "model.npz")
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])


# ------------------------------------------------------------------ norm stats (15.5)

def test_model_npz_keeps_the_best_epochs_running_statistics(in_tmp, capsys):
    # with these settings the best validation accuracy is at epoch 5 of 6
    common = ["--quiet", "--normalization", "batchnorm", "--hidden", "32", "--lr", "0.01",
              "--seed", "0"]
    assert train(*common, "--epochs", "6", "--out", "long") == 0
    val = json.loads((in_tmp / "long" / "metrics.json").read_text())["history"]["val_acc"]
    best = int(np.argmax(val))
    assert 0 < best < len(val) - 1, val
    # a run that stops at the best epoch ends with exactly that epoch's state
    assert train(*common, "--epochs", str(best), "--out", "short") == 0
    long_model, _ = load_checkpoint(in_tmp / "long" / "model.npz")
    short_model, _ = load_checkpoint(in_tmp / "short" / "model.npz")
    long_solver, _ = load_checkpoint(in_tmp / "long" / "solver.npz")
    stats = [k for k in long_model if "running_" in k]
    assert stats
    for k in stats:
        np.testing.assert_array_equal(long_model[k], short_model[k], err_msg=k)
        assert not np.array_equal(long_model[k], long_solver[k])   # not the last epoch's
    # and the saved model scores the best validation accuracy again
    net = Net.load(in_tmp / "long" / "model.npz")
    data, _ = T.load_data(dict(T.DEFAULTS))
    assert np.mean(net.predict(data["X_val"]) == data["y_val"]) == max(val)


# ------------------------------------------------------------------ run folders (15.6)

def test_a_failed_train_leaves_no_run_folder(in_tmp, capsys, monkeypatch):
    monkeypatch.delenv("FASTFC_DATA", raising=False)
    status = train("--dataset", "cifar10", "--data", str(in_tmp / "nowhere"))
    assert not (in_tmp / "runs").exists() or os.listdir(in_tmp / "runs") == []
    assert status == 2
    line = one_error_line(capsys)
    assert "--data" in line and "cifar10_dir" not in line
    assert train("--dataset", "cifar10") == 2
    line = one_error_line(capsys)
    assert "--data DIR" in line and "cifar10_dir" not in line
    assert train("--epochs", "0") == 2
    assert "--num-epochs" in one_error_line(capsys)
    assert not (in_tmp / "runs").exists() or os.listdir(in_tmp / "runs") == []


def test_runs_started_in_the_same_second_get_their_own_folders(in_tmp, monkeypatch, capsys):
    monkeypatch.setattr(T.time, "strftime", lambda fmt, *a: "20260101-120000")
    for _ in range(3):
        assert train("--epochs", "1", "--quiet") == 0
    names = sorted(os.listdir(in_tmp / "runs"))
    assert names == ["digits-20260101-120000", "digits-20260101-120000-2",
                     "digits-20260101-120000-3"]
    for name in names:
        assert (in_tmp / "runs" / name / "model.npz").exists()


def test_out_must_be_new_or_empty(in_tmp, capsys):
    (in_tmp / "full").mkdir()
    (in_tmp / "full" / "notes.txt").write_text("mine")
    assert train("--epochs", "1", "--out", "full") == 2
    line = one_error_line(capsys)
    assert "--out full" in line and "not empty" in line
    assert os.listdir(in_tmp / "full") == ["notes.txt"]
    (in_tmp / "empty").mkdir()
    assert train("--epochs", "1", "--out", "empty", "--quiet") == 0
    assert (in_tmp / "empty" / "model.npz").exists()


# ------------------------------------------------------------------ divergence (15.7)

def test_divergence_stops_with_a_clear_error(in_tmp, capsys):
    assert train("--lr", "100", "--update-rule", "sgd", "--epochs", "5", "--quiet") == 1
    line = one_error_line(capsys)
    assert "diverged" in line and "learning rate" in line
    assert not (in_tmp / "runs").exists() or os.listdir(in_tmp / "runs") == []


# ------------------------------------------------------------------ frictions (15.8)

def test_gradcheck_sigmoid_wide_net_passes(capsys):
    assert cli.main(["gradcheck", "--activation", "sigmoid", "--hidden", "100,100"]) == 0
    assert "gradient check passed" in capsys.readouterr().out


def test_gradcheck_still_catches_a_wrong_gradient(monkeypatch, capsys):
    loss = Net.loss

    def wrong(self, X, y=None):
        out = loss(self, X, y)
        if y is not None:
            out[1]["W2"] = out[1]["W2"] * (1 + 1e-4)
        return out
    monkeypatch.setattr(Net, "loss", wrong)
    assert cli.main(["gradcheck"]) == 1
    assert "FAILED for W2" in capsys.readouterr().out


@pytest.mark.parametrize("argv, flag", [
    (["--lr", "-1"], "--learning-rate"), (["--learning-rate", "nan"], "--learning-rate"),
    (["--dropout-keep", "2"], "--dropout-keep-ratio"),
    (["--dropout-keep-ratio", "0"], "--dropout-keep-ratio"),
    (["--weight-scale", "-1"], "--weight-scale"), (["--time-budget", "0"], "--time-budget"),
    (["--lr-decay", "-1"], "--lr-decay"), (["--print-every", "0"], "--print-every"),
    (["--seed", "-1"], "--seed"), (["--batch-size", "0"], "--batch-size"),
    (["--schedule", "cosine", "--lr-decay", "0.9"], "--lr-decay"),
    (["--augment", "translate=50"], "--augment"), (["--hidden", "10,x"], "--hidden-dims"),
    (["--hidden-dims", "0"], "--hidden-dims"),
], ids=lambda a: " ".join(a) if isinstance(a, list) else "")
def test_bad_options_name_the_flag(in_tmp, capsys, argv, flag):
    assert train("--epochs", "1", *argv) == 2
    line = one_error_line(capsys)
    assert flag in line, line
    for python_name in ("config[", "learning_rate", "dropout_keep_ratio", "weight_scale",
                        "time_budget", "lr_decay"):
        assert python_name not in line, line
    assert not (in_tmp / "runs").exists()


def test_every_option_has_help():
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name in ("train", "evaluate", "gradcheck", "info"):
        for action in sub.choices[name]._actions:
            if action.option_strings and action.dest != "help":
                assert action.help, f"fastfc {name} {action.option_strings[0]} has no help"


def test_flip_is_refused_for_digits(in_tmp, capsys):
    assert train("--epochs", "1", "--augment", "flip,translate=1") == 2
    line = one_error_line(capsys)
    assert "--augment" in line and "digits" in line and "symmetric" in line
    assert train("--epochs", "1", "--augment", "translate=1", "--quiet") == 0


def test_ctrl_c_before_training_is_one_line(in_tmp, monkeypatch, capsys):
    def interrupt(settings):
        raise KeyboardInterrupt
    monkeypatch.setattr(T, "load_data", interrupt)
    assert train("--epochs", "1") == 130
    assert capsys.readouterr().err == "fastfc: error: interrupted\n"


def test_warnings_are_one_line(in_tmp, monkeypatch, capsys):
    import warnings
    from fastfc import Solver
    train_ = Solver.train

    def noisy(self):
        warnings.warn("something odd\n  happened", RuntimeWarning)
        return train_(self)
    monkeypatch.setattr(Solver, "train", noisy)
    assert train("--epochs", "1", "--quiet") == 0
    assert capsys.readouterr().err == "fastfc: warning: something odd happened\n"


# ------------------------------------------------------------------ symlinks (16.9)

def test_outputs_replace_planted_symlinks_instead_of_writing_through(in_tmp, capsys):
    assert train("--epochs", "1", "--quiet", "--out", "run") == 0
    victims = {}
    for name in ("history.png", "weights.png", "metrics.json", "config.json", "model.npz"):
        target = in_tmp / f"victim-{name}"
        # config.json is read by --resume: its victim holds a valid copy
        text = (in_tmp / "run" / name).read_text() if name == "config.json" else "precious"
        target.write_text(text)
        victims[name] = (target, text)
        (in_tmp / "run" / name).unlink()
        os.symlink(target, in_tmp / "run" / name)
    assert train("--resume", "run", "--epochs", "2", "--quiet") == 0
    for name, (target, text) in victims.items():
        assert target.read_text() == text, name
        assert not os.path.islink(in_tmp / "run" / name), name
    assert json.loads((in_tmp / "run" / "config.json").read_text())["num_epochs"] == 2


# ------------------------------------------------------------------ validation (16.13)

@pytest.mark.parametrize("value", ["-5", "0", "271"])
def test_num_test_out_of_range_is_refused(in_tmp, capsys, value):
    assert train("--epochs", "1", "--num-test", value) == 2
    line = one_error_line(capsys)
    assert "--num-test" in line and "between 1 and 270" in line


def test_metrics_json_is_strict_json(in_tmp, capsys):
    assert train("--epochs", "1", "--quiet", "--num-test", "5", "--out", "run") == 0

    def refuse(name):
        raise ValueError(f"non-standard JSON constant {name}")
    metrics = json.loads((in_tmp / "run" / "metrics.json").read_text(), parse_constant=refuse)
    assert metrics["test_images"] == 5
    T._write_json(in_tmp / "x.json", {"a": float("nan"), "b": [float("inf"), 1.0]})
    assert json.loads((in_tmp / "x.json").read_text(), parse_constant=refuse) == \
        {"a": None, "b": [None, 1.0]}


@pytest.mark.parametrize("edit, words", [
    (lambda c: c.update(batch_size=0), ["'batch_size'", "--batch-size", ">= 1"]),
    (lambda c: c.pop("learning_rate"), ["lacks the key 'learning_rate'"]),
    (lambda c: c.update(threads=1000), ["'threads'", "between 1 and"]),
    (lambda c: c.update(hidden_dims="100"), ["'hidden_dims'", "--hidden-dims",
                                             "positive integers"]),
    (lambda c: c.update(update_rule="sgdd"), ["'update_rule'", "adam"]),
    (lambda c: c.update(learning_rate=None), ["'learning_rate'", "--learning-rate", "> 0"]),
], ids=["batch_size=0", "missing-lr", "threads=1000", "hidden-string", "bad-rule",
        "lr-null"])
def test_resume_validates_config_json(in_tmp, capsys, edit, words):
    assert train("--epochs", "1", "--quiet", "--out", "run") == 0
    path = in_tmp / "run" / "config.json"
    config = json.loads(path.read_text())
    edit(config)
    path.write_text(json.dumps(config))
    capsys.readouterr()
    assert train("--resume", "run", "--epochs", "2") == 2
    line = one_error_line(capsys)
    assert str(path.relative_to(in_tmp)) in line
    for word in words:
        assert word in line, line


def test_resume_options_override_the_config(in_tmp, capsys):
    assert train("--epochs", "1", "--quiet", "--out", "run") == 0
    path = in_tmp / "run" / "config.json"
    config = json.loads(path.read_text())
    path.write_text(json.dumps(dict(config, threads=1000)))   # from a bigger machine
    capsys.readouterr()
    assert train("--resume", "run", "--epochs", "2", "--threads", "1", "--quiet") == 0
    assert json.loads(path.read_text())["threads"] == 1
    assert train("--resume", "run", "--epochs", "3", "--threads", "0") == 2
    line = one_error_line(capsys)
    assert line.startswith("fastfc: error: --threads must be")


def test_threads_beyond_the_cpu_count_are_refused(in_tmp, capsys):
    assert train("--epochs", "1", "--threads", str((os.cpu_count() or 1) + 1)) == 2
    assert "--threads" in one_error_line(capsys)
    assert train("--epochs", "1", "--threads", "1", "--quiet") == 0


def test_evaluate_reads_the_run(in_tmp, capsys):
    assert train("--epochs", "2", "--quiet", "--out", "run") == 0
    capsys.readouterr()
    assert cli.main(["evaluate", "run", "--split", "val"]) == 0
    metrics = json.loads((in_tmp / "run" / "metrics.json").read_text())
    out = capsys.readouterr().out
    assert f"accuracy {metrics['final_accuracy']['val']:.4f}" in out
    assert cli.main(["evaluate", "run", "--num-test", "0"]) == 2
    assert "--num-test" in one_error_line(capsys)


# ------------------------------------------------------------------ API names (17.6)

#: the CLI's former spellings and the API names that replaced them
RENAMED = {"--hidden": "--hidden-dims", "--dropout-keep": "--dropout-keep-ratio",
           "--lr": "--learning-rate", "--epochs": "--num-epochs"}


def _sub_parser(command):
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return sub.choices[command]


@pytest.mark.parametrize("old, new", sorted(RENAMED.items()))
def test_train_options_take_the_api_names_and_keep_the_old_ones(old, new):
    parser = _sub_parser("train")
    value = "3" if "epochs" in new else "0.5"
    by_new, by_old = parser.parse_args([new, value]), parser.parse_args([old, value])
    key = new[2:].replace("-", "_")
    assert key in T.DEFAULTS
    assert getattr(by_new, key) == getattr(by_old, key) is not None
    assert vars(by_new) == vars(by_old)


def test_help_shows_both_spellings():
    for command, pairs in (("train", RENAMED),
                           ("gradcheck", {"--hidden": "--hidden-dims",
                                          "--dropout-keep": "--dropout-keep-ratio",
                                          "--classes": "--num-classes",
                                          "--batch": "--batch-size"}),
                           ("sweep", {"--epochs": "--num-epochs"})):
        text = " ".join(_sub_parser(command).format_help().split())
        for old, new in pairs.items():
            assert f"{new} " in text and f"{old} " in text, (command, old, new)
            assert text.index(new + " ") < text.index(old + " "), (command, old, new)


def test_config_json_and_presets_use_the_api_names(in_tmp, capsys):
    for preset in T.PRESETS.values():
        assert set(preset) <= set(T.DEFAULTS), preset
    assert not set(T.OLD_KEYS) & set(T.DEFAULTS)
    assert train("--num-epochs", "1", "--hidden-dims", "16", "--dropout-keep-ratio", "0.9",
                 "--learning-rate", "0.002", "--quiet", "--out", "run") == 0
    config = json.loads((in_tmp / "run" / "config.json").read_text())
    assert set(config) == set(T.DEFAULTS) | {"preset"}
    assert (config["num_epochs"], config["hidden_dims"], config["dropout_keep_ratio"],
            config["learning_rate"]) == (1, [16], 0.9, 0.002)
    metrics = json.loads((in_tmp / "run" / "metrics.json").read_text())
    assert metrics["config"] == config
    assert Net.load(in_tmp / "run" / "model.npz").metadata["settings"] == config


def test_resume_reads_a_config_json_written_with_the_old_keys(in_tmp, capsys):
    common = ["--quiet", "--hidden", "20", "--batch-size", "50", "--dropout-keep", "0.9",
              "--lr", "0.002"]
    assert train(*common, "--epochs", "1", "--out", "old") == 0
    assert train(*common, "--epochs", "2", "--out", "straight") == 0
    path = in_tmp / "old" / "config.json"
    config = json.loads(path.read_text())
    new_to_old = {new: old for old, new in T.OLD_KEYS.items()}
    old_config = {new_to_old.get(k, k): v for k, v in config.items()}
    # what 'fastfc train' wrote before the settings took the API's names
    assert {"hidden", "dropout_keep", "lr", "epochs"} <= set(old_config)
    assert not {"hidden_dims", "dropout_keep_ratio", "learning_rate", "num_epochs"} \
        & set(old_config)
    path.write_text(json.dumps(old_config))
    assert train("--resume", "old", "--num-epochs", "2", "--quiet") == 0
    resumed = json.loads(path.read_text())
    assert resumed == dict(config, num_epochs=2)
    assert_same_arrays(params_of(in_tmp / "old" / "model.npz"),
                       params_of(in_tmp / "straight" / "model.npz"))
    # a file holding both spellings of a setting is refused, naming the stray key
    path.write_text(json.dumps(dict(resumed, lr=0.5)))
    capsys.readouterr()
    assert train("--resume", "old", "--epochs", "3") == 2
    line = one_error_line(capsys)
    assert "unknown key 'lr'" in line


def test_evaluate_reads_a_model_whose_settings_use_the_old_keys(in_tmp, capsys):
    assert train("--epochs", "1", "--quiet", "--num-test", "7", "--out", "run") == 0
    net = Net.load(in_tmp / "run" / "model.npz")
    new_to_old = {new: old for old, new in T.OLD_KEYS.items()}
    settings = {new_to_old.get(k, k): v for k, v in net.metadata["settings"].items()}
    net.save(in_tmp / "old.npz", settings=settings)
    capsys.readouterr()
    assert cli.main(["evaluate", str(in_tmp / "old.npz")]) == 0
    assert "on 7 images" in capsys.readouterr().out


def test_gradcheck_takes_the_api_names_and_the_old_ones(capsys):
    assert cli.main(["gradcheck", "--hidden-dims", "4", "--num-classes", "3",
                     "--batch-size", "5", "--dropout-keep-ratio", "1"]) == 0
    new = capsys.readouterr().out
    assert cli.main(["gradcheck", "--hidden", "4", "--classes", "3", "--batch", "5",
                     "--dropout-keep", "1"]) == 0
    assert capsys.readouterr().out == new
    assert "on 5 random samples" in new
    for argv, flag in ((["--classes", "1"], "--num-classes"), (["--batch", "0"], "--batch-size"),
                       (["--dropout-keep", "0"], "--dropout-keep-ratio"),
                       (["--hidden", "x"], "--hidden-dims")):
        assert cli.main(["gradcheck", *argv]) == 2
        assert flag in one_error_line(capsys)


# ------------------------------------------------------------------ bench (17.6)

def _plant_bench(folder, body):
    (folder / "bench").mkdir(parents=True)
    (folder / "bench" / "__init__.py").write_text("")
    (folder / "bench" / "__main__.py").write_text(body)


#: a harness that must never be imported: it leaves a file behind if it is
DECOY = "import pathlib\npathlib.Path(__file__).parent.parent.joinpath('DECOY-RAN')" \
        ".write_text('x')\n\ndef main(argv):\n    return 0\n"


@pytest.fixture
def no_bench_module(monkeypatch):
    """Whatever 'bench' modules a test imports are forgotten after it."""
    before = {k for k in sys.modules if k == "bench" or k.startswith("bench.")}
    yield
    for name in [k for k in sys.modules if k == "bench" or k.startswith("bench.")]:
        if name not in before:
            del sys.modules[name]


def test_bench_outside_a_source_tree_never_imports_the_working_directory(
        tmp_path, monkeypatch, capsys, no_bench_module):
    installed = tmp_path / "site-packages" / "fastfc"
    installed.mkdir(parents=True)
    work = tmp_path / "work"
    _plant_bench(work, DECOY)
    monkeypatch.chdir(work)
    monkeypatch.syspath_prepend(str(work))  # as `python -m fastfc` would have it
    monkeypatch.setattr(cli, "_PACKAGE_DIR", str(installed))
    assert "bench" not in sys.modules
    assert cli.main(["bench", "--quick"]) == 2
    line = one_error_line(capsys)
    assert "git clone" in line and "PYTHONPATH=src:. python -m bench" in line
    assert not (work / "DECOY-RAN").exists()
    assert "bench" not in sys.modules


def test_bench_runs_the_harness_of_the_source_tree_it_came_from(
        tmp_path, monkeypatch, capsys, no_bench_module):
    tree = tmp_path / "tree"
    (tree / "src" / "fastfc").mkdir(parents=True)
    _plant_bench(tree, "import sys\n\ndef main(argv):\n    print('TREE', argv)\n"
                       "    return 7\n")
    work = tmp_path / "work"
    _plant_bench(work, DECOY)
    monkeypatch.chdir(work)
    monkeypatch.syspath_prepend(str(work))
    monkeypatch.setattr(cli, "_PACKAGE_DIR", str(tree / "src" / "fastfc"))
    path_before = list(sys.path)
    assert cli.main(["bench", "--quick", "--rounds", "2"]) == 7
    assert "TREE ['--quick', '--rounds', '2']" in capsys.readouterr().out
    assert not (work / "DECOY-RAN").exists()
    assert os.path.dirname(sys.modules["bench"].__file__) == str(tree / "bench")
    assert sys.path == path_before
    assert cli.main(["--traceback", "bench", "--", "--workloads", "W1"]) == 7
    assert "TREE ['--workloads', 'W1']" in capsys.readouterr().out
    assert cli.main(["bench", "--help"]) == 0
    assert "usage: fastfc bench" in capsys.readouterr().out


def test_bench_source_tree_is_recognised_exactly(tmp_path):
    tree = tmp_path / "tree"
    (tree / "src" / "fastfc").mkdir(parents=True)
    assert cli.source_tree(str(tree / "src" / "fastfc")) is None        # no bench/
    (tree / "bench").mkdir()
    (tree / "bench" / "__init__.py").write_text("")
    assert cli.source_tree(str(tree / "src" / "fastfc")) is None        # no __main__.py
    (tree / "bench" / "__main__.py").write_text("")
    assert cli.source_tree(str(tree / "src" / "fastfc")) == str(tree)
    (tree / "lib" / "fastfc").mkdir(parents=True)
    assert cli.source_tree(str(tree / "lib" / "fastfc")) is None        # not src/
    (tree / "src" / "other").mkdir()
    assert cli.source_tree(str(tree / "src" / "other")) is None         # not fastfc/
    # this very fastfc: its own tree when it runs from one, else None
    package = os.path.dirname(os.path.realpath(fastfc.__file__))
    root = os.path.dirname(os.path.dirname(package))
    expected = root if os.path.basename(os.path.dirname(package)) == "src" and \
        os.path.isfile(os.path.join(root, "bench", "__main__.py")) else None
    assert cli.source_tree() == expected


def test_train_splits_the_gemms_over_the_pool_and_restores_the_blas(in_tmp, monkeypatch):
    # the command owns its process: it trains with OpenBLAS at one thread and fastfc's
    # pool sized to --threads, and gives OpenBLAS its count back when it ends
    from threadpoolctl import threadpool_limits

    from fastfc import _threads
    from fastfc.solver import Solver

    seen = []
    real_train = Solver.train

    def recording_train(self):
        seen.append(_threads.threading_info())
        return real_train(self)

    monkeypatch.setattr(Solver, "train", recording_train)
    with threadpool_limits(2, user_api="blas"):
        before = _threads.threading_info()["blas_threads"]
        assert train("--num-epochs", "1", "--threads", "2", "--quiet") == 0
        after = _threads.threading_info()["blas_threads"]
    (info,) = seen
    if info["mode"] == "pool":
        assert info["blas_threads"] == 1 and info["threads"] == 2 and info["splits_gemm"]
    assert after == before
