"""Solver: data checked at construction, the unscaled-input advice and the progress bar
falling back quietly (issues 15.8, 15.13)."""
import math
import sys
import warnings

import numpy as np
import pytest

import fastfc.solver as solver_module
from fastfc import Solver

from test_solver import (ReferenceSolver, assert_same_run, make_data, make_fcn, make_net,
                         run)

KW = dict(optim_config={"learning_rate": 0.05}, batch_size=25, num_epochs=2, verbose=False)


@pytest.fixture
def data():
    return make_data()


# ----------------------------------------------------------------- NaN / inf in the data

@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("name", ["X_train", "X_val"])
def test_non_finite_data_is_refused_naming_the_row(data, name, bad):
    X = data[name].copy()
    X[7, 3] = bad
    with pytest.raises(ValueError, match=rf"{name} contains NaN or inf at row 7\b"):
        Solver(make_fcn(), dict(data, **{name: X}), **KW)


def test_float32_sum_overflow_is_not_mistaken_for_nan(data):
    X = data["X_train"].astype(np.float32) * np.float32(3e37)
    Solver(make_fcn(dtype=np.float32), dict(data, X_train=X), **KW)   # finite: accepted


# ----------------------------------------------------------------- sizes and types

@pytest.mark.parametrize("key", ["num_train_samples", "num_val_samples"])
@pytest.mark.parametrize("value", [0, -3, 2.5])
def test_sample_counts_must_be_positive(data, key, value):
    with pytest.raises((ValueError, TypeError), match=key):
        Solver(make_fcn(), data, **{key: value}, **KW)


def test_empty_validation_set_is_refused(data):
    with pytest.raises(ValueError, match="X_val is empty"):
        Solver(make_fcn(), dict(data, X_val=data["X_val"][:0], y_val=data["y_val"][:0]), **KW)


def test_lists_train_like_arrays(data):
    listed = {k: v.tolist() for k, v in data.items()}
    a = run(Solver, make_fcn(), data, **KW)
    b = run(Solver, make_fcn(), listed, **KW)
    assert_same_run(a, b, params_rtol=0)


def test_non_numeric_data_is_a_type_error(data):
    with pytest.raises(TypeError, match="X_train"):
        Solver(make_fcn(), dict(data, X_train=[["a"] * 20] * len(data["y_train"])), **KW)


# ----------------------------------------------------------------- labels

@pytest.mark.parametrize("make", [make_fcn, make_net], ids=["fcn", "net"])
@pytest.mark.parametrize("name,value", [("y_val", 5), ("y_val", 99), ("y_train", 5),
                                        ("y_train", -1), ("y_val", -2)])
def test_out_of_range_labels_name_the_array(data, make, name, value):
    y = data[name].copy()
    y[4] = value
    with pytest.raises(ValueError, match=rf"{name} has the (negative )?label {value} at index 4"):
        Solver(make(), dict(data, **{name: y}), **KW)


class Linear:
    """A model the Solver cannot read the class count of (no layer_dims, no W{L})."""

    def __init__(self, D, C):
        self.params = {"W": 0.01 * np.ones((D, C))}

    def loss(self, X, y=None):
        scores = X.reshape(len(X), -1) @ self.params["W"]
        if y is None:
            return scores
        return 0.0, {"W": np.zeros_like(self.params["W"])}


def test_labels_of_an_opaque_model_are_checked_at_the_first_accuracy_check(data):
    y = data["y_val"].copy()
    y[2] = 9
    s = Solver(Linear(20, 5), dict(data, y_val=y), **KW)
    state = np.random.get_state()
    np.random.seed(2)
    with pytest.raises(ValueError, match="y_val has the label 9 at index 2"):
        s.train()
    assert len(s.loss_history) == 1


def test_the_label_check_draws_nothing(data):
    """The opaque model's check uses the scores the accuracy check computes anyway."""
    a = run(ReferenceSolver, Linear(20, 5), data, **KW)
    b = run(Solver, Linear(20, 5), data, **KW)
    assert a.val_acc_history == b.val_acc_history
    assert a.train_acc_history == b.train_acc_history


# ----------------------------------------------------------------- unscaled inputs

def test_unscaled_inputs_get_one_warning(data):
    big = dict(data, X_train=data["X_train"] * 3000.0, X_val=data["X_val"] * 3000.0)
    s = Solver(make_fcn(), big, **dict(KW, optim_config={"learning_rate": 1e-7}))
    np.random.seed(2)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        s.train()
    unscaled = [w for w in record if "unscaled" in str(w.message)]
    assert len(unscaled) == 1
    msg = str(unscaled[0].message)
    assert "standardise" in msg.lower() and "weight_scale" in msg
    assert s.loss_history[0] > 10 * math.log(5)


@pytest.mark.parametrize("make", [make_fcn, make_net], ids=["fcn", "net"])
def test_scaled_inputs_get_no_warning(data, make):
    s = Solver(make(), data, **KW)
    np.random.seed(2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s.train()


# ----------------------------------------------------------------- progress bar

BAR = dict(KW, verbose=True, print_every=4)


def test_notebook_without_ipywidgets_shows_no_bar_and_no_warning(data, capsys, monkeypatch):
    monkeypatch.setattr(solver_module, "_in_notebook", lambda: True)
    monkeypatch.setattr(solver_module, "_has_ipywidgets", lambda: False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run(Solver, make_fcn(), data, **BAR)
    assert capsys.readouterr().err == ""


def test_notebook_bar_falls_back_quietly(data, capsys, monkeypatch):
    """ipywidgets reported present but the widget bar cannot be made: a text bar, no
    IProgress warning."""
    monkeypatch.setattr(solver_module, "_in_notebook", lambda: True)
    monkeypatch.setattr(solver_module, "_has_ipywidgets", lambda: True)
    import tqdm.notebook

    def broken(*args, **kwargs):
        raise ImportError("IProgress not found. Please update jupyter and ipywidgets.")

    monkeypatch.setattr(tqdm.notebook, "tqdm", broken)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = run(Solver, make_fcn(), data, **BAR)
    err = capsys.readouterr().err
    n = len(s.loss_history)
    assert f"{n}/{n}" in err


def test_no_tqdm_means_no_bar(data, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm.std", None)
    s = run(Solver, make_fcn(), data, progress=True, **BAR)
    assert capsys.readouterr().err == ""
    assert len(s.loss_history) == 2 * (230 // 25)
