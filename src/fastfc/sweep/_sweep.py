"""The sweep itself: plan the trials of a study, run them on a backend, rank them."""
from __future__ import annotations

import numbers
import os
import warnings
from typing import Any, Callable, Mapping, Optional, Sequence, Union

from fastfc.sweep import _backends, _study
from fastfc.sweep._space import (_check_names, _defaults_for, _describe_optimiser, _is_int,
                                 _plain, check_setting, check_space, decode_params,
                                 grid_configs, optuna_space, route_config, seed_of,
                                 trial_key)
from fastfc.sweep._trial import Job, _check_data, execute, run_trial


def _sort_key(record: Any, prefer: Optional[int] = None
              ) -> tuple[int, float, int, int]:
    """Finished trials first, by best val accuracy, then pruned ones, then the failed;
    on a tie the trial ``prefer`` (the one whose model is at hand) first."""
    rank = {"ok": 0, "pruned": 1}.get(record.get("status"), 2)
    acc = record.get("best_val_acc")
    if acc is None:
        rank = max(rank, 2)
    return (rank, -(acc or 0.0), 0 if record.get("number") == prefer else 1,
            record.get("number", 0))


def _progress_bar(total: int) -> Any:
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit="trial", desc="sweep", dynamic_ncols=True)


def _check_int(name: str, value: object, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        what = "a positive integer" if low == 1 else "a non-negative integer"
        raise ValueError(f"{name} must be {what}, got {value!r}")


def _plan(study: Any, search: Optional[str], configs: Sequence[dict[str, Any]],
          fixed: Mapping[str, Any], n_trials: int, retry_failed: bool,
          encoded: set[str]) -> int:
    """Enqueue what this run must do; returns how many trials it asks for.

    Finished and pruned trials are kept; a failed one is run again when its worker or
    sweep process died (``retryable``), every failed or diverged one with
    ``retry_failed``; each re-run is a new trial whose ``retry_of`` names the one it
    replaces (that one is then left out of the results).  Trials waiting in the queue
    or running in a live process count as under way.
    """
    import optuna
    TrialState = optuna.trial.TrialState
    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs.get("retry_of") for t in trials} - {None}
    settled: list[Any] = []
    due: list[Any] = []
    under_way: list[Any] = []
    waiting = 0
    for t in trials:
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED):
            settled.append(t)
        elif t.state == TrialState.FAIL:
            if t.number in retried:
                continue
            status = t.user_attrs.get("status", "failed")
            if t.user_attrs.get("retryable") or retry_failed and status in ("failed",
                                                                              "diverged"):
                due.append(t)
            else:
                settled.append(t)
        elif t.state == TrialState.WAITING:
            waiting += 1
            under_way.append(t)
        else:
            under_way.append(t)

    if search == "grid":
        def key(t: Any) -> str:
            config = t.user_attrs.get("config")
            if config is None:
                params = t.system_attrs.get("fixed_params", t.params)
                config = dict(fixed, **decode_params(params, encoded))
            return trial_key(config)

        # a trial recorded with other front-end defaults ran another configuration:
        # it is run again, and replaced, as a failed one is
        def current(t: Any) -> bool:
            defaults = t.user_attrs.get("defaults")
            config = t.user_attrs.get("config")
            return defaults is None or config is None or defaults == _defaults_for(config)

        done = {key(t) for t in settled if current(t)}
        busy = {key(t) for t in under_way}
        due_by_key = {key(t): t.number for t in due}
        due_by_key.update({key(t): t.number for t in settled if not current(t)})
        count = waiting
        for config in configs:
            k = trial_key(config)
            if k in done or k in busy:
                continue
            params = {name: (_json(config[name]) if name in encoded else config[name])
                      for name in config if name not in fixed}
            attrs = {"retry_of": due_by_key[k]} if k in due_by_key else None
            study.enqueue_trial(params, user_attrs=attrs)
            busy.add(k)
            count += 1
        return count

    for t in due:
        study.enqueue_trial(t.params, user_attrs={"retry_of": t.number})
    running = len(under_way) - waiting
    return max(len(due) + waiting, n_trials - len(settled) - running)


def _json(value: Any) -> str:
    import json
    return json.dumps(value)


def sweep(space: Mapping[str, Any], data: Mapping[str, Any], *, n_trials: Optional[int] = None,
          search: Optional[str] = None, prune: Any = None, backend: str = "local",
          n_jobs: Optional[int] = None, scheduler: Any = None, storage: Any = None,
          study_name: Optional[str] = None, study: Any = None,
          results: Optional[str] = "sweep.jsonl", seed: int = 0, retries: int = 2,
          retry_failed: bool = False, progress: Union[bool, Callable[..., Any], None] = None,
          return_model: bool = True, runner: Optional[Callable[..., Any]] = None,
          verbose: bool = False, fixed: Optional[Mapping[str, Any]] = None,
          **settings: Any) -> tuple[list[dict[str, Any]], Any]:
    """Train one model per trial of an Optuna study and rank them by validation accuracy.

    Parameters
    ----------
    space : dict
        Swept setting name -> candidate list (grid) or distribution; see the module
        docstring for the names and forms.
    data : dict
        Solver data: 'X_train', 'y_train', 'X_val', 'y_val'.
    n_trials : int, optional
        Random, TPE and CMA-ES search: the number of trials the study should hold
        (required; a re-run adds only the missing ones).  Grid search: keep the first n
        grid points.
    search : {'grid', 'random', 'tpe', 'cmaes'}, optional
        Default 'grid'; with ``study`` given, the default is the study's own sampler.
    prune : {None, 'median', 'asha', 'hyperband'} or optuna.pruners.BasePruner
        Stop trials whose validation accuracy after some epochs is hopeless.  None: no
        pruning (with ``study`` given: the study's own pruner).
    backend : {'local', 'dask'}
    n_jobs : int, optional
        Worker processes (local) or LocalCluster workers (dask without a scheduler);
        default: the number of cores.
    scheduler : distributed.Client or str, optional
        Dask only: a client or a scheduler address; None starts a LocalCluster.
    storage : str, os.PathLike or optuna.storages.BaseStorage, optional
        Where the study lives: a journal file path (default: ``results`` with the suffix
        '.journal'; in memory when ``results`` is None), an Optuna storage URL
        ('sqlite:///sweep.db') or a storage object.
    study_name : str, optional
        The study's name in ``storage`` (default 'fastfc-sweep').
    study : optuna.Study, optional
        A study of your own (maximising); then ``storage`` and ``study_name`` are not
        given.
    results : str or None, default 'sweep.jsonl'
        A summary of every trial of the study, for pandas: JSON lines, or CSV when the
        name ends with '.csv'; rewritten at the end of each call.  None writes none.
    seed : int, default 0
        Seeds the sampler (a re-run of a study that already has trials seeds it from
        ``seed`` and their number, so it does not draw the first points again).
    retries : int, default 2
        Re-runs of a trial whose worker died (local), or Dask's task retries.
    retry_failed : bool, default False
        Run again the trials recorded as failed or diverged.
    progress : bool, callable or None
        True: a tqdm bar over the trials; a callable is called as
        ``progress(record, n_done, n_total)`` after each trial; None/False: nothing.
    return_model : bool, default True
        Return the best trial's Net (retraining it when it was not run by this call).
    runner : callable, optional
        ``runner(data, config, seed, report=None) -> dict`` run for each trial instead
        of :func:`run_trial` (module-level, so worker processes can import it; the
        ``report`` keyword is optional).
    verbose : bool, default False
        Print the update rule and learning rate the trials use before they start.
    fixed : dict, optional
        Settings shared by every trial, as a dict: the same as keyword settings, and the
        way to fix the trials' ``seed`` (the keyword ``seed`` seeds the sampler).
    **settings
        Settings shared by every trial (input_dim, num_classes, num_epochs, ...).

    Returns
    -------
    trials : list of dict
        Every trial of the study (a re-run trial once, its failed attempt left out):
        finished ones by best validation accuracy, then pruned ones, then the failed.
        Trials this call did not run carry ``"resumed": True``.
    best_model : fastfc.Net or None
    """
    _check_data(data)
    runner = run_trial if runner is None else runner
    if not callable(runner):
        raise TypeError("runner must be callable (data, config, seed) -> dict")
    if backend not in ("local", "dask"):
        raise ValueError(f"backend must be 'local' or 'dask', got {backend!r}")
    if scheduler is not None and backend != "dask":
        raise ValueError("scheduler is only used with backend='dask'")
    if search is not None and search not in _study.SEARCHES:
        raise ValueError(f"search must be one of {', '.join(map(repr, _study.SEARCHES))}, "
                         f"got {search!r}")
    if isinstance(prune, str) and prune not in _study.PRUNERS:
        raise ValueError(f"prune must be None, one of "
                         f"{', '.join(map(repr, _study.PRUNERS))} or an optuna pruner, got "
                         f"{prune!r}")
    cores = _backends._cpu_count()
    if n_jobs is None:
        n_jobs = cores
    _check_int("n_jobs", n_jobs, 1)
    if n_jobs > cores and not (backend == "dask" and scheduler is not None):
        warnings.warn(f"n_jobs={n_jobs} is more than the {cores} cores: using {cores} "
                      "workers", RuntimeWarning, stacklevel=2)
        n_jobs = cores
    _check_int("retries", retries, 0)
    if not _is_int(seed) or seed < 0:
        raise ValueError(f"seed (of the sampler) must be a non-negative integer, got "
                         f"{seed!r}; a fixed seed for the trials goes in fixed={{'seed': ...}}")
    if n_trials is not None:
        _check_int("n_trials", n_trials, 1)
    if fixed is None:
        fixed = {}
    if not isinstance(fixed, dict):
        raise TypeError(f"fixed must be a dict of setting name -> value, got "
                        f"{type(fixed).__name__}")
    both = sorted(set(fixed) & set(settings))
    if both:
        raise ValueError(f"{', '.join(both)} given both in fixed and as keywords")
    fixed = dict(fixed, **settings)
    _check_names(fixed, "setting(s)")
    fixed = {name: _plain(check_setting(name, value)) for name, value in fixed.items()}
    check_space(space, fixed)
    optuna = _study.import_optuna()
    route_config(dict(fixed, **{name: 1 for name in space}))  # width aliases that clash
    if study is not None and (storage is not None or study_name is not None):
        raise ValueError("give either study, or storage and study_name")
    kind = search or ("grid" if study is None else None)
    if kind != "grid" and n_trials is None:
        raise ValueError(f"search={kind or 'the study sampler'!r} needs n_trials")
    dists, encoded = optuna_space(space, kind or "random")
    configs = grid_configs(space, fixed, n_trials) if kind == "grid" else None
    if results is not None:
        results = os.fspath(results)
        _study.check_results_path(results)
    if backend == "dask":
        _backends.import_distributed()

    parallel = backend == "dask" or n_jobs > 1
    temp_journal = None
    user_study = study is not None
    if user_study:
        if not isinstance(study, optuna.Study):
            raise TypeError(f"study must be an optuna.Study, got {type(study).__name__}")
        _study.check_direction(study)
        in_memory = isinstance(study._storage, optuna.storages.InMemoryStorage)
        spec = None if in_memory else _study.StorageSpec(storage=study._storage)
        if parallel and spec is None:
            raise ValueError("a study in memory cannot be shared with worker processes: "
                             "use n_jobs=1, or create the study with a journal file or an "
                             "RDB storage")
    else:
        default = os.path.splitext(results)[0] + ".journal" if results else None
        if default is None and storage is None and parallel:
            import tempfile
            fd, temp_journal = tempfile.mkstemp(prefix="fastfc-study-", suffix=".journal")
            os.close(fd)
            default = temp_journal
        try:
            store, spec, journal = _study.resolve_storage(storage, default)
            if parallel and spec is None:
                raise ValueError("a storage in memory cannot be shared with worker "
                                 "processes: use n_jobs=1, or a journal file or RDB storage")
            study = _study.open_study(store, study_name or _study.DEFAULT_STUDY_NAME,
                                      None, None, journal)
        except BaseException:
            if temp_journal is not None:
                os.remove(temp_journal)
            raise
    try:
        return _run(study, user_study, spec, dists, encoded, configs, kind, fixed, n_trials, prune,
                    data, runner, backend, n_jobs, cores, scheduler, retries, retry_failed,
                    seed, progress, return_model, results, verbose, space)
    finally:
        if temp_journal is not None:
            os.remove(temp_journal)


def _run(study: Any, user_study: bool, spec: Any, dists: dict[str, Any], encoded: set[str],
         configs: Optional[list[dict[str, Any]]], kind: Optional[str], fixed: dict[str, Any],
         n_trials: Optional[int], prune: Any, data: Mapping[str, Any],
         runner: Callable[..., Any], backend: str, n_jobs: int, cores: int,
         scheduler: Any, retries: int, retry_failed: bool, seed: int, progress: Any,
         return_model: bool, results: Optional[str], verbose: bool,
         space: Mapping[str, Any]) -> tuple[list[dict[str, Any]], Any]:
    import optuna
    WAITING = optuna.trial.TrialState.WAITING
    n_before = len(study.get_trials(deepcopy=False))
    if kind is not None:
        # a study that already has trials: another seed, so the first points are new
        sampler_seed = seed if n_before == 0 else (seed * 1_000_003 + n_before) % 2**31
        study.sampler = _study.make_sampler(kind, sampler_seed)
    if prune is not None or not user_study:
        num_epochs = fixed.get("num_epochs") or 10  # the Solver's default
        study.pruner = _study.make_pruner(prune, num_epochs)
    _study.fail_dead_trials(study)
    # (configs is a list for grid search, the one search that reads it)
    todo = _plan(study, kind, configs,  # type: ignore[arg-type]
                 fixed, n_trials or 0, retry_failed, encoded)
    if verbose:
        print(_describe_optimiser(space, fixed), flush=True)

    remaining = [todo]

    started: dict[int, int] = {}

    def next_job() -> Optional[Job]:
        if remaining[0] <= 0:
            return None
        if kind == "grid" and not study.get_trials(deepcopy=False, states=(WAITING,)):
            return None  # another process on the same study took the last points
        remaining[0] -= 1
        trial = study.ask(dists)
        started[trial.number] = trial._trial_id
        params = decode_params({n: trial.params[n] for n in dists}, encoded)
        config = dict(fixed, **params)
        key = trial_key(config)
        seed_ = seed_of(key, config)
        _study.begin_trial(study, trial, config, key, seed_)
        return Job(trial._trial_id, trial.number, config, key, seed_)

    bar = _progress_bar(todo) if progress is True and todo else None
    callback = progress if callable(progress) else None
    best: dict[str, Any] = {"acc": None, "number": None, "model": None}
    ran: set[int] = set()

    def finish(job: Job, record: dict[str, Any]) -> None:
        model = record.pop("model", None)
        _study.finish_trial(study, job.trial_id, job.number, record)
        started.pop(job.number, None)
        record["number"] = job.number
        ran.add(job.number)
        ok = record["status"] == "ok" and record.get("best_val_acc") is not None
        if ok and (best["acc"] is None or record["best_val_acc"] > best["acc"]):
            best.update(acc=record["best_val_acc"], number=job.number, model=model)
        if bar is not None:
            bar.update(1)
            if best["acc"] is not None:
                bar.set_postfix(best_val_acc=f"{best['acc']:.4f}", refresh=False)
        if callback is not None:
            callback(record, len(ran), todo)

    inline = backend == "local" and n_jobs == 1
    if inline:
        reporter = _study.Reporter(study=study)
    else:
        reporter = _study.Reporter(spec=spec, study_name=study.study_name,
                                   pruner=study.pruner)
    try:
        if todo <= 0:
            pass
        elif backend == "dask":
            _backends.run_dask(next_job, finish, data, runner, reporter, scheduler, n_jobs,
                               retries)
        elif inline:
            _backends.run_inline(next_job, finish, data, runner, reporter)
        else:
            _backends.run_local(next_job, finish, data, runner, reporter, n_jobs, cores,
                                retries)
    finally:
        if bar is not None:
            bar.close()
        # interrupted (Ctrl-C, an error in this process): the trials under way are failed,
        # to be run again by the next call, even one in this same process
        for number, trial_id in started.items():
            _study.abandon_trial(study, trial_id, number)
        every = [_study.record_of(t, encoded) for t in study.get_trials(deepcopy=False)]
        if results is not None:
            _study.export_trials(every, results)

    replaced = {r.get("retry_of") for r in every} - {None}
    trials = []
    for record in every:
        if record["state"] in ("RUNNING", "WAITING") or record["number"] in replaced:
            continue
        if record["number"] not in ran:
            record["resumed"] = True
        trials.append(record)
    trials.sort(key=lambda r: _sort_key(r, best["number"]))
    best_model = None
    if return_model and trials and _sort_key(trials[0])[0] == 0:
        top = trials[0]
        if top["number"] == best["number"] and best["model"] is not None:
            best_model = best["model"]
        else:  # not run by this call (or tied with one): train it again here
            # (retrained here, outside the study: no trial id)
            job = Job(None,  # type: ignore[arg-type]
                      top["number"], top["config"], top["key"] or
                      trial_key(top["config"]), top["seed"])
            if job.seed is None:
                job.seed = seed_of(job.key, job.config)
            best_model = execute(runner, data, job).get("model")
    return trials, best_model
