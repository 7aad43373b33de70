"""fastfc._registry is the one list of activations, update rules, losses and
normalisations: every other list of choices (Net, the estimator, the command line, the
sweep, fastfc.optim, fastfc.layers) is derived from it, the kernels use its codes, and a
name is spelled in only a few source files (the budget of CONTRIBUTING.md)."""
import argparse
import inspect
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from fastfc import Net, _registry as R, layers, optim
from fastfc import _cli_train as T
from fastfc._defaults import FRONTEND_DEFAULTS
from fastfc._kernels import dense as kdense
from fastfc._kernels import optim as kopt

ROOT = Path(__file__).resolve().parent.parent

# ------------------------------------------------------------------ the file budget

#: name -> the most source files under src/ and csrc/ that may spell it (any case):
#: an update rule lives in its C loop, that loop's declaration, the Cython dispatch and
#: its stub, the registry row and UCLA's nndl/optim.py; an activation in its C loop,
#: the declaration, the Cython module, the registry row and its fastfc.layers pair
BUDGET = {"rmsprop": 6, "leaky_relu": 5}


def _tracked_sources():
    if shutil.which("git") is None or not (ROOT / "setup.py").is_file():
        pytest.skip("needs the source tree in a git checkout")
    try:
        out = subprocess.run(["git", "ls-files", "src", "csrc"], cwd=ROOT, check=True,
                             capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    files = [ROOT / line for line in out.splitlines() if line]
    if not files:
        pytest.skip("git lists no source files")
    return files


@pytest.mark.parametrize("name", sorted(BUDGET))
def test_a_name_is_spelled_in_few_source_files(name):
    spelled = sorted(str(p.relative_to(ROOT)) for p in _tracked_sources()
                     if p.is_file() and name in p.read_bytes().decode("utf-8", "replace").lower())
    assert 0 < len(spelled) <= BUDGET[name], (
        f"{name!r} is spelled in {len(spelled)} source files (budget {BUDGET[name]}): "
        f"{spelled}; read the name from fastfc._registry instead")
    assert "src/fastfc/_registry.py" in spelled


# ------------------------------------------------------------------ the tables

def test_rows_are_named_and_keyed_by_their_names():
    for table in (R.ALL_ACTIVATIONS, R.UPDATE_RULES, R.LOSSES, R.NORMALIZATIONS):
        assert table, table
        for name, row in table.items():
            assert row.name == name
            assert row._fields[0] == "name"          # a NamedTuple, read by field
        codes = [row.code for row in table.values()]
        assert len(set(codes)) == len(codes), f"codes repeat: {codes}"
    assert set(R.ACTIVATIONS) == set(R.ALL_ACTIVATIONS) - {"identity"}
    assert None in R.NORMALIZATIONS
    for rule in R.UPDATE_RULES.values():
        assert next(iter(rule.defaults)) == "learning_rate"
        assert set(rule.ranges) == set(rule.defaults)
        assert len(rule.ucla_state) == len(rule.state)
    for act in R.ALL_ACTIVATIONS.values():
        assert act.init in R.INITS


def test_rows_cannot_be_changed_by_accident():
    with pytest.raises(TypeError):
        R.UPDATE_RULES["x"] = None
    with pytest.raises(TypeError):
        R.UPDATE_RULES["sgd"].defaults["learning_rate"] = 1.0
    with pytest.raises(AttributeError):
        R.UPDATE_RULES["sgd"].code = 3


def test_activation_codes_are_the_kernels():
    assert {name: a.code for name, a in R.ALL_ACTIVATIONS.items()} == kdense.ACT_CODES
    assert layers.ACT == kdense.ACT_CODES


@pytest.mark.parametrize("name", list(R.UPDATE_RULES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rule_code_runs_the_rule_of_that_name(name, dtype):
    """The generic kernel entry with the registry's code computes what the rule's own
    compiled twin computes, bit for bit."""
    spec = R.UPDATE_RULES[name]
    rng = np.random.RandomState(spec.code)
    w0 = rng.randn(300).astype(dtype)
    dw = rng.randn(300).astype(dtype)
    states0 = [np.abs(rng.randn(300)).astype(dtype) for _ in spec.state]
    hyper = dict(spec.defaults, learning_rate=0.03)
    hyper["t"] = 3 if spec.counts_steps else 0
    # the twin's positional hyper-parameters, in the order of its signature
    twin = getattr(kopt, "_" + name)
    named = {"learning_rate": "lr", "momentum": "mom", "decay_rate": "decay_rate",
             "epsilon": "eps", "beta1": "beta1", "beta2": "beta2",
             "weight_decay": "weight_decay"}
    by_twin = {named[k]: v for k, v in hyper.items() if k in named}
    by_twin["t"] = hyper["t"]
    params = [p for p in inspect.signature(twin).parameters if p not in ("w", "dw", "reg")]
    args = [by_twin[p] for p in params[len(spec.state):]]
    w_a, s_a = w0.copy(), [s.copy() for s in states0]
    twin(w_a, dw, *s_a, *args, 0.01)
    w_b, s_b = w0.copy(), [s.copy() for s in states0]
    flat = s_b + [None] * (2 - len(s_b))
    kopt._update(spec.code, w_b, dw, flat[0], flat[1], *optim.kernel_args(hyper), 0.01)
    np.testing.assert_array_equal(w_a, w_b)
    for a, b in zip(s_a, s_b):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", list(R.LOSSES))
def test_loss_code_computes_the_loss_of_that_name(name):
    rng = np.random.RandomState(0)
    X = rng.randn(12, 5)
    if R.LOSSES[name].targets == "values":
        y = rng.randn(12, 4)
    else:
        y = rng.randint(0, 4, 12)
    net = Net([5, 6, 4], loss=name, dtype=np.float64, seed=0)
    loss, _ = net.loss(X, y)
    expected, _ = getattr(layers, R.LOSSES[name].layer)(net.loss(X), y)
    assert loss == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("name", list(R.NORMALIZATIONS))
def test_normalization_code_builds_that_normalization(name):
    net = Net([5, 6, 4], normalization=name, seed=0)
    assert ("gamma1" in net.params) == (name is not None)
    assert bool(net.running_stats) == (name == "batchnorm")


# ------------------------------------------------------------------ derived lists

def test_optim_rules_are_the_registry_rows():
    assert list(optim.UPDATE_RULES) == list(R.UPDATE_RULES)
    for name, spec in R.UPDATE_RULES.items():
        function = getattr(optim, name)
        assert function is optim.UPDATE_RULES[name]
        assert function.__name__ == name and function.__module__ == "fastfc.optim"
        assert name in optim.__all__
        for key, value in spec.defaults.items():
            assert f"{key} ({value:g})" in function.__doc__
        # the compatibility view other modules read by index
        defaults, ranges, state = optim._SPECS[name]
        assert dict(defaults) == dict(spec.defaults) and state == spec.state
        # the public function fills exactly the row's defaults and state
        _, config = function(np.ones(3), np.ones(3))
        expected = set(spec.defaults) | set(spec.state) | ({"t"} if spec.counts_steps else set())
        assert set(config) == expected


def test_ucla_rules_use_the_rows_ucla_state():
    from fastfc.nndl import optim as ucla
    # UCLA's code has five of the rules (CONTRIBUTING.md: nndl/optim.py lists those only)
    assert set(ucla.__all__) <= set(R.UPDATE_RULES)
    for name in ucla.__all__:
        spec = R.UPDATE_RULES[name]
        _, config = getattr(ucla, name)(np.ones(3), np.ones(3))
        assert set(spec.ucla_state) <= set(config)


def _choices(parser, dest):
    for action in parser._actions:
        if action.dest == dest:
            return action.choices
    raise AssertionError(f"no option {dest}")


def test_cli_choices_are_the_registry_names():
    train = argparse.ArgumentParser()
    T.train_arguments(train)
    assert tuple(_choices(train, "activation")) == tuple(R.ACTIVATIONS)
    assert tuple(_choices(train, "update_rule")) == tuple(R.UPDATE_RULES)
    assert tuple(_choices(train, "normalization")) == tuple(
        n.cli_name for n in R.NORMALIZATIONS.values())
    assert tuple(_choices(train, "init")) == R.INITS
    grad = argparse.ArgumentParser()
    T.gradcheck_arguments(grad)
    assert tuple(_choices(grad, "activation")) == tuple(R.ACTIVATIONS)
    assert tuple(_choices(grad, "normalization")) == tuple(
        n.cli_name for n in R.NORMALIZATIONS.values())
    from fastfc import sweep
    sw = argparse.ArgumentParser()
    sweep.add_cli_arguments(sw)
    assert sorted(_choices(sw, "update_rule")) == sorted(R.UPDATE_RULES)


def test_frontend_defaults_are_registry_names():
    assert FRONTEND_DEFAULTS["activation"] in R.ACTIVATIONS
    assert FRONTEND_DEFAULTS["update_rule"] in R.UPDATE_RULES
    assert FRONTEND_DEFAULTS["normalization"] in R.NORMALIZATIONS
    assert FRONTEND_DEFAULTS["learning_rate"] == \
        R.UPDATE_RULES[FRONTEND_DEFAULTS["update_rule"]].defaults["learning_rate"]


BAD_NAMES = ["", "Relu", "relu ", "identity", "nope", None, 3]


@pytest.mark.parametrize("name", list(R.ACTIVATIONS))
def test_net_accepts_every_activation(name):
    net = Net([4, 5, 3], activation=name, seed=0)
    assert net.init == R.ACTIVATIONS[name].init
    net.set_optimizer("sgd").train_step(np.ones((2, 4), np.float32), np.array([0, 2]))


@pytest.mark.parametrize("name", BAD_NAMES)
def test_net_refuses_other_activations(name):
    with pytest.raises(ValueError, match="activation"):
        Net([4, 5, 3], activation=name)


@pytest.mark.parametrize("name", list(R.UPDATE_RULES))
def test_net_accepts_every_update_rule(name):
    net = Net([4, 5, 3], seed=0).set_optimizer(name)
    assert net.update_rule == name
    assert net.learning_rate == R.UPDATE_RULES[name].defaults["learning_rate"]
    net.train_step(np.ones((2, 4), np.float32), np.array([0, 2]))
    assert ("t" in net.optimizer_state()) == R.UPDATE_RULES[name].counts_steps


@pytest.mark.parametrize("name", BAD_NAMES + ["sgd_momentum "])
def test_net_refuses_other_update_rules(name):
    with pytest.raises(ValueError, match="update_rule"):
        Net([4, 5, 3], seed=0).set_optimizer(name)


@pytest.mark.parametrize("name", ["", "batch_norm", "none", 3])
def test_net_refuses_other_normalizations_and_losses(name):
    with pytest.raises(ValueError, match="normalization"):
        Net([4, 5, 3], normalization=name)
    with pytest.raises(ValueError, match="loss"):
        Net([4, 5, 3], loss=name)


def test_estimator_accepts_exactly_the_registry_names():
    pytest.importorskip("sklearn")
    from fastfc.sklearn import FCClassifier
    for name in R.ACTIVATIONS:
        FCClassifier(activation=name)._check_params()
    for name in R.UPDATE_RULES:
        FCClassifier(update_rule=name)._check_params()
    for name in R.NORMALIZATIONS:
        FCClassifier(normalization=name)._check_params()
    for name in BAD_NAMES:
        with pytest.raises(ValueError, match="activation"):
            FCClassifier(activation=name)._check_params()
        with pytest.raises(ValueError, match="update_rule"):
            FCClassifier(update_rule=name)._check_params()
    with pytest.raises(ValueError, match="normalization"):
        FCClassifier(normalization="none")._check_params()


def test_describe_rule_reads_the_rules_default():
    from fastfc._defaults import describe_rule
    for name, spec in R.UPDATE_RULES.items():
        assert describe_rule(name) == \
            f"update rule: {name}, learning rate {spec.defaults['learning_rate']:g}"
    assert describe_rule("swept", 1e-3) == "update rule: swept, learning rate 0.001"



def test_the_registry_is_a_leaf_module():
    """It imports nothing of fastfc, so that any module can read it without a cycle."""
    import ast
    tree = ast.parse(Path(R.__file__).read_text(encoding="utf-8"))
    imported = [n.module if isinstance(n, ast.ImportFrom) else a.name
                for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))
                for a in (n.names if isinstance(n, ast.Import) else [None])]
    assert not [m for m in imported if m and m.startswith("fastfc")], imported
