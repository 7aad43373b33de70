"""fastfc train's recipe options: --update-rule adamw --weight-decay, --label-smoothing,
--warmup, --ema-decay/--ema-every; what they reach, what they refuse, and resume."""
import json

import numpy as np
import pytest

from fastfc import cli
from fastfc import _cli_train as T
from fastfc.checkpoint import load_checkpoint


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def train(*argv):
    return cli.main(["train", "--no-progress", "--quiet", *argv])


def one_error_line(capsys):
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def params_of(path):
    arrays, _ = load_checkpoint(path)
    return {k: v for k, v in arrays.items() if k.startswith(("param/", "model/running"))}


RECIPE = ["--hidden", "24", "--batch-size", "50", "--update-rule", "adamw",
          "--weight-decay", "0.05", "--label-smoothing", "0.1", "--schedule", "cosine",
          "--warmup", "0.2", "--ema-decay", "0.9", "--ema-every", "2"]


def test_recipe_options_reach_the_net_and_the_solver(in_tmp, monkeypatch):
    seen = {}
    real_solver = T._build_solver

    def spy(settings, net, *args, **kwargs):
        solver = real_solver(settings, net, *args, **kwargs)
        seen.update(net=net, solver=solver)
        return solver

    monkeypatch.setattr(T, "_build_solver", spy)
    assert train(*RECIPE, "--epochs", "2", "--out", "run") == 0
    net, solver = seen["net"], seen["solver"]
    assert net.label_smoothing == 0.1
    assert solver.update_rule.__name__ == "adamw"
    assert solver.optim_config["weight_decay"] == 0.05
    assert (solver.warmup, solver.ema_decay, solver.ema_every) == (0.2, 0.9, 2)
    config = json.loads((in_tmp / "run" / "config.json").read_text())
    assert {k: config[k] for k in ("update_rule", "weight_decay", "label_smoothing",
                                   "warmup", "ema_decay", "ema_every")} == \
        {"update_rule": "adamw", "weight_decay": 0.05, "label_smoothing": 0.1,
         "warmup": 0.2, "ema_decay": 0.9, "ema_every": 2}


def test_recipe_options_change_the_run(in_tmp):
    """Each option changes the trained weights (none is silently dropped)."""
    base = ["--hidden", "24", "--batch-size", "50", "--epochs", "1", "--schedule", "cosine"]
    assert train(*base, "--update-rule", "adam", "--out", "plain") == 0
    ref = params_of(in_tmp / "plain" / "model.npz")
    variants = {"adamw": ["--update-rule", "adamw", "--weight-decay", "0.5"],
                "smooth": ["--label-smoothing", "0.2"], "warm": ["--warmup", "0.3"],
                "ema": ["--ema-decay", "0.8"]}
    for name, extra in variants.items():
        assert train(*base, *extra, "--out", name) == 0
        other = params_of(in_tmp / name / "model.npz")
        assert any(not np.array_equal(ref[k], other[k]) for k in ref), name


def test_resume_with_recipe_options_is_exact(in_tmp):
    """(A cosine run cannot be extended, so this one has no schedule, hence no warm-up;
    the Solver's own tests resume a warm-up mid-run.)"""
    recipe = RECIPE[:RECIPE.index("--schedule")] + RECIPE[RECIPE.index("--ema-decay"):]
    assert train(*recipe, "--epochs", "1", "--out", "short") == 0
    assert train("--resume", "short", "--epochs", "2") == 0
    assert train(*recipe, "--epochs", "2", "--out", "straight") == 0
    a = params_of(in_tmp / "short" / "solver.npz")
    b = params_of(in_tmp / "straight" / "solver.npz")
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_a_config_json_without_the_new_settings_resumes_as_before(in_tmp):
    common = ["--hidden", "20", "--batch-size", "50"]
    assert train(*common, "--epochs", "1", "--out", "old") == 0
    assert train(*common, "--epochs", "2", "--out", "straight") == 0
    path = in_tmp / "old" / "config.json"
    config = json.loads(path.read_text())
    for key in T.ADDED_SETTINGS:
        config.pop(key)
    path.write_text(json.dumps(config))
    assert train("--resume", "old", "--epochs", "2") == 0
    for k, v in params_of(in_tmp / "straight" / "model.npz").items():
        np.testing.assert_array_equal(params_of(in_tmp / "old" / "model.npz")[k], v)


@pytest.mark.parametrize("argv, words", [
    (["--label-smoothing", "1"], "--label-smoothing must be a finite number in [0, 1)"),
    (["--label-smoothing", "-0.1"], "--label-smoothing"),
    (["--warmup", "0.1"], "--warmup needs the cosine schedule"),
    (["--schedule", "cosine", "--warmup", "1.5"], "--warmup"),
    (["--ema-decay", "1"], "--ema-decay must be a finite number in (0, 1)"),
    (["--ema-decay", "0"], "--ema-decay"),
    (["--ema-every", "0"], "--ema-every"),
    (["--weight-decay", "0.1"], "--weight-decay is the decoupled decay of the adamw rule"),
    (["--update-rule", "adamw", "--weight-decay", "-1"], "--weight-decay"),
], ids=lambda a: " ".join(a) if isinstance(a, list) else "")
def test_bad_recipe_options_name_the_flag(in_tmp, capsys, argv, words):
    assert train("--epochs", "1", *argv) == 2
    line = one_error_line(capsys)
    assert words in line, line
    assert not (in_tmp / "runs").exists()


def test_label_smoothing_is_refused_for_regression(in_tmp, capsys):
    assert train("--dataset", "diabetes", "--epochs", "1", "--label-smoothing", "0.1") == 2
    assert "--label-smoothing applies to the softmax loss only" in one_error_line(capsys)
