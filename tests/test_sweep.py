"""fastfc.sweep on Optuna: grid, random, TPE and CMA-ES search, pruning, on local
processes and on a Dask cluster; the study's storage, resume after a crash, and trials
that survive dead workers."""
import functools
import json
import os

import numpy as np
import psutil
import pytest
from sklearn.datasets import load_digits

from fastfc import Net
from fastfc.sweep import (ROUTES, choice, cli_main, grid_configs, loguniform, randint,
                          route_config, run_trial, sweep, trial_key, uniform)

optuna = pytest.importorskip("optuna")
distributed = pytest.importorskip("distributed")


RESULT_FIELDS = {"number", "state", "key", "config", "status", "best_val_acc",
                 "final_train_acc", "loss_first", "loss_last", "loss_min", "epochs",
                 "wall_time", "worker", "seed"}


@pytest.fixture(scope="module")
def digits():
    """Digits scaled to [0, 1], first 1000 shuffled images to train, next 300 to validate."""
    X, y = load_digits(return_X_y=True)
    order = np.random.RandomState(0).permutation(len(X))
    X = (X[order] / 16.0).astype(np.float32)
    y = y[order]
    return {"X_train": X[:1000], "y_train": y[:1000], "X_val": X[1000:1300],
            "y_val": y[1000:1300]}


FIXED = {"update_rule": "adam", "num_epochs": 3, "batch_size": 100}
GRID = {"hidden_dims": [[32], [64]], "learning_rate": [1e-3, 3e-3]}


def val_acc(model, data):
    return float(np.mean(model.predict(data["X_val"]) == data["y_val"]))


def check_trials(trials, n, data, best):
    """n successful trials, best first, well-formed, and the model of the first."""
    assert len(trials) == n
    assert [t["status"] for t in trials] == ["ok"] * n
    for t in trials:
        assert RESULT_FIELDS <= set(t)
        assert 0.0 <= t["best_val_acc"] <= 1.0
        assert t["loss_min"] <= t["loss_first"]
        assert t["wall_time"] >= 0
        assert t["key"] == trial_key(t["config"])
    accs = [t["best_val_acc"] for t in trials]
    assert accs == sorted(accs, reverse=True)
    assert isinstance(best, Net)
    # the Solver leaves the best parameters in the model: its val accuracy is the record's
    assert val_acc(best, data) == pytest.approx(trials[0]["best_val_acc"])
    assert best.layer_dims == [64, *trials[0]["config"]["hidden_dims"], 10]
    assert trials[0]["best_val_acc"] > 0.5


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def journal_of(results):
    """The default storage of a sweep whose summary is ``results``."""
    return os.path.splitext(str(results))[0] + ".journal"


def load_study(results, name="fastfc-sweep"):
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend
    return optuna.load_study(study_name=name,
                             storage=JournalStorage(JournalFileBackend(journal_of(results))))


def states(study):
    return sorted(t.state.name for t in study.get_trials())


# ---------------------------------------------------------------------- configurations

def test_route_config_sends_each_name_to_its_place():
    model, solver, optim_config, seed = route_config(
        {"hidden_dim": 50, "reg": 1e-3, "dropout_keep_ratio": 0.5, "input_dim": 64,
         "update_rule": "sgd_momentum", "num_epochs": 2, "lr_decay": 0.9,
         "learning_rate": 1e-2, "momentum": 0.8, "seed": 7})
    assert model == {"hidden_dims": [50], "reg": 1e-3, "dropout_keep_ratio": 0.5,
                     "input_dim": 64}
    assert solver == {"update_rule": "sgd_momentum", "num_epochs": 2, "lr_decay": 0.9}
    assert optim_config == {"learning_rate": 1e-2, "momentum": 0.8}
    assert seed == 7
    assert set(ROUTES.values()) == {"model", "solver", "optim", "trial"}
    with pytest.raises(ValueError, match="'learnin_rate'.*'hiden'|'hiden'.*'learnin_rate'"):
        route_config({"learnin_rate": 1e-3, "hiden": 3, "reg": 0.0})
    with pytest.raises(ValueError, match="hidden_dims, hidden_size"):
        route_config({"hidden_dims": [10], "hidden_size": 10})


def test_sweep_rejects_unknown_names_before_running(digits, tmp_path):
    results = tmp_path / "r.jsonl"
    with pytest.raises(ValueError, match="'learnig_rate'"):
        sweep({"learnig_rate": [1e-3]}, digits, results=str(results), n_jobs=1)
    with pytest.raises(ValueError, match="'num_epoch'"):
        sweep({"learning_rate": [1e-3]}, digits, results=str(results), n_jobs=1, num_epoch=2)
    with pytest.raises(ValueError, match="reg given both"):
        sweep({"reg": [0.0]}, digits, results=str(results), n_jobs=1, reg=0.1)
    assert not results.exists()


def test_grid_configs_order_and_cap():
    configs = grid_configs({"hidden_dims": [[8], [16]], "reg": [0.0, 0.1, 0.2]},
                           fixed={"num_epochs": 1})
    assert len(configs) == 6
    assert configs[0] == {"num_epochs": 1, "hidden_dims": [8], "reg": 0.0}
    assert configs[1] == {"num_epochs": 1, "hidden_dims": [8], "reg": 0.1}
    assert configs[-1] == {"num_epochs": 1, "hidden_dims": [16], "reg": 0.2}
    assert grid_configs({"hidden_dims": [[8], [16]], "reg": [0.0, 0.1, 0.2]},
                        n_trials=4, fixed={"num_epochs": 1}) == configs[:4]
    assert len({trial_key(c) for c in configs}) == 6
    with pytest.raises(ValueError, match="grid search needs a list"):
        grid_configs({"learning_rate": loguniform(1e-4, 1e-2)})


def test_space_maps_to_optuna_distributions():
    from optuna.distributions import (CategoricalDistribution, FloatDistribution,
                                      IntDistribution)

    from fastfc.sweep._space import decode_params, optuna_space
    dists, encoded = optuna_space(
        {"learning_rate": (1e-4, 1e-1), "reg": loguniform(1e-6, 1e-2),
         "batch_size": (50, 200), "dropout_keep_ratio": (0.5, 1.0),
         "momentum": uniform(0.8, 0.99), "hidden_dims": [[16], [32, 32]],
         "num_epochs": randint(1, 3), "activation": choice(["relu", "tanh"]),
         "beta1": FloatDistribution(0.8, 0.95)}, "tpe")
    assert dists["learning_rate"] == FloatDistribution(1e-4, 1e-1, log=True)
    assert dists["reg"] == FloatDistribution(1e-6, 1e-2, log=True)
    assert dists["batch_size"] == IntDistribution(50, 200)
    assert dists["dropout_keep_ratio"] == FloatDistribution(0.5, 1.0)
    assert dists["momentum"] == FloatDistribution(0.8, 0.99)
    assert dists["num_epochs"] == IntDistribution(1, 3)
    assert dists["activation"] == CategoricalDistribution(["relu", "tanh"])
    assert dists["beta1"] == FloatDistribution(0.8, 0.95)
    # lists are not Optuna choices: stored as their JSON text, decoded for the trial
    assert dists["hidden_dims"] == CategoricalDistribution(["[16]", "[32, 32]"])
    assert encoded == {"hidden_dims"}
    assert decode_params({"hidden_dims": "[32, 32]", "reg": 0.1}, encoded) == \
        {"hidden_dims": [32, 32], "reg": 0.1}
    with pytest.raises(TypeError, match="scipy.stats distributions are not supported"):
        import scipy.stats
        optuna_space({"reg": scipy.stats.uniform(0, 1)}, "random")


# ---------------------------------------------------------------------- local backend

def test_grid_sweep_local_processes(digits, tmp_path):
    results = tmp_path / "grid.jsonl"
    seen = []
    trials, best = sweep(GRID, digits, backend="local", n_jobs=2, results=str(results),
                         progress=lambda record, done, total: seen.append((done, total)),
                         **FIXED)
    check_trials(trials, 4, digits, best)
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert {tuple(t["config"]["hidden_dims"]) for t in trials} == {(32,), (64,)}
    assert all(t["config"]["update_rule"] == "adam" for t in trials)
    # run in worker processes, not here
    assert all(not t["worker"].endswith(f":{os.getpid()}") for t in trials)
    lines = read_jsonl(results)
    assert sorted(r["key"] for r in lines) == sorted(t["key"] for t in trials)
    # a trial's result does not depend on where it ran: redo the best one here
    top = trials[0]
    again = run_trial(digits, top["config"], top["seed"])
    assert again["best_val_acc"] == pytest.approx(top["best_val_acc"])
    assert again["loss_last"] == pytest.approx(top["loss_last"], rel=1e-4)


def report_blas_threads(data, config, seed):
    """A runner that reports the BLAS thread counts of the process it runs in."""
    from threadpoolctl import threadpool_info
    threads = sorted({i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"})
    return {"best_val_acc": 0.5, "blas_threads": threads, "pid": os.getpid()}


def test_local_workers_share_the_cores(digits, tmp_path):
    cores = len(os.sched_getaffinity(0))
    trials, _ = sweep({"reg": [0.0, 0.1, 0.2, 0.3]}, digits, n_jobs=2, results=None,
                      runner=report_blas_threads, return_model=False)
    assert len(trials) == 4 and all(t["status"] == "ok" for t in trials)
    # workers x BLAS threads never exceeds the cores
    assert all(t["blas_threads"] == [max(1, cores // 2)] for t in trials)
    assert os.getpid() not in {t["pid"] for t in trials}
    with pytest.warns(RuntimeWarning, match="more than the"):
        sweep({"reg": [0.0]}, digits, n_jobs=cores + 1, results=None,
              runner=report_blas_threads, return_model=False)


def test_random_sweep_local_processes(digits, tmp_path):
    space = {"learning_rate": loguniform(5e-4, 5e-3), "reg": (1e-5, 1e-2),
             "hidden_dims": [[32], [48]]}
    trials, best = sweep(space, digits, search="random", n_trials=4, seed=11,
                         backend="local", n_jobs=2, results=str(tmp_path / "rand.jsonl"),
                         **FIXED)
    check_trials(trials, 4, digits, best)
    # the sweep process draws every trial: the same seed gives the same trials with one
    # worker (here, trained for no epoch by a runner that only echoes)
    same, _ = sweep(space, digits, search="random", n_trials=4, seed=11, n_jobs=1,
                    results=None, runner=echo, return_model=False, **FIXED)
    assert sorted(t["key"] for t in same) == sorted(t["key"] for t in trials)
    for t in trials:
        assert 5e-4 <= t["config"]["learning_rate"] <= 5e-3
        assert 1e-5 <= t["config"]["reg"] <= 1e-2


def test_resume_skips_finished_trials(digits, tmp_path):
    results = tmp_path / "resume.jsonl"
    ran = []
    progress = lambda record, done, total: ran.append(record["key"])  # noqa: E731
    first, _ = sweep(GRID, digits, n_trials=2, n_jobs=1, results=str(results),
                     progress=progress, **FIXED)
    assert len(first) == 2 and len(ran) == 2
    ran.clear()
    trials, best = sweep(GRID, digits, n_jobs=1, results=str(results), progress=progress,
                         **FIXED)
    check_trials(trials, 4, digits, best)
    first_keys = {t["key"] for t in first}
    assert len(ran) == 2 and not set(ran) & first_keys
    assert {t["key"] for t in trials if t.get("resumed")} == first_keys
    # the summary and the study hold each trial once
    assert sorted(r["key"] for r in read_jsonl(results)) == sorted(t["key"] for t in trials)
    assert states(load_study(results)) == ["COMPLETE"] * 4
    ran.clear()
    again, best2 = sweep(GRID, digits, n_jobs=1, results=str(results), progress=progress,
                         **FIXED)
    assert ran == []
    assert [(t["key"], t["best_val_acc"]) for t in again] == \
        [(t["key"], t["best_val_acc"]) for t in trials]
    # the best model is that of the first trial, retrained when it was read back
    assert val_acc(best2, digits) == pytest.approx(again[0]["best_val_acc"])
    ref = run_trial(digits, again[0]["config"], again[0]["seed"])["model"]
    np.testing.assert_array_equal(best2.params["W1"], ref.params["W1"])


def test_failed_trial_is_recorded_and_ranked_last(digits, tmp_path):
    results = tmp_path / "fail.jsonl"
    trials, best = sweep({"activation": ["relu", "nonsense", "tanh"]}, digits, n_jobs=1,
                         results=str(results), hidden_dims=[32], **FIXED)
    assert [t["status"] for t in trials] == ["ok", "ok", "failed"]
    assert trials[-1]["config"]["activation"] == "nonsense"
    assert "ValueError" in trials[-1]["error"] and "activation" in trials[-1]["error"]
    assert trials[-1]["best_val_acc"] is None
    assert isinstance(best, Net)
    assert {r["status"] for r in read_jsonl(results)} == {"ok", "failed"}


def echo(data, config, seed):
    """A runner that trains nothing: its accuracy is read from the configuration."""
    return {"best_val_acc": float(config.get("reg", 0.0)) + 0.5, "epochs": 0}


def kill_once(data, config, seed, marker, victim):
    """A runner that kills its own worker process the first time it meets ``victim``."""
    if config["hidden_dims"] == victim and not os.path.exists(marker):
        with open(marker, "x"):
            pass
        os._exit(1)
    return run_trial(data, config, seed)


def kill_always(data, config, seed, victim):
    if config["hidden_dims"] == victim:
        os._exit(1)
    return run_trial(data, config, seed)


def test_local_worker_death_is_retried(digits, tmp_path):
    marker = tmp_path / "killed"
    runner = functools.partial(kill_once, marker=str(marker), victim=[48])
    space = {"hidden_dims": [[32], [48], [64]], "learning_rate": [2e-3]}
    trials, best = sweep(space, digits, n_jobs=2, results=str(tmp_path / "k.jsonl"),
                         runner=runner, **FIXED)
    assert marker.exists()  # the worker really died once
    check_trials(trials, 3, digits, best)
    assert len(read_jsonl(tmp_path / "k.jsonl")) == 3


def test_local_trial_that_always_kills_its_worker_is_recorded_failed(digits, tmp_path):
    runner = functools.partial(kill_always, victim=[48])
    space = {"hidden_dims": [[32], [48], [64]], "learning_rate": [2e-3]}
    trials, best = sweep(space, digits, n_jobs=2, retries=1,
                         results=str(tmp_path / "k.jsonl"), runner=runner, **FIXED)
    assert [t["status"] for t in trials] == ["ok", "ok", "failed"]
    assert trials[-1]["config"]["hidden_dims"] == [48]
    assert trials[-1]["retryable"] is True and "died" in trials[-1]["error"]
    assert isinstance(best, Net)
    assert len(read_jsonl(tmp_path / "k.jsonl")) == 3


# ---------------------------------------------------------------------- dask backend

def listening_sockets():
    """(ip, port) of every listening socket of this process and its children."""
    me = psutil.Process()
    found = []
    for proc in [me, *me.children(recursive=True)]:
        try:
            conns = proc.net_connections(kind="inet")
        except psutil.NoSuchProcess:
            continue
        found += [(c.laddr.ip, c.laddr.port) for c in conns if c.status == psutil.CONN_LISTEN]
    return found


LOOPBACK = ("127.0.0.1", "::1")


@pytest.fixture(scope="module")
def dask_cluster():
    """Two worker processes of one thread, everything on the loopback interface."""
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
        dashboard_address=None,
        scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"})
    client = distributed.Client(cluster)
    try:
        yield cluster, client
    finally:
        client.close()
        cluster.close()


def test_dask_cluster_listens_on_loopback_only(dask_cluster):
    cluster, client = dask_cluster
    info = client.scheduler_info()
    addresses = [cluster.scheduler_address, *info["workers"]]
    addresses += [w["nanny"] for w in info["workers"].values() if w.get("nanny")]
    assert len(info["workers"]) == 2
    assert all(a.startswith("tcp://127.0.0.1:") for a in addresses), addresses
    sockets = listening_sockets()
    assert len(sockets) >= 5  # scheduler (+ HTTP), 2 nannies, 2 workers
    assert all(ip in LOOPBACK for ip, _ in sockets), sockets


def test_grid_sweep_dask(digits, tmp_path, dask_cluster):
    _, client = dask_cluster
    trials, best = sweep(GRID, digits, backend="dask", scheduler=client,
                         results=str(tmp_path / "dgrid.jsonl"), **FIXED)
    check_trials(trials, 4, digits, best)
    workers = set(client.scheduler_info()["workers"])
    assert all(t["worker"] in workers for t in trials)
    # the same trial gives the same result on a Dask worker as here
    top = trials[0]
    assert run_trial(digits, top["config"], top["seed"])["best_val_acc"] == \
        pytest.approx(top["best_val_acc"])
    assert len(read_jsonl(tmp_path / "dgrid.jsonl")) == 4


def test_random_sweep_dask_by_scheduler_address(digits, tmp_path, dask_cluster):
    cluster, _ = dask_cluster
    space = {"learning_rate": loguniform(5e-4, 5e-3), "hidden_dims": [[32], [48]]}
    trials, best = sweep(space, digits, search="random", n_trials=4, seed=5,
                         backend="dask", scheduler=cluster.scheduler_address,
                         results=str(tmp_path / "drand.jsonl"), **FIXED)
    check_trials(trials, 4, digits, best)
    same, _ = sweep(space, digits, search="random", n_trials=4, seed=5, n_jobs=1,
                    results=None, runner=echo, return_model=False, **FIXED)
    assert sorted(t["key"] for t in same) == sorted(t["key"] for t in trials)


def test_dask_killed_worker_keeps_every_trial(digits, tmp_path, dask_cluster):
    _, client = dask_cluster
    marker = tmp_path / "killed"
    runner = functools.partial(kill_once, marker=str(marker), victim=[48])
    space = {"hidden_dims": [[32], [48], [64]], "learning_rate": [1e-3, 3e-3]}
    results = tmp_path / "dkill.jsonl"
    trials, best = sweep(space, digits, backend="dask", scheduler=client,
                         results=str(results), runner=runner, **FIXED)
    assert marker.exists()  # one worker really was killed mid-sweep
    check_trials(trials, 6, digits, best)
    assert {t["key"] for t in trials} == {r["key"] for r in read_jsonl(results)}
    assert {tuple(t["config"]["hidden_dims"]) for t in trials} == {(32,), (48,), (64,)}
    # every trial exactly once in the study
    study = load_study(results)
    assert states(study) == ["COMPLETE"] * 6
    assert len({t.user_attrs["key"] for t in study.get_trials()}) == 6
    client.wait_for_workers(2, timeout=60)  # the nanny restarts the dead worker


def test_dask_embedded_local_cluster(digits, tmp_path, monkeypatch):
    seen = {}

    class WatchedCluster(distributed.LocalCluster):
        """The sweep's own LocalCluster, with a look at its sockets before it closes."""

        def __init__(self, *args, **kwargs):
            seen["kwargs"] = kwargs
            super().__init__(*args, **kwargs)
            seen["cluster"] = self

        def close(self, *args, **kwargs):
            seen["sockets"] = listening_sockets()
            return super().close(*args, **kwargs)

    monkeypatch.setattr(distributed, "LocalCluster", WatchedCluster)
    before = set(listening_sockets())
    trials, best = sweep({"hidden_dims": [[32], [48]]}, digits, backend="dask", n_jobs=2,
                         results=str(tmp_path / "emb.jsonl"), learning_rate=2e-3, **FIXED)
    check_trials(trials, 2, digits, best)
    assert all(t["worker"].startswith("tcp://127.0.0.1:") for t in trials)
    assert seen["kwargs"]["n_workers"] == 2 and seen["kwargs"]["processes"] is True
    new = [s for s in seen["sockets"] if s not in before]
    assert len(new) >= 5 and all(ip in LOOPBACK for ip, _ in new), new
    assert seen["cluster"].status.name == "closed"  # started and closed by the call
    assert not set(listening_sockets()) - before


# ---------------------------------------------------------------------- command line

def test_cli_main_runs_a_sweep_and_writes_table_and_plot(tmp_path, capsys):
    import argparse

    from fastfc.sweep import add_cli_arguments
    space = tmp_path / "space.json"
    space.write_text(json.dumps({"hidden_dims": [[16], [32]],
                                 "learning_rate": {"loguniform": [1e-3, 1e-2]}}))
    results = tmp_path / "cli.jsonl"
    parser = add_cli_arguments(argparse.ArgumentParser())
    args = parser.parse_args(["--space", str(space), "--search", "random", "--n-trials", "3",
                              "--n-jobs", "1", "--results", str(results), "--epochs", "2",
                              "--update-rule", "adam", "--set", "batch_size=100",
                              "--no-progress"])
    assert cli_main(args) == 0
    out = capsys.readouterr().out
    assert "val_acc" in out and "hidden_dims" in out and "learning_rate" in out
    records = read_jsonl(results)
    assert len(records) == 3
    assert all(r["config"]["num_epochs"] == 2 and r["config"]["batch_size"] == 100
               for r in records)
    for name in ("cli.png", "cli-history.png", "cli-importances.png", "cli-parallel.png"):
        png = tmp_path / name
        assert png.exists() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    assert "#" in out.splitlines()[1] and "epochs" in out


def test_cli_runs_workers_with_its_own_study(tmp_path, capsys):
    results = tmp_path / "two.jsonl"
    status = cli(["--space", '{"reg": [0.0, 0.001, 0.01]}', "--n-jobs", "2", "--results",
                  str(results), "--epochs", "1", "--set", "hidden_dims=16", "--prune",
                  "median", "--no-plot", "--no-progress"])
    out = capsys.readouterr().out
    assert status == 0, out
    records = read_jsonl(results)
    assert [r["status"] for r in records] == ["ok"] * 3
    assert len({r["worker"] for r in records} - {None}) >= 1
    assert all(not r["worker"].endswith(f":{os.getpid()}") for r in records)
    # no results file: a temporary journal, removed at the end
    status = cli(["--space", '{"reg": [0.0, 0.001]}', "--n-jobs", "2", "--results", "",
                  "--epochs", "1", "--set", "hidden_dims=16", "--no-plot", "--no-progress"])
    assert status == 0 and "failed" not in capsys.readouterr().out


def test_cli_flags_take_the_api_names_and_keep_the_old_ones():
    import argparse

    from fastfc.sweep._cli import _fixed_from_args, add_cli_arguments
    parser = add_cli_arguments(argparse.ArgumentParser())
    base = ["--space", '{"reg": [0.0]}']
    new = parser.parse_args([*base, "--num-epochs", "3", "--batch-size", "20",
                             "--update-rule", "sgd"])
    old = parser.parse_args([*base, "--epochs", "3", "--batch-size", "20",
                             "--update-rule", "sgd"])
    assert vars(new) == vars(old)
    # every dedicated flag is the name of the setting it fixes, as --set spells it
    assert _fixed_from_args(new) == {"num_epochs": 3, "batch_size": 20, "update_rule": "sgd"}


# ---------------------------------------------------------------------- defaults, divergence

def test_unspecified_settings_take_the_front_end_defaults(digits, tmp_path, capsys):
    from fastfc._defaults import FRONTEND_DEFAULTS
    results = tmp_path / "defaults.jsonl"
    trials, _ = sweep({"reg": [1e-4]}, digits, n_jobs=1, results=str(results),
                      num_epochs=2, return_model=False, verbose=True)
    assert capsys.readouterr().out.splitlines()[0] == "update rule: adam, learning rate 0.001"
    [trial] = trials
    # the configuration holds what was given, the record the defaults it ran with
    assert trial["config"] == {"num_epochs": 2, "reg": 1e-4}
    assert trial["defaults"]["update_rule"] == "adam"
    assert trial["defaults"]["learning_rate"] == 1e-3
    assert trial["defaults"]["batch_size"] == FRONTEND_DEFAULTS["batch_size"]
    assert trial["defaults"]["hidden_dims"] == list(FRONTEND_DEFAULTS["hidden_dims"])
    assert "reg" not in trial["defaults"]
    assert read_jsonl(results)[0]["defaults"] == trial["defaults"]
    # it trained exactly as adam at 1e-3 given explicitly does, not as plain SGD
    explicit = run_trial(digits, dict(trial["config"], update_rule="adam",
                                      learning_rate=1e-3), trial["seed"])
    assert explicit["loss_last"] == trial["loss_last"]
    assert explicit["best_val_acc"] == trial["best_val_acc"]
    sgd = run_trial(digits, dict(trial["config"], update_rule="sgd"), trial["seed"])
    assert sgd["loss_last"] != trial["loss_last"]
    # a trial recorded with other defaults (here: another default batch size) is run
    # again, and replaces it
    study = optuna.create_study(direction="maximize")
    old = dict(trial["defaults"], batch_size=7)
    study.add_trial(optuna.trial.create_trial(
        params={"reg": 1e-4},
        distributions={"reg": optuna.distributions.CategoricalDistribution([1e-4])},
        value=0.99, user_attrs={"config": trial["config"], "key": trial["key"],
                                "seed": trial["seed"], "defaults": old, "status": "ok"}))
    ran = []
    again, _ = sweep({"reg": [1e-4]}, digits, n_jobs=1, study=study, search="grid",
                     num_epochs=2, return_model=False,
                     progress=lambda r, *_: ran.append(r["key"]))
    assert ran == [trial["key"]] and again[0]["loss_last"] == trial["loss_last"]
    assert len(again) == 1 and again[0]["retry_of"] == 0


def test_swept_rule_is_described_as_swept(digits, tmp_path, capsys):
    sweep({"update_rule": ["adam", "sgd_momentum"]}, digits, n_jobs=1, results=None,
          num_epochs=1, hidden_dims=[16], return_model=False, verbose=True)
    assert capsys.readouterr().out.splitlines()[0] == \
        "update rule: swept, learning rate 0.001"


def test_a_diverged_trial_is_recorded_as_diverged(digits, tmp_path):
    results = tmp_path / "div.jsonl"
    trials, best = sweep({"learning_rate": [1e-3, 1e4]}, digits, n_jobs=1,
                         results=str(results), num_epochs=2, hidden_dims=[16])
    assert [t["status"] for t in trials] == ["ok", "diverged"]
    bad = trials[-1]
    assert bad["config"]["learning_rate"] == 1e4
    assert bad["error"].startswith("TrainingDiverged: training diverged at iteration")
    assert bad["best_val_acc"] is None
    assert isinstance(best, Net) and trials[0]["config"]["learning_rate"] == 1e-3
    # deterministic: not run again on resume (unless retry_failed)
    ran = []
    sweep({"learning_rate": [1e-3, 1e4]}, digits, n_jobs=1, results=str(results),
          num_epochs=2, hidden_dims=[16], return_model=False,
          progress=lambda r, *_: ran.append(r["key"]))
    assert ran == []
    sweep({"learning_rate": [1e-3, 1e4]}, digits, n_jobs=1, results=str(results),
          num_epochs=2, hidden_dims=[16], return_model=False, retry_failed=True,
          progress=lambda r, *_: ran.append(r["status"]))
    assert ran == ["diverged"]


def test_best_model_keeps_the_best_epochs_batchnorm_statistics(digits):
    # with this seed the best epoch (9 of 12) is not the last one, and the running
    # statistics of the last epoch give another accuracy (0.947 instead of 0.977)
    trials, best = sweep({"learning_rate": [3e-2]}, digits, n_jobs=1, results=None,
                         fixed={"seed": 5}, normalization="batchnorm", num_epochs=12,
                         hidden_dims=[32])
    assert trials[0]["seed"] == 5
    assert val_acc(best, digits) == trials[0]["best_val_acc"]


# ---------------------------------------------------------------------- fixed settings

def test_fixed_seed_goes_to_the_trials_and_settings_are_type_checked(digits):
    trials, _ = sweep({"reg": [0.0, 1e-3]}, digits, n_jobs=1, results=None,
                      fixed={"seed": 7}, num_epochs=1, hidden_dims=[16],
                      return_model=False)
    assert [t["seed"] for t in trials] == [7, 7]
    assert all(t["config"]["seed"] == 7 for t in trials)
    with pytest.raises(ValueError, match="num_epochs given both in fixed and as keywords"):
        sweep({"reg": [0.0]}, digits, results=None, fixed={"num_epochs": 1}, num_epochs=2)
    with pytest.raises(TypeError, match="'batch_size' takes an integer, got '100'"):
        sweep({"reg": [0.0]}, digits, results=None, batch_size="100")
    with pytest.raises(TypeError, match="'learning_rate' takes a finite number"):
        sweep({"reg": [0.0]}, digits, results=None, learning_rate=float("nan"))
    with pytest.raises(ValueError, match="seed .*non-negative integer"):
        sweep({"reg": [0.0]}, digits, results=None, seed=-1)
    with pytest.raises(TypeError, match="fixed must be a dict"):
        sweep({"reg": [0.0]}, digits, results=None, fixed=[("seed", 1)])


def test_every_setting_has_a_type():
    from fastfc.sweep import SETTING_TYPES
    assert set(SETTING_TYPES) == set(ROUTES)


@pytest.mark.parametrize("name, text, value", [
    ("seed", "0", 0), ("batch_size", "1e2", 100), ("learning_rate", "1e-3", 1e-3),
    ("reg", "0", 0), ("hidden_dims", "100,50", [100, 50]), ("hidden_dims", "[64]", [64]),
    ("hidden_dims", "64", 64), ("normalization", "none", None),
    ("normalization", "batchnorm", "batchnorm"), ("update_rule", '"adam"', "adam"),
    ("shuffle", "true", True), ("shuffle", "0", False), ("patience", "null", None),
    ("dtype", "float64", "float64"),
])
def test_parse_setting_reads_each_type(name, text, value):
    from fastfc.sweep import parse_setting
    parsed = parse_setting(name, text)
    assert parsed == value and type(parsed) is type(value)


@pytest.mark.parametrize("name, text, match", [
    ("seed", "abc", "seed takes an integer or none"),
    ("batch_size", "2.5", "batch_size takes an integer"),
    ("learning_rate", "fast", "learning_rate takes a finite number"),
    ("hidden_dims", "[1, 'a']", "hidden_dims takes an integer or a list of integers"),
    ("shuffle", "maybe", "shuffle takes true or false"),
    ("hiden_dims", "3", "unknown setting 'hiden_dims'"),
])
def test_parse_setting_names_the_setting_on_bad_values(name, text, match):
    from fastfc.sweep import parse_setting
    with pytest.raises(ValueError, match=match):
        parse_setting(name, text)


def cli(argv):
    from fastfc.cli import main
    return main(["sweep", *argv])


def test_cli_set_seed_and_typed_values(tmp_path, capsys):
    results = tmp_path / "seed.jsonl"
    status = cli(["--space", '{"reg": [0.0, 0.001]}', "--n-jobs", "1", "--results",
                  str(results), "--set", "seed=0", "--set", "hidden_dims=16",
                  "--set", "num_epochs=1", "--no-plot", "--no-progress"])
    out = capsys.readouterr().out
    assert status == 0
    assert out.splitlines()[0] == "update rule: adam, learning rate 0.001"
    records = read_jsonl(results)
    assert [r["seed"] for r in records] == [0, 0]
    assert all(r["config"]["hidden_dims"] == 16 and r["config"]["seed"] == 0
               for r in records)


@pytest.mark.parametrize("argv, message", [
    (["--set", "seed=abc"], "argument --set: --set seed=abc: seed takes an integer"),
    (["--set", "batch_size=big"], "batch_size takes an integer"),
    (["--set", "nonsense=1"], "unknown setting 'nonsense'"),
    (["--set", "reg"], "expected NAME=VALUE"),
    (["--top", "0"], "argument --top: expected a positive integer, got 0"),
    (["--top", "-3"], "argument --top: expected a positive integer"),
    (["--n-jobs", "0"], "argument --n-jobs: expected a positive integer"),
    (["--n-trials", "x"], "argument --n-trials: expected a positive integer, got 'x'"),
    (["--epochs", "-1"], "argument --num-epochs/--epochs: expected a positive integer"),
    (["--num-epochs", "0"], "argument --num-epochs/--epochs: expected a positive integer"),
    (["--batch-size", "0"], "argument --batch-size: expected a positive integer"),
    (["--seed", "-1"], "argument --seed: expected a non-negative integer"),
    (["--update-rule", "lbfgs"], "argument --update-rule: invalid choice"),
])
def test_cli_bad_flags_are_usage_errors(tmp_path, capsys, argv, message):
    status = cli(["--space", '{"reg": [0.0]}', "--results", str(tmp_path / "r.jsonl"),
                  *argv])
    err = capsys.readouterr().err
    assert status == 2 and message in err, err
    assert not (tmp_path / "r.jsonl").exists()


@pytest.mark.parametrize("argv, message", [
    (["--space", "missing.json"], "--space 'missing.json': no such file"),
    (["--space", "{not json"], "--space: not valid JSON"),
    (["--space", '{"reg": {"loguniform": 3}}'], "takes a list of arguments"),
    (["--space", '{"reg": {"loguniform": [1, 2, 3]}}'], "loguniform takes [low, high]"),
    (["--data", "missing.npz"], "--data 'missing.npz': no such file"),
    (["--data", "/dev/zero"], "--data '/dev/zero': not a regular file"),
    (["--space", "/dev/zero"], "--space '/dev/zero': not a regular file"),
    (["--epochs", "1", "--set", "num_epochs=2"], "num_epochs is given both by --num-epochs"),
    (["--plot", "no/such/folder/p.png"], "the folder"),
    (["--results", "/dev/full"], "is a device: the trial summary must be a regular file"),
    (["--storage", "/dev/full"], "is a device: a journal storage must be a regular file"),
])
def test_cli_bad_values_fail_clearly_before_any_trial(tmp_path, capsys, monkeypatch, argv,
                                                      message):
    monkeypatch.chdir(tmp_path)
    args = ["--space", '{"reg": [0.0]}', "--results", str(tmp_path / "r.jsonl"),
            "--no-progress", *argv]
    status = cli(args)
    err = capsys.readouterr().err
    assert status == 1 and message in err, err
    assert not (tmp_path / "r.jsonl").exists()


# ---------------------------------------------------------------------- the journal

def test_results_and_storage_must_be_regular_files(digits, tmp_path):
    for path in ("/dev/full", "/dev/zero", str(tmp_path)):
        with pytest.raises(ValueError, match="must be a regular file"):
            sweep({"reg": [0.0]}, digits, n_jobs=1, results=path, num_epochs=1)
        with pytest.raises(ValueError, match="must be a regular file"):
            sweep({"reg": [0.0]}, digits, n_jobs=1, storage=path, results=None,
                  num_epochs=1)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match="is a FIFO"):
        sweep({"reg": [0.0]}, digits, n_jobs=1, storage=str(fifo), num_epochs=1)


def test_corrupt_journal_lines_are_handled_with_a_clear_message(digits, tmp_path):
    results = tmp_path / "j.jsonl"
    space = {"reg": [0.0, 1e-3, 1e-2]}
    settings = dict(num_epochs=1, hidden_dims=[16], return_model=False, n_jobs=1)
    trials, _ = sweep(space, digits, results=str(results), **settings)
    journal = journal_of(results)
    good = open(journal, "rb").read()
    n_lines = good.count(b"\n")
    # a write cut short by a crash: the last line is repaired with a warning naming it
    with open(journal, "ab") as f:
        f.write(b'{"op_code": 4, "worker_id": "cut-short", "study_id": 0, "da')
    ran = []
    with pytest.warns(RuntimeWarning, match=rf"j.journal:{n_lines + 1}: the last line was "
                                            "removed because it is incomplete"):
        again, _ = sweep(space, digits, results=str(results),
                         progress=lambda r, *_: ran.append(r), **settings)
    assert ran == []
    assert [(t["key"], t["best_val_acc"]) for t in again] == \
        [(t["key"], t["best_val_acc"]) for t in trials]
    repaired = open(journal, "rb").read()
    assert repaired.startswith(good) and b"cut-short" not in repaired
    # a complete last line that is not JSON: the same
    with open(journal, "ab") as f:
        f.write(b"garbage\n")
    with pytest.warns(RuntimeWarning, match="the last line was removed because it is not "
                                            "JSON"):
        sweep(space, digits, results=str(results), **settings)
    assert open(journal, "rb").read().startswith(repaired)
    assert b"garbage" not in open(journal, "rb").read()
    # a line damaged in the middle is not guessed at: a clear error naming the file
    lines = good.splitlines(keepends=True)
    lines[3] = b"{damaged\n"
    open(journal, "wb").write(b"".join(lines))
    with pytest.raises(ValueError, match="storage journal .*j.journal.* is damaged at line 4"):
        sweep(space, digits, results=str(results), **settings)


# ---------------------------------------------------------------------- the plot

def visible_xtick_labels(ax, renderer):
    """(text, bounding box) of every x tick label drawn inside the axis' view."""
    low, high = sorted(ax.get_xlim())
    out = []
    for tick in [*ax.xaxis.get_major_ticks(), *ax.xaxis.get_minor_ticks()]:
        label = tick.label1
        if label.get_visible() and label.get_text() and low <= tick.get_loc() <= high:
            out.append((label.get_text(), label.get_window_extent(renderer)))
    return out


@pytest.mark.parametrize("lr, reg", [
    ([2e-4, 3e-4, 5e-4, 7e-4, 9e-4], [1.1e-5, 2e-5, 3.3e-5, 5e-5, 9e-5]),  # < 1 decade
    ([1e-3, 2e-3, 5e-3, 1e-2, 3e-2], [1e-6, 1e-5, 1e-4, 1e-3, 1e-2]),
    ([1e-6, 1e-4, 1e-2, 1e0, 1e2], [3e-3, 4e-3, 5e-3, 6e-3, 7e-3]),
])
def test_plot_log_axis_tick_labels_do_not_overlap(lr, reg):
    from fastfc.sweep._cli import _sweep_figure
    trials = [{"status": "ok", "best_val_acc": 0.5 + 0.01 * i,
               "config": {"learning_rate": a, "reg": b, "hidden_dims": h}}
              for i, (a, b, h) in enumerate(zip(lr, reg, [[128], [32], [64], [32], [32, 32]]))]
    fig = _sweep_figure(trials, ["learning_rate", "reg", "hidden_dims"])
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes[:2]:
        assert ax.get_xscale() == "log"
        labels = visible_xtick_labels(ax, renderer)
        assert len(labels) >= 2, [t for t, _ in labels]  # the axis still has a scale
        boxes = sorted(labels, key=lambda item: item[1].x0)
        for (t1, b1), (t2, b2) in zip(boxes, boxes[1:]):
            assert b1.x1 <= b2.x0, f"{ax.get_xlabel()}: {t1!r} overlaps {t2!r}"
    # categorical widths in their natural order
    assert [t.get_text() for t in fig.axes[2].get_xticklabels()] == \
        ["[32]", "[32,32]", "[64]", "[128]"]


def test_augment_setting_builds_the_trials_augmenter(digits):
    """'augment' is a Solver setting: the trial parses the spec for the images of its
    data (X_train of shape (N, C, H, W)) with the trial's seed; flat rows are refused."""
    from fastfc.augment import Augmenter
    from fastfc.sweep._trial import build_model

    images = dict(digits, X_train=digits["X_train"].reshape(-1, 1, 8, 8),
                  X_val=digits["X_val"].reshape(-1, 1, 8, 8))
    _, solver_kwargs = build_model(images, {"augment": "translate=1"}, seed=3)
    aug = solver_kwargs["augment"]
    assert isinstance(aug, Augmenter)
    assert (aug.image_shape, aug.flip, aug.translate) == ((1, 8, 8), False, 1)
    twin = Augmenter((1, 8, 8), flip=False, translate=1, seed=3)
    assert np.array_equal(aug.draw(20)[1], twin.draw(20)[1])
    result = run_trial(images, {"augment": "translate=1", "num_epochs": 1,
                                "hidden_dims": [16]}, seed=0)
    assert result["epochs"] == 1 and 0.0 <= result["best_val_acc"] <= 1.0
    with pytest.raises(ValueError, match=r"augment 'translate=1' needs images.*\(1000, 64\)"):
        build_model(digits, {"augment": "translate=1"}, seed=0)
