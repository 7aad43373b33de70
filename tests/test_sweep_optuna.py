"""fastfc.sweep's Optuna side: samplers, pruners, user studies, storages, resume after
the sweep process is killed, the summary export, and Optuna staying optional."""
import csv
import math
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import fastfc
from fastfc.sweep import loguniform, sweep, trial_key

optuna = pytest.importorskip("optuna")

SRC = os.path.dirname(os.path.dirname(fastfc.__file__))


def env_with_src(**extra):
    return dict(os.environ, PYTHONPATH=os.pathsep.join(
        [SRC, os.environ.get("PYTHONPATH", "")]), **extra)


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits
    X, y = load_digits(return_X_y=True)
    order = np.random.RandomState(0).permutation(len(X))
    X = (X[order] / 16.0).astype(np.float32)
    y = y[order]
    return {"X_train": X[:600], "y_train": y[:600], "X_val": X[600:900],
            "y_val": y[600:900]}


@pytest.fixture(scope="module")
def tiny():
    rng = np.random.default_rng(0)
    return {"X_train": rng.random((20, 4)).astype(np.float32),
            "y_train": rng.integers(0, 2, 20), "X_val": rng.random((6, 4)).astype(np.float32),
            "y_val": rng.integers(0, 2, 6)}


def peak(data, config, seed):
    """A runner that trains nothing: its accuracy peaks at learning_rate 10**-2.5."""
    lr = config.get("learning_rate", 1e-3)
    return {"best_val_acc": 1.0 - (math.log10(lr) + 2.5) ** 2, "epochs": 0,
            "width": config.get("hidden_dims", [0])[0]}


def journal_study(path, name="fastfc-sweep"):
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend
    return optuna.load_study(study_name=name,
                             storage=JournalStorage(JournalFileBackend(str(path))))


# ---------------------------------------------------------------------- samplers

SPACE = {"learning_rate": loguniform(1e-5, 1e-1), "hidden_dims": [[8], [16], [32]]}


@pytest.mark.parametrize("search", ["random", "tpe", "cmaes"])
def test_every_search_runs_seeded_and_repeats(tiny, search):
    def run(seed):
        trials, _ = sweep(SPACE, tiny, search=search, n_trials=12, seed=seed, n_jobs=1,
                          results=None, runner=peak, return_model=False)
        return sorted((t["number"], t["config"]["learning_rate"],
                       tuple(t["config"]["hidden_dims"])) for t in trials)

    a = run(3)
    assert len(a) == 12 and [n for n, *_ in a] == list(range(12))
    assert all(1e-5 <= lr <= 1e-1 for _, lr, _ in a)
    assert {h for *_, h in a} <= {(8,), (16,), (32,)}
    assert run(3) == a          # seeded: the same trials again
    assert run(4) != a


def test_tpe_draws_nearer_the_peak_than_random_search(tiny):
    def accuracies(search):
        trials, _ = sweep({"learning_rate": loguniform(1e-6, 1e0)}, tiny, search=search,
                          n_trials=30, seed=0, n_jobs=1, results=None, runner=peak,
                          return_model=False)
        return [t["best_val_acc"] for t in sorted(trials, key=lambda t: t["number"])]

    tpe, rand = accuracies("tpe"), accuracies("random")
    assert tpe[:10] == rand[:10]        # the same seeded random start
    # then TPE models the results and draws nearer the peak than random draws do
    assert np.mean(tpe[-10:]) > np.mean(rand[-10:]) + 0.5
    assert max(tpe) > 0.99


def test_search_and_prune_names_are_checked(tiny):
    with pytest.raises(ValueError, match="search must be one of 'grid', 'random', 'tpe', "
                                         "'cmaes', got 'bayes'"):
        sweep(SPACE, tiny, search="bayes", n_trials=2, results=None)
    with pytest.raises(ValueError, match="prune must be None, one of 'median', 'asha', "
                                         "'hyperband'"):
        sweep({"reg": [0.0]}, tiny, prune="sometimes", results=None)
    with pytest.raises(ValueError, match="search='tpe' needs n_trials"):
        sweep(SPACE, tiny, search="tpe", results=None)


# ---------------------------------------------------------------------- pruning

def test_a_hopeless_trial_is_pruned_and_records_its_epochs(digits, tmp_path):
    results = tmp_path / "prune.jsonl"
    trials, best = sweep({"learning_rate": [3e-3, 2e-3, 1e-9]}, digits, prune="median",
                         n_jobs=1, results=str(results), num_epochs=6, hidden_dims=[16])
    by_lr = {t["config"]["learning_rate"]: t for t in trials}
    hopeless = by_lr[1e-9]
    # the median pruner waits for two finished trials and one epoch, then compares the
    # third trial's second epoch with theirs
    assert hopeless["status"] == "pruned" and hopeless["state"] == "PRUNED"
    assert hopeless["epochs"] == 2 and len(hopeless["val_acc_per_epoch"]) == 2
    assert hopeless["best_val_acc"] < 0.3
    for lr in (3e-3, 2e-3):
        assert by_lr[lr]["status"] == "ok" and by_lr[lr]["epochs"] == 6
        assert len(by_lr[lr]["val_acc_per_epoch"]) == 6
        assert by_lr[lr]["best_val_acc"] == max(by_lr[lr]["val_acc_per_epoch"])
    assert [t["status"] for t in trials] == ["ok", "ok", "pruned"]
    assert best is not None and trials[0]["config"]["learning_rate"] != 1e-9
    study = journal_study(tmp_path / "prune.journal")
    pruned = [t for t in study.get_trials() if t.state.name == "PRUNED"]
    assert len(pruned) == 1 and sorted(pruned[0].intermediate_values) == [1, 2]
    assert pruned[0].user_attrs["epochs"] == 2


@pytest.mark.parametrize("prune, n_jobs", [("asha", 2), ("hyperband", 1), ("median", 2)])
def test_every_pruner_runs_and_workers_report_their_epochs(digits, tmp_path, prune, n_jobs):
    results = tmp_path / f"{prune}.jsonl"
    lrs = [3e-3, 2e-3, 4e-3, 1e-9, 2e-9, 3e-9]
    trials, _ = sweep({"learning_rate": lrs}, digits, prune=prune, n_jobs=n_jobs,
                      results=str(results), num_epochs=4, hidden_dims=[16],
                      return_model=False)
    assert len(trials) == 6 and {t["status"] for t in trials} <= {"ok", "pruned"}
    study = journal_study(tmp_path / f"{prune}.journal")
    for t in study.get_trials():
        # every epoch trained was reported to the study, by whichever process ran it
        assert len(t.intermediate_values) == t.user_attrs["epochs"] >= 1
        if t.state.name == "COMPLETE":
            assert t.user_attrs["epochs"] == 4
    assert any(t["status"] == "pruned" for t in trials)
    assert trials[0]["status"] == "ok" and trials[0]["config"]["learning_rate"] > 1e-3
    if prune != "hyperband":  # hyperband's brackets may hold a hopeless trial alone
        assert all(t["status"] == "pruned" and t["epochs"] < 4
                   for t in trials if t["config"]["learning_rate"] < 1e-8)


# ---------------------------------------------------------------------- studies, storage

def test_a_study_of_your_own(tiny):
    study = optuna.create_study(direction="maximize",
                                sampler=optuna.samplers.RandomSampler(seed=1))
    sampler, pruner = study.sampler, study.pruner
    trials, _ = sweep(SPACE, tiny, study=study, n_trials=5, n_jobs=1, results=None,
                      runner=peak, return_model=False)
    assert len(trials) == 5
    assert study.sampler is sampler and study.pruner is pruner   # its own, kept
    done = study.get_trials()
    assert [t.state.name for t in done] == ["COMPLETE"] * 5
    for t in done:
        assert t.user_attrs["key"] == trial_key(t.user_attrs["config"])
        assert t.value == pytest.approx(peak(None, t.user_attrs["config"], 0)["best_val_acc"])
        assert t.user_attrs["width"] == t.user_attrs["config"]["hidden_dims"][0]
    assert study.best_value == trials[0]["best_val_acc"]
    # more trials in the same study: only the missing ones run
    more, _ = sweep(SPACE, tiny, study=study, n_trials=7, n_jobs=1, results=None,
                    runner=peak, return_model=False)
    assert len(study.get_trials()) == 7 and sum(not t.get("resumed") for t in more) == 2

    with pytest.raises(ValueError, match="maximised"):
        sweep(SPACE, tiny, study=optuna.create_study(), n_trials=1, n_jobs=1, results=None)
    with pytest.raises(ValueError, match="either study, or storage and study_name"):
        sweep(SPACE, tiny, study=study, storage="x.journal", n_trials=1, results=None)
    with pytest.raises(ValueError, match="cannot be shared with worker processes"):
        sweep(SPACE, tiny, study=study, n_trials=9, n_jobs=2, results=None, runner=peak)
    with pytest.raises(TypeError, match="study must be an optuna.Study"):
        sweep(SPACE, tiny, study="study", n_trials=1, results=None)


def test_a_study_of_your_own_in_a_journal_file_runs_on_workers(digits, tmp_path):
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend
    storage = JournalStorage(JournalFileBackend(str(tmp_path / "mine.journal")))
    study = optuna.create_study(study_name="mine", storage=storage, direction="maximize",
                                pruner=optuna.pruners.NopPruner())
    trials, _ = sweep({"learning_rate": [1e-3, 3e-3]}, digits, study=study, search="grid",
                      n_jobs=2, results=None, num_epochs=2, hidden_dims=[16],
                      return_model=False)
    assert [t["status"] for t in trials] == ["ok", "ok"]
    assert all(not t["worker"].endswith(f":{os.getpid()}") for t in trials)
    again = journal_study(tmp_path / "mine.journal", "mine")
    # the workers reported every epoch into the user's journal
    assert [len(t.intermediate_values) for t in again.trials] == [2, 2]


def test_storage_url_and_study_name(tiny, tmp_path):
    url = f"sqlite:///{tmp_path / 'sweep.db'}"
    space = {"learning_rate": [1e-3, 3e-3, 1e-2]}
    trials, _ = sweep(space, tiny, storage=url, study_name="lr", n_jobs=1, results=None,
                      runner=peak, return_model=False)
    assert len(trials) == 3
    study = optuna.load_study(study_name="lr", storage=url)
    assert sorted(t.params["learning_rate"] for t in study.trials) == [1e-3, 3e-3, 1e-2]
    again, _ = sweep(space, tiny, storage=url, study_name="lr", n_jobs=1, results=None,
                     runner=peak, return_model=False)
    assert all(t.get("resumed") for t in again)
    assert len(optuna.load_study(study_name="lr", storage=url).trials) == 3


def test_summary_export_as_csv_for_pandas(tiny, tmp_path):
    results = tmp_path / "summary.csv"
    sweep({"learning_rate": [1e-3, 3e-3], "hidden_dims": [[8], [16, 16]]}, tiny, n_jobs=1,
          results=str(results), runner=peak, return_model=False)
    assert (tmp_path / "summary.journal").exists()   # the study, beside the summary
    with open(results, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4
    assert {"number", "state", "status", "best_val_acc", "epochs", "learning_rate",
            "hidden_dims"} <= set(rows[0])
    assert sorted(r["hidden_dims"] for r in rows) == ["[16, 16]", "[16, 16]", "[8]", "[8]"]
    assert all(r["state"] == "COMPLETE" and float(r["best_val_acc"]) > 0.5 for r in rows)


# ---------------------------------------------------------------------- killed sweep

KILLED = '''
import os, sys, time
import numpy as np
from fastfc.sweep import sweep

def runner(data, config, seed):
    if config["reg"] == 0.2:   # the third trial: tell the test, then hang
        open(os.environ["MARK"], "w").close()
        time.sleep(600)
    return {"best_val_acc": 0.5 + config["reg"]}

if __name__ == "__main__":
    rng = np.random.default_rng(0)
    data = {"X_train": rng.random((20, 4)), "y_train": rng.integers(0, 2, 20),
            "X_val": rng.random((6, 4)), "y_val": rng.integers(0, 2, 6)}
    sweep({"reg": [0.0, 0.1, 0.2, 0.3]}, data, n_jobs=1, results=sys.argv[1],
          runner=runner, return_model=False)
'''


def plus_half(data, config, seed):
    return {"best_val_acc": 0.5 + config["reg"]}


def test_resume_after_sigkill_reruns_only_the_unfinished_trials(tiny, tmp_path):
    script, mark = tmp_path / "killed.py", tmp_path / "mark"
    script.write_text(KILLED)
    results = tmp_path / "k.jsonl"
    proc = subprocess.Popen([sys.executable, str(script), str(results)],
                            env=env_with_src(MARK=str(mark)), cwd=str(tmp_path))
    try:
        deadline = time.monotonic() + 120
        while not mark.exists():
            assert proc.poll() is None, "the sweep ended early"
            assert time.monotonic() < deadline, "the third trial did not start"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    study = journal_study(tmp_path / "k.journal")
    # the grid's points are queued when the sweep starts: the fourth still waits
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE", "RUNNING",
                                                    "WAITING"]

    ran = []
    trials, _ = sweep({"reg": [0.0, 0.1, 0.2, 0.3]}, tiny, n_jobs=1, results=str(results),
                      runner=plus_half, return_model=False,
                      progress=lambda r, *_: ran.append(r["config"]["reg"]))
    assert sorted(ran) == [0.2, 0.3]              # only the unfinished ones
    assert [t["config"]["reg"] for t in trials] == [0.3, 0.2, 0.1, 0.0]
    assert [bool(t.get("resumed")) for t in trials] == [False, False, True, True]
    study = journal_study(tmp_path / "k.journal")
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    keys = [t.user_attrs["key"] for t in complete]
    assert len(keys) == 4 and len(set(keys)) == 4   # none twice, none lost
    [dead] = [t for t in study.trials if t.state.name == "FAIL"]
    assert dead.user_attrs["retryable"] and "died" in dead.user_attrs["error"]
    assert str(proc.pid) in dead.user_attrs["error"]
    [retry] = [t for t in complete if t.user_attrs.get("retry_of") == dead.number]
    assert retry.params == dead.params
    # and once more: nothing left to do
    ran.clear()
    sweep({"reg": [0.0, 0.1, 0.2, 0.3]}, tiny, n_jobs=1, results=str(results),
          runner=plus_half, return_model=False,
          progress=lambda r, *_: ran.append(r["config"]["reg"]))
    assert ran == [] and len(journal_study(tmp_path / "k.journal").trials) == 5


def test_a_running_trial_of_a_live_process_is_left_alone(tiny, tmp_path):
    from fastfc.sweep import _study
    study = optuna.create_study(direction="maximize")
    trial = study.ask()
    study._storage.set_trial_user_attr(trial._trial_id, "fastfc_owner", _study.owner_tag())
    assert _study.fail_dead_trials(study) == []
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = _study.owner_tag().rsplit(":", 2)[0]
    other = study.ask()
    study._storage.set_trial_user_attr(other._trial_id, "fastfc_owner",
                                       f"{host}:{dead.pid}:1")
    assert _study.fail_dead_trials(study) == [other.number]
    assert study.trials[0].state.name == "RUNNING"


INTERRUPT = {"armed": True}


def interrupted_once(data, config, seed):
    """Ctrl-C during the second trial, the first time."""
    if config["reg"] == 0.1 and INTERRUPT.pop("armed", False):
        raise KeyboardInterrupt
    return {"best_val_acc": 0.5 + config["reg"]}


def test_an_interrupted_sweep_resumes_in_the_same_process(tiny, tmp_path):
    results = tmp_path / "ctrl-c.jsonl"
    space = {"reg": [0.0, 0.1, 0.2]}
    with pytest.raises(KeyboardInterrupt):
        sweep(space, tiny, n_jobs=1, results=str(results), runner=interrupted_once)
    study = journal_study(tmp_path / "ctrl-c.journal")
    assert [t.state.name for t in study.trials] == ["COMPLETE", "FAIL", "WAITING"]
    assert "interrupted" in study.trials[1].user_attrs["error"]
    ran = []
    trials, _ = sweep(space, tiny, n_jobs=1, results=str(results), runner=interrupted_once,
                      return_model=False, progress=lambda r, *_: ran.append(r["config"]["reg"]))
    assert sorted(ran) == [0.1, 0.2]
    assert [t["config"]["reg"] for t in trials] == [0.2, 0.1, 0.0]
    assert all(t["status"] == "ok" for t in trials)
