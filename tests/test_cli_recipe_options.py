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


# ------------------------------------------------------------------ zca and tta

def fake_cifar(calls):
    """get_CIFAR10_data on random images (records its keywords)."""
    def get_CIFAR10_data(**kwargs):
        calls.append(kwargs)
        rng = np.random.default_rng(0)
        dtype = kwargs.get("dtype", np.float64)
        data = {}
        for split, k in {"train": 80, "val": 20, "test": kwargs["num_test"]}.items():
            data[f"X_{split}"] = rng.standard_normal((k, 3, 32, 32)).astype(dtype)
            data[f"y_{split}"] = rng.integers(0, 10, size=k)
        return data
    return get_CIFAR10_data


def test_preprocess_zca_standardises_then_whitens_cifar(in_tmp, monkeypatch):
    from fastfc import data_utils
    calls = []
    monkeypatch.setattr(data_utils, "get_CIFAR10_data", fake_cifar(calls))
    assert train("--dataset", "cifar10", "--epochs", "1", "--num-test", "10", "--hidden",
                 "8", "--preprocess", "zca", "--zca-epsilon", "0.5", "--out", "run") == 0
    (kwargs,) = calls
    assert (kwargs["standardize"], kwargs["subtract_mean"]) == (True, False)
    assert (kwargs["whiten"], kwargs["zca_epsilon"]) == ("zca", 0.5)
    config = json.loads((in_tmp / "run" / "config.json").read_text())
    assert (config["preprocess"], config["zca_epsilon"]) == ("zca", 0.5)


def test_preprocess_zca_whitens_the_digits_with_training_statistics():
    from fastfc.data_utils import ZCAWhitening
    settings = dict(T.DEFAULTS, preprocess="standardize", dtype="float64")
    std, _ = T.load_data(settings)
    zca, _ = T.load_data(dict(settings, preprocess="zca", zca_epsilon=0.3))
    w = ZCAWhitening(epsilon=0.3).fit(std["X_train"])
    for split in ("train", "val", "test"):
        np.testing.assert_allclose(zca[f"X_{split}"], w.transform(std[f"X_{split}"]),
                                   rtol=1e-10, atol=1e-12)


def test_tta_flip_scores_the_mirror_images_too(in_tmp, monkeypatch, capsys):
    from fastfc import Net, data_utils
    from fastfc.augment import predict_flip_average
    monkeypatch.setattr(data_utils, "get_CIFAR10_data", fake_cifar([]))
    common = ["--dataset", "cifar10", "--epochs", "2", "--num-test", "40", "--hidden", "16"]
    assert train(*common, "--tta", "flip", "--out", "tta") == 0
    assert train(*common, "--out", "plain") == 0
    net = Net.load(in_tmp / "tta" / "model.npz")
    data = fake_cifar([])(num_test=40, dtype=np.float32)
    metrics = json.loads((in_tmp / "tta" / "metrics.json").read_text())
    expected = np.mean(predict_flip_average(net, data["X_test"], (3, 32, 32)) == data["y_test"])
    assert metrics["final_accuracy"]["test"] == pytest.approx(expected, abs=0)
    # the training is the same; only the final evaluation differs
    for k, v in params_of(in_tmp / "plain" / "model.npz").items():
        np.testing.assert_array_equal(params_of(in_tmp / "tta" / "model.npz")[k], v)
    capsys.readouterr()
    assert cli.main(["evaluate", str(in_tmp / "tta")]) == 0
    assert f"accuracy {expected:.4f}" in capsys.readouterr().out


def test_predict_flip_average_matches_the_formula():
    from fastfc import Net
    from fastfc.augment import predict_flip_average
    rng = np.random.default_rng(1)
    net = Net([2 * 3 * 4, 7, 5], seed=0)
    X = rng.standard_normal((11, 2, 3, 4))

    def softmax(s):
        e = np.exp(s - s.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    p = softmax(net.scores(X.reshape(11, -1))) + \
        softmax(net.scores(X[..., ::-1].reshape(11, -1)))
    for batch_size in (1, 4, 1000):
        np.testing.assert_array_equal(predict_flip_average(net, X, (2, 3, 4), batch_size),
                                      np.argmax(p, axis=1))
    # images equal to their mirror image: the plain prediction
    sym = X + X[..., ::-1]
    np.testing.assert_array_equal(predict_flip_average(net, sym, (2, 3, 4)),
                                  net.predict(sym.reshape(11, -1)))
    with pytest.raises(ValueError, match="image_shape must be"):
        predict_flip_average(net, X, (24,))
    with pytest.raises(ValueError, match="rows of"):
        predict_flip_average(net, X, (2, 3, 5))
    with pytest.raises(ValueError, match="batch_size"):
        predict_flip_average(net, X, (2, 3, 4), batch_size=0)


@pytest.mark.parametrize("argv, words", [
    (["--tta", "flip"], "--tta flip is refused for digits"),
    (["--dataset", "diabetes", "--tta", "flip"], "--tta flip is refused for diabetes"),
    (["--dataset", "diabetes", "--preprocess", "zca"], "--preprocess zca is for images"),
    (["--preprocess", "zca", "--zca-epsilon", "0"], "--zca-epsilon"),
], ids=lambda a: " ".join(a) if isinstance(a, list) else "")
def test_bad_zca_and_tta_options(in_tmp, capsys, argv, words):
    assert train("--epochs", "1", *argv) == 2
    assert words in one_error_line(capsys)


# ------------------------------------------------------------------ presets

@pytest.mark.parametrize("preset", ["best", "fast"])
def test_cifar_presets_resolve_to_valid_deterministic_settings(preset):
    import argparse
    parser = argparse.ArgumentParser()
    T.train_arguments(parser)
    settings = T.resolve_settings(parser.parse_args(["--preset", preset]))
    assert settings["dataset"] == "cifar10"
    # a fixed length (not a time budget): the seed alone decides the result
    assert settings["time_budget"] is None and settings["schedule"] == "cosine"
    assert (settings["preprocess"], settings["tta"], settings["update_rule"]) == \
        ("zca", "flip", "adamw")
    assert T.PRESETS["fast"]["num_epochs"] < T.PRESETS["best"]["num_epochs"]
    # another update rule drops the preset's adamw decay instead of failing
    other = T.resolve_settings(parser.parse_args(["--preset", preset, "--update-rule",
                                                  "adam"]))
    assert other["weight_decay"] is None
    with pytest.raises(T.BadOption, match="--weight-decay"):
        T.resolve_settings(parser.parse_args(["--preset", preset, "--update-rule", "adam",
                                              "--weight-decay", "0.1"]))


def test_preset_best_runs_end_to_end_and_repeats_bit_for_bit(in_tmp, monkeypatch):
    """The whole recipe (ZCA, adamw, smoothing, augmentation, flip TTA) on stand-in
    images, shortened: the same seed gives the same model."""
    from fastfc import data_utils
    calls = []
    monkeypatch.setattr(data_utils, "get_CIFAR10_data", fake_cifar(calls))
    short = ["--preset", "best", "--num-epochs", "2", "--hidden-dims", "16,8",
             "--num-test", "30", "--seed", "3"]
    assert train(*short, "--out", "a") == 0
    assert train(*short, "--out", "b") == 0
    assert calls[0]["whiten"] == "zca" and calls[0]["zca_epsilon"] == 0.5
    a, b = params_of(in_tmp / "a" / "model.npz"), params_of(in_tmp / "b" / "model.npz")
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    metrics = json.loads((in_tmp / "a" / "metrics.json").read_text())
    assert metrics["epochs"] == 2
