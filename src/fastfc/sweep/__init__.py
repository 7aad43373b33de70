"""Hyper-parameter sweeps on Optuna: grid, random, TPE or CMA-ES search, with pruning,
on local processes or a Dask cluster, resumable from the study's storage.

>>> from fastfc.sweep import sweep, loguniform
>>> trials, best = sweep({"hidden_dims": [[100], [200]],
...                       "learning_rate": loguniform(1e-4, 1e-2)},
...                      data, search="tpe", n_trials=30, prune="asha",
...                      update_rule="adam", num_epochs=10)      # doctest: +SKIP

Needs Optuna (``pip install 'fastfc[sweep]'``; imported when a sweep starts, not by
``import fastfc.sweep``).  Every trial builds a :class:`fastfc.Net` and trains it with
:class:`fastfc.Solver` on ``data`` (a Solver data dict: X_train, y_train, X_val,
y_val); its value in the study is the best validation accuracy (maximised).

Settings
--------
A setting is named by its keyword where it goes -- :func:`route_config` sends each name
to its place, by the table :data:`ROUTES`:

* the model (``Net``): hidden_dims, activation, dropout_keep_ratio, normalization, reg,
  weight_scale, init, dtype, alpha, loss, bn_momentum, eps, input_dim, num_classes
  (``hidden_dim`` / ``hidden_size`` give one hidden layer of that width; input_dim and
  num_classes are read from ``data`` when not given);
* the Solver: update_rule, batch_size, num_epochs, lr_decay, num_train_samples,
  num_val_samples, patience, schedule, time_budget, shuffle;
* the update rule's ``optim_config``: learning_rate, momentum, decay_rate, beta1, beta2,
  epsilon;
* ``seed``: the trial's seed (by default derived from the trial's configuration, so a
  configuration trains the same on any worker; sweep over it to repeat each one -- the
  ``seed`` argument of :func:`sweep` itself seeds the sampler).

Swept settings go in ``space``; fixed ones are keyword arguments of :func:`sweep` (or
the dict ``fixed``, the only way to fix ``seed``).  Unknown names raise ValueError
naming them.  Every training setting neither swept nor fixed takes fastfc's front-end
default (``fastfc._defaults.FRONTEND_DEFAULTS``, as ``fastfc train`` does): Adam at
learning rate 1e-3, reg 1e-4, batches of 100, one hidden layer of 100 ReLU units.  A
trial whose training diverges (NaN/inf, or a loss 1000 times its start) stops there and
is recorded as failed with status ``"diverged"`` and the Solver's message.

Search
------
A value of ``space`` is a list of candidates, or (except for grid search) a
distribution, mapped to Optuna's distributions:

* :class:`loguniform` (``FloatDistribution(log=True)``), :class:`uniform`
  (``FloatDistribution``), :class:`randint` (``IntDistribution``, both ends included),
  :class:`choice` or a list (``CategoricalDistribution``; candidates that are lists,
  such as hidden_dims, are stored as their JSON text), or an Optuna distribution;
* a ``(low, high)`` tuple of two numbers: log-uniform for learning_rate, reg and
  weight_scale, integers when both are ints, uniform otherwise.

``search='grid'`` (the default): every point of the Cartesian product of the lists, in
the order of ``space`` (``n_trials`` keeps the first n), each once.
``'random'``, ``'tpe'``, ``'cmaes'``: Optuna's ``RandomSampler``, ``TPESampler`` and
``CmaEsSampler`` (categorical settings drawn at random), seeded with ``seed``, until the
study holds ``n_trials`` trials.  The same call gives the same trials with one worker;
random search also with several (the sweep process draws every trial).

Pruning
-------
``prune='median'`` (Optuna's ``MedianPruner``: below the median of the other trials at
the same epoch, once two have finished, from the second epoch), ``'asha'``
(``SuccessiveHalvingPruner``), ``'hyperband'`` (``HyperbandPruner`` up to num_epochs),
or an Optuna pruner.  Each trial reports its validation accuracy after every epoch (the
study's intermediate values, step = epoch); a pruned trial stops at once, keeps its best
parameters, and is recorded as PRUNED with the epochs it trained (``epochs``).

Storage, resume, results
------------------------
The study lives in Optuna storage: ``storage`` is a journal file (Optuna's journal
format; default: the ``results`` file with the suffix ``.journal``, in memory when
``results`` is None), an Optuna storage URL (SQLite, PostgreSQL) or a storage object,
and ``study_name`` names it (default ``'fastfc-sweep'``); ``study=`` takes an
``optuna.Study`` of your own (maximising), which keeps its own sampler and pruner unless
``search`` or ``prune`` is given.  ``optuna.load_study`` and optuna-dashboard open it.

Running the same call again resumes: finished and pruned trials are kept; the trials
that were running when their sweep process died (it wrote its host and pid into each)
are marked failed and run again; a failed trial is run again when its worker died
(``retryable``), and every failed or diverged one with ``retry_failed=True``.  A re-run
is a new trial whose ``retry_of`` names the one it replaces; that one is left out of
the returned trials, so no trial is counted twice.  A journal whose last line a crash
cut short is repaired with a warning naming the line; a line damaged in the middle
raises ValueError naming the file.  The journal is flushed at every operation and
fsynced when a trial ends.

Each trial carries user attributes: key (a hash of its configuration), seed, config,
status (``"ok" | "pruned" | "failed" | "diverged"``), best_val_acc, final_train_acc,
loss_first, loss_last, loss_min, n_iterations, epochs, wall_time, worker, defaults (the
front-end defaults of the settings config does not give), error, retryable, retry_of.
``results`` (default ``'sweep.jsonl'``) is a summary of every trial of the study,
rewritten at the end of each call: JSON lines (``pandas.read_json(path, lines=True)``),
or CSV when the name ends with ``.csv``.

Backends
--------
The sweep process asks the study for each trial and tells it the result (Optuna's
ask-and-tell); workers only train, and write each epoch's accuracy into the shared
storage (so a study in memory runs with ``n_jobs=1`` only).

``backend='local'``: a pool of ``n_jobs`` worker processes (spawned; default and
maximum: one per core).  The data are written once to a temporary directory and
memory-mapped read-only by every worker; each worker limits its BLAS to
``max(1, cores // n_jobs)`` threads, so workers x threads never exceeds the cores.
``n_jobs=1`` runs the trials in this process.  The workers do not outlive the sweep: each
exits when its parent process dies, even by SIGKILL (Linux: the parent-death signal;
elsewhere a watchdog thread).  The data directory is removed on every exit path, SIGTERM
included; directories left by a SIGKILLed sweep are removed by the next local sweep.
A worker that dies takes the pool down: the trials that were running are re-run one at a
time in a fresh worker, so the culprit is found; one that keeps killing its worker is
recorded as failed (retryable) after ``retries`` re-runs, and every other result is kept.

``backend='dask'``: trials are tasks on a ``dask.distributed`` cluster, two queued per
worker thread: ``scheduler`` is a ``Client``, a scheduler address, or None for
a ``LocalCluster`` (``n_jobs`` worker processes of one thread, on 127.0.0.1, no
dashboard, BLAS limited as above) started and closed by the call.  The data are
scattered to every worker once; the storage must be one every worker reaches (a journal
file on a shared filesystem, an RDB URL).  A worker lost mid-trial makes the scheduler
run the task elsewhere (up to ``distributed.scheduler.allowed-failures`` times; then the
trial is recorded as failed, retryable, and the next call runs it again); ``retries``
are Dask's re-runs of a task that raised.

The best model
--------------
:func:`sweep` returns ``(trials, best_model)``: every trial of the study as a record
(``number``, ``state``, the fields above, ``val_acc_per_epoch``; those this call did
not run carry ``"resumed": True``), finished trials by best validation accuracy first,
then pruned ones, failed ones last; and the trained ``Net`` of the best trial (with the
Solver's best parameters), retrained here when this call did not run it
(``return_model=False`` skips that).
"""
from fastfc.sweep._space import (LOG_SCALE, ROUTES, SETTING_TYPES, check_setting, choice,
                                 grid_configs, loguniform, parse_setting, parse_space,
                                 randint, route_config, trial_key, uniform)
from fastfc.sweep._trial import build_model, run_trial
from fastfc.sweep._sweep import sweep
from fastfc.sweep._study import export_trials
from fastfc.sweep._cli import add_cli_arguments, cli_main, format_table, main, plot_sweep
from fastfc.sweep._backends import _remove_stale_stashes, _watch_parent  # noqa: F401

__all__ = [
    "sweep", "loguniform", "uniform", "randint", "choice", "ROUTES", "route_config",
    "grid_configs", "trial_key", "run_trial", "build_model", "export_trials",
    "add_cli_arguments", "cli_main", "format_table", "plot_sweep", "SETTING_TYPES",
    "check_setting", "parse_setting", "parse_space", "LOG_SCALE",
]
