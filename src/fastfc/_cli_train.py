"""``fastfc train``, ``fastfc evaluate`` and ``fastfc gradcheck``.

``train`` builds a :class:`fastfc.Net`, trains it with the :class:`fastfc.Solver` and
writes a run directory::

    RUN/config.json     the resolved settings (what ``--resume RUN`` rebuilds from)
    RUN/solver.npz      the Solver's resumable checkpoint (safe .npz, no pickle)
    RUN/model.npz       the best model (Net.save), what ``fastfc evaluate`` reads
    RUN/metrics.json    final accuracies, histories, timings, settings, versions
    RUN/history.png     loss and accuracy curves, the best epoch marked
    RUN/weights.png     first-layer weights as images (at most 100 units)

Settings come from ``fastfc._defaults.FRONTEND_DEFAULTS`` (shared with ``fastfc sweep``
and the estimators), then a preset, then the options given.  Everything is checked,
and the data loaded, before the run directory is created; the directory gets a name
nobody else holds (``runs/<dataset>-<time>``, then ``-2``, ``-3``, ...), and every file
in it is written atomically (a temporary file renamed over the target, which also
replaces a symbolic link instead of writing through it).
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import re
import sys
import time
import warnings
from contextlib import nullcontext
from typing import (TYPE_CHECKING, Any, Callable, Collection, ContextManager, Iterable,
                    Iterator, Mapping, NoReturn, Optional, Sequence, TypeGuard)

import numpy as np

from fastfc import _registry
from fastfc._config import __version__
from fastfc._defaults import FRONTEND_DEFAULTS, FRONTEND_ON_DIVERGENCE, describe_rule

if TYPE_CHECKING:
    import argparse

    from fastfc.net import Net
    from fastfc.solver import Solver


class BadOption(ValueError):
    """A bad option, or a bad value in a run's config.json: ``fastfc`` prints the
    message as one line and exits with status 2 (a usage error)."""


# ------------------------------------------------------------------ presets

#: the CIFAR-10 recipe of the presets 'best' and 'fast' (all but its length)
_CIFAR_RECIPE: dict[str, Any] = dict(
    dataset="cifar10", hidden_dims=[1024, 512, 256], activation="relu",
    normalization="batchnorm", dropout_keep_ratio=0.8, reg=0.0, init="he",
    update_rule="adamw", weight_decay=0.05, learning_rate=1e-3, schedule="cosine",
    time_budget=None, batch_size=256, shuffle=True, augment="flip,translate=2",
    preprocess="zca", zca_epsilon=0.5, label_smoothing=0.1, tta="flip", dtype="float32",
    checkpoint_every=10)

#: settings a preset fills in (options given on the command line win)
PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    # the course's five-layer net, as a baseline
    "course": dict(hidden_dims=[100, 100, 100, 100, 100], update_rule="adam",
                   learning_rate=1e-3, batch_size=200, num_epochs=10, weight_scale=5e-2),
    # the CIFAR-10 recipe (bench/recipe/RESULTS.md): about 9 minutes on 2 cores,
    # loading and evaluation included; a fixed number of epochs, so that a seed
    # gives one result
    "best": dict(_CIFAR_RECIPE, num_epochs=82),
    # the same recipe for a quick look: about 2 minutes on 2 cores
    "fast": dict(_CIFAR_RECIPE, num_epochs=15),
}

_FD = FRONTEND_DEFAULTS
#: defaults when neither the preset nor the command line sets a value; the training
#: settings are the front ends' shared ones (fastfc._defaults).  Every key is the name
#: of the Net / Solver / optim_config keyword it feeds, and its option is that name
#: with dashes (learning_rate -> --learning-rate)
DEFAULTS: dict[str, Any] = dict(dataset="digits", data=None, hidden_dims=list(_FD["hidden_dims"]),
                activation=_FD["activation"], normalization=_FD["normalization"],
                dropout_keep_ratio=_FD["dropout_keep_ratio"], reg=_FD["reg"],
                weight_scale=None, init=None, update_rule=_FD["update_rule"],
                learning_rate=_FD["learning_rate"], lr_decay=_FD["lr_decay"],
                schedule=None, time_budget=None, num_epochs=50,
                batch_size=_FD["batch_size"], shuffle=False, augment=None,
                preprocess="standardize", dtype="float32", threads=None, seed=0,
                print_every=None, checkpoint_every=1, num_test=None, loss=None,
                label_smoothing=0.0, weight_decay=None, warmup=0.0, ema_decay=None,
                ema_every=1, zca_epsilon=0.1, tta="none")

#: settings added after the first config.json format, with the value that reproduces
#: what runs written before them did (--resume and evaluate read such runs)
ADDED_SETTINGS: dict[str, Any] = {"loss": "softmax", "label_smoothing": 0.0,
                                  "weight_decay": None, "warmup": 0.0, "ema_decay": None,
                                  "ema_every": 1, "zca_epsilon": 0.1, "tta": "none"}

DATASETS = ("digits", "cifar10", "diabetes")
#: data sets of real-valued targets (trained with the 'mse' loss, scored by R^2)
REGRESSION_DATASETS = ("diabetes",)
#: shape of one sample -- (C, H, W) of an image -- and the number of test samples each
#: data set offers
IMAGE_SHAPES: dict[str, tuple[int, ...]] = {"digits": (1, 8, 8), "cifar10": (3, 32, 32),
                                            "diabetes": (10,)}
TEST_IMAGES = {"digits": 270, "cifar10": 10000, "diabetes": 66}
#: the losses --loss offers: the classifiers' (integer labels) and regression's
CLASSIFICATION_LOSSES = ("softmax", "svm")
LOSSES = CLASSIFICATION_LOSSES + ("mse",)
#: data sets whose classes change under a left-right flip (a mirrored 2 is no 2)
NOT_MIRROR_SYMMETRIC = {"digits": "handwritten digits are not left-right symmetric "
                                  "(a mirrored 2, 3, 4, 5, 7 or 9 is no longer that digit)"}
PREPROCESSING = ("standardize", "mean", "none", "zca")
#: the choices of --activation, --update-rule, --normalization and --init (fastfc._registry)
ACTIVATIONS = tuple(_registry.ACTIVATIONS)
UPDATE_RULES = tuple(_registry.UPDATE_RULES)
NORMALIZATIONS = tuple(n.cli_name for n in _registry.NORMALIZATIONS.values())
INITS = _registry.INITS
#: options that may accompany --resume (everything else comes from RUN/config.json)
RESUME_OPTIONS = ("num_epochs", "data", "threads")

#: the keys of config.json (and of a saved model's settings) before fastfc named them
#: after the API; --resume and evaluate read the old ones under their new names
OLD_KEYS = {"hidden": "hidden_dims", "dropout_keep": "dropout_keep_ratio",
            "lr": "learning_rate", "epochs": "num_epochs"}

#: the short spellings each option still accepts (they are the CLI's former names)
_ALIASES = {"hidden_dims": ("--hidden",), "dropout_keep_ratio": ("--dropout-keep",),
            "learning_rate": ("--lr",), "num_epochs": ("--epochs",)}
_SEED_MAX = 2**32 - 1


def _flag(key: str) -> str:
    return "--" + key.replace("_", "-")


def _option(add: Callable[..., Any], key: str, **kwargs: Any) -> None:
    """Declare the option of setting ``key``: ``--key-with-dashes`` and its aliases."""
    add(_flag(key), *_ALIASES.get(key, ()), dest=key, **kwargs)


def _int_list(text: object, flag: str = "--hidden-dims") -> list[int]:
    try:
        values = [int(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        raise BadOption(f"{flag} takes comma-separated integers such as 100,50, "
                        f"got {text!r}") from None
    if any(v <= 0 for v in values):
        raise BadOption(f"{flag} sizes must be positive integers, got {text!r}")
    return values


def train_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``fastfc train`` (all default to None: presets and DEFAULTS fill in)."""
    a = parser.add_argument
    a("--preset", choices=sorted(PRESETS),
      help="bundle of settings: 'course' (five layers of 100, the course's baseline), "
           "'best' (the CIFAR-10 recipe, about 10 minutes on 2 cores) or 'fast' (the "
           "same recipe in about 2 minutes); options given explicitly win")
    a("--dataset", choices=DATASETS,
      help="digits (embedded, the default), cifar10, or diabetes (embedded regression "
           "data: 442 patients, 10 features, one real-valued target)")
    a("--loss", choices=LOSSES,
      help="softmax (cross-entropy) or svm (hinge) for the classification data sets, mse "
           "(half squared error) for regression (default: softmax, or mse for diabetes)")
    a("--label-smoothing", type=float, metavar="EPS",
      help="softmax loss against (1 - EPS) * one-hot + EPS / classes, EPS in [0, 1) "
           "(default 0: the plain cross-entropy)")
    a("--data", metavar="DIR", help="CIFAR-10 directory (default: $FASTFC_DATA)")
    _option(a, "hidden_dims", type=str, metavar="H1,H2,...",
            help=f"widths of the hidden layers, comma-separated, e.g. 512,256 (default "
                 f"{','.join(map(str, DEFAULTS['hidden_dims']))})")
    a("--activation", choices=ACTIVATIONS,
      help=f"nonlinearity after each hidden layer (default {DEFAULTS['activation']})")
    a("--normalization", choices=NORMALIZATIONS,
      help="normalise each hidden layer before its nonlinearity (default none)")
    _option(a, "dropout_keep_ratio", type=float, metavar="P",
            help=f"chance that a hidden unit is kept, in (0, 1] (default "
                 f"{DEFAULTS['dropout_keep_ratio']:g}: no dropout)")
    a("--reg", type=float, help=f"L2 strength, 0.5 * reg * sum W^2 (default {DEFAULTS['reg']:g})")
    a("--weight-scale", type=float,
      help="std of the initial weights (default: --init's scaling)")
    a("--init", choices=INITS,
      help="initial weight scaling by fan-in (default: xavier for sigmoid and tanh, he "
           "otherwise); not with --weight-scale")
    a("--update-rule", choices=UPDATE_RULES,
      help=f"optimiser (default {DEFAULTS['update_rule']})")
    _option(a, "learning_rate", type=float, metavar="LR",
            help=f"step size of the update rule (default {DEFAULTS['learning_rate']:g})")
    a("--lr-decay", type=float,
      help="multiply the learning rate by this after every epoch (default 1: constant)")
    a("--schedule", choices=["none", "cosine"],
      help="cosine: decay the learning rate to zero along a half cosine (default none)")
    a("--warmup", type=float, metavar="FRACTION",
      help="with the cosine schedule: raise the learning rate linearly from 0 over this "
           "fraction of training first, in [0, 1) (default 0)")
    a("--weight-decay", type=float, metavar="WD",
      help="decoupled weight decay of the adamw rule, w *= 1 - lr * WD at every step "
           "(default: the rule's 0.01)")
    a("--ema-decay", type=float, metavar="D",
      help="validate, test and keep an exponential moving average of the weights, "
           "avg = D * avg + (1 - D) * w, D in (0, 1) (default: none)")
    a("--ema-every", type=int, metavar="K",
      help="update the average every K steps, with D**K (default 1)")
    a("--time-budget", type=float, metavar="SECONDS",
      help="train for this many seconds (the cosine reaches zero exactly then)")
    _option(a, "num_epochs", type=int, metavar="N",
            help=f"passes over the training set (default {DEFAULTS['num_epochs']}); with "
                 "--resume, extend the run to this many epochs")
    a("--batch-size", type=int, help=f"minibatch size (default {DEFAULTS['batch_size']})")
    a("--shuffle", action="store_const", const=True,
      help="sample each epoch without replacement (default: with replacement, as the course)")
    a("--augment", metavar="SPEC",
      help="on-the-fly augmentation, e.g. flip,translate=2 (flip only for data sets whose "
           "classes survive a mirror image: not digits)")
    a("--preprocess", choices=PREPROCESSING,
      help="input scaling, statistics from the training split: 'standardize' (default: "
           "per channel, minus the mean, divided by the standard deviation), 'mean' "
           "(subtract the mean image only, as the course), 'none' (raw pixel values), "
           "'zca' (standardize, then ZCA whitening)")
    a("--zca-epsilon", type=float, metavar="EPS",
      help="with --preprocess zca: added to the covariance's eigenvalues (in units of a "
           "standardised pixel's variance) before whitening; larger keeps more of the "
           "image's smooth structure (default 0.1)")
    a("--tta", choices=["none", "flip"],
      help="test-time augmentation of the final accuracies: 'flip' averages the class "
           "probabilities of each image and its mirror image (default none)")
    a("--standardize", dest="preprocess", action="store_const", const="standardize",
      help="same as --preprocess standardize (the default)")
    a("--no-standardize", dest="preprocess", action="store_const", const="mean",
      help="same as --preprocess mean")
    a("--num-test", type=int,
      help="test images to evaluate, from 1 to the number available (digits 270, cifar10 "
           "10000; default: all)")
    a("--dtype", choices=["float32", "float64"], help="floating type of the net (default float32)")
    a("--threads", type=int,
      help=f"BLAS threads for this run, 1 to the CPU count ({os.cpu_count() or 1} here)")
    a("--gemm", choices=["auto", "openblas", "mkl", "openblas-private"],
      help="GEMM backend of this run (default: FASTFC_GEMM, else openblas)")
    a("--compute-dtype", choices=["float32", "bfloat16"],
      help="dtype of the GEMMs of a float32 run: bfloat16 needs AVX512-BF16 or MKL "
           "(weights stay float32)")
    a("--seed", type=int, help="seed of initialisation, minibatches and dropout (default 0)")
    a("--print-every", type=int,
      help="print the loss every this many iterations (default: once per epoch)")
    a("--checkpoint-every", type=int, metavar="EPOCHS",
      help="write RUN/solver.npz every this many epochs (default 1), and at the end")
    a("--out", metavar="DIR",
      help="run directory; it must not exist or be empty (default: a new "
           "runs/<dataset>-<time>)")
    a("--resume", metavar="RUN",
      help="continue the run in the directory RUN from its solver.npz, with its "
           "config.json (only --num-epochs, --data and --threads may change)")
    a("--no-progress", action="store_true", help="no progress bar")
    a("--quiet", action="store_true", help="print only the final summary")


# ------------------------------------------------------------------ settings

def resolve_settings(args: argparse.Namespace) -> dict[str, Any]:
    """Settings from DEFAULTS, then the preset, then the options given; checked."""
    preset = args.preset or "default"
    settings = dict(DEFAULTS)
    settings.update(PRESETS[preset])
    given = {k: v for k, v in vars(args).items() if v is not None and k in DEFAULTS}
    if "hidden_dims" in given:
        given["hidden_dims"] = _int_list(given["hidden_dims"])
    settings.update(given)
    settings["preset"] = preset
    if settings["normalization"] == "none":
        settings["normalization"] = None
    if settings["schedule"] == "none":
        settings["schedule"] = None
    if settings["time_budget"] is not None and settings["schedule"] is None \
            and "schedule" not in given and "time_budget" in given:
        settings["schedule"] = "cosine"
    if settings["weight_scale"] is not None and "init" not in given:
        settings["init"] = None
    if settings["update_rule"] != "adamw" and "weight_decay" not in given:
        settings["weight_decay"] = None     # a preset's adamw decay, with another rule
    if settings["loss"] is None:
        settings["loss"] = "mse" if settings["dataset"] in REGRESSION_DATASETS else "softmax"
    validate_settings(settings)
    return settings


def _upgrade(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Settings (config.json, a model's metadata) of an earlier fastfc in today's keys:
    the CLI's former names (OLD_KEYS) become the API's, and the 'standardize' flag
    becomes 'preprocess'.  An old key whose new one is also present is left alone (and
    then refused as unknown)."""
    settings = dict(settings)
    for old, new in OLD_KEYS.items():
        if old in settings and new not in settings:
            settings[new] = settings.pop(old)
    if "preprocess" not in settings and "standardize" in settings:
        settings["preprocess"] = "standardize" if settings["standardize"] else "mean"
    settings.pop("standardize", None)
    # runs written before a setting existed trained without it
    for key, value in ADDED_SETTINGS.items():
        settings.setdefault(key, value)
    return settings


def validate_settings(settings: Any, source: Optional[str] = None,
                      given: Collection[str] = ()) -> dict[str, Any]:
    """Check every setting; raise BadOption naming the option (or the file and key).

    ``source`` is None for the command line, else the path of the config.json the
    settings were read from, with the keys in ``given`` set on the command line
    (--resume's --num-epochs, --data, --threads).  The same checks serve both.
    """
    def where(key: str) -> str:
        if source is None or key in given:
            return _flag(key)
        return f"{source}: {key!r} (the {_flag(key)} option)"

    def fail(key: str, expected: str) -> NoReturn:
        raise BadOption(f"{where(key)} must be {expected}, got {settings[key]!r}")

    if source is not None:
        if not isinstance(settings, dict):
            raise BadOption(f"{source} must hold a JSON object of settings, got "
                            f"{type(settings).__name__}")
        missing = [k for k in DEFAULTS if k not in settings]
        if missing:
            raise BadOption(f"{source} lacks the key{'s' if len(missing) > 1 else ''} "
                            f"{', '.join(map(repr, missing))}; it was not written by "
                            "'fastfc train' of this version, or was edited")
        unknown = [k for k in settings if k not in DEFAULTS and k != "preset"]
        if unknown:
            raise BadOption(f"{source} has unknown key{'s' if len(unknown) > 1 else ''} "
                            f"{', '.join(map(repr, unknown))}")

    def is_int(v: object) -> TypeGuard[int]:
        return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))

    def is_real(v: object) -> TypeGuard[float]:
        return is_int(v) or (isinstance(v, (float, np.floating)) and math.isfinite(v))

    def integer(key: str, low: int, high: Optional[int] = None, optional: bool = False) -> None:
        v = settings[key]
        if v is None and optional:
            return
        bounds = f">= {low}" if high is None else f"between {low} and {high}"
        if not is_int(v) or v < low or (high is not None and v > high):
            fail(key, f"an integer {bounds}")

    def real(key: str, low: float, low_open: bool = False, high: Optional[float] = None,
             optional: bool = False) -> None:
        v = settings[key]
        if v is None and optional:
            return
        ok = is_real(v) and (v > low if low_open else v >= low) and (high is None or v <= high)
        if not ok:
            bound = f"> {low:g}" if low_open else f">= {low:g}"
            if high is not None:
                bound = f"in {'(' if low_open else '['}{low:g}, {high:g}]"
            fail(key, f"a finite number {bound}")

    def choice(key: str, options: Iterable[Any]) -> None:
        if settings[key] not in options:
            fail(key, "one of " + ", ".join("none" if o is None else str(o) for o in options))

    if source is not None:
        # what the command line's parser guarantees, checked here for config files
        choice("dataset", DATASETS)
        choice("activation", ACTIVATIONS)
        choice("normalization", tuple(_registry.NORMALIZATIONS))
        choice("init", (None, *INITS))
        choice("update_rule", UPDATE_RULES)
        choice("schedule", (None, "cosine"))
        choice("preprocess", PREPROCESSING)
        choice("tta", ("none", "flip"))
        choice("dtype", ("float32", "float64"))
        choice("loss", LOSSES)
        if "preset" in settings and settings["preset"] not in PRESETS:
            fail("preset", "one of " + ", ".join(sorted(PRESETS)))
        for key in ("data", "augment"):
            if settings[key] is not None and not isinstance(settings[key], str):
                fail(key, "a string or null")
        if not isinstance(settings["shuffle"], bool):
            fail("shuffle", "true or false")
        hidden = settings["hidden_dims"]
        if not isinstance(hidden, list) or not all(is_int(h) and h >= 1 for h in hidden):
            fail("hidden_dims", "a list of positive integers")

    integer("num_epochs", 1)
    integer("batch_size", 1)
    integer("checkpoint_every", 1)
    integer("seed", 0, _SEED_MAX)
    integer("print_every", 1, optional=True)
    integer("num_test", 1, TEST_IMAGES[settings["dataset"]], optional=True)
    integer("threads", 1, os.cpu_count() or 1, optional=True)
    real("learning_rate", 0.0, low_open=True)
    real("reg", 0.0)
    real("dropout_keep_ratio", 0.0, low_open=True, high=1.0)
    real("weight_scale", 0.0, low_open=True, optional=True)
    real("lr_decay", 0.0, low_open=True)
    real("time_budget", 0.0, low_open=True, optional=True)
    real("label_smoothing", 0.0, high=1.0)
    real("zca_epsilon", 0.0, low_open=True)
    real("weight_decay", 0.0, optional=True)
    real("warmup", 0.0, high=1.0)
    real("ema_decay", 0.0, low_open=True, high=1.0, optional=True)
    integer("ema_every", 1)
    if settings["warmup"] >= 1.0:
        fail("warmup", "a finite number in [0, 1)")
    if settings["warmup"] and settings["schedule"] != "cosine":
        raise BadOption(f"{where('warmup')} needs the cosine schedule (--schedule cosine "
                        "or --time-budget)")
    if settings["ema_decay"] is not None and settings["ema_decay"] >= 1.0:
        fail("ema_decay", "a finite number in (0, 1)")
    if settings["weight_decay"] is not None and settings["update_rule"] != "adamw":
        raise BadOption(f"{where('weight_decay')} is the decoupled decay of the adamw rule; "
                        f"with {settings['update_rule']} use --reg (an L2 term of the loss)")
    if settings["label_smoothing"] >= 1.0:
        fail("label_smoothing", "a finite number in [0, 1)")
    if settings["label_smoothing"] and settings["loss"] != "softmax":
        raise BadOption(f"{where('label_smoothing')} applies to the softmax loss only, "
                        f"not to {settings['loss']}")
    if settings["weight_scale"] is not None and settings["init"] is not None:
        raise BadOption(f"{where('weight_scale')} and {where('init')} both set the initial "
                        "weights; give one of them")
    regression = settings["dataset"] in REGRESSION_DATASETS
    if regression != (settings["loss"] == "mse"):
        raise BadOption(f"{where('loss')} {settings['loss']} does not fit the data set "
                        f"{settings['dataset']}: use mse for "
                        f"{', '.join(REGRESSION_DATASETS)} (real-valued targets) and "
                        f"{' or '.join(CLASSIFICATION_LOSSES)} for "
                        f"{', '.join(d for d in DATASETS if d not in REGRESSION_DATASETS)} "
                        "(class labels)")
    if regression and settings["preprocess"] in ("mean", "zca"):
        raise BadOption(f"{where('preprocess')} {settings['preprocess']} is for images; the "
                        f"{settings['dataset']} data take standardize (features and target) "
                        "or none")
    if settings["tta"] == "flip" and (regression or settings["dataset"] in NOT_MIRROR_SYMMETRIC):
        why = (NOT_MIRROR_SYMMETRIC.get(settings["dataset"])
               or f"the {settings['dataset']} data are not images")
        raise BadOption(f"{where('tta')} flip is refused for {settings['dataset']}: {why}")
    if settings["schedule"] == "cosine" and settings["lr_decay"] != 1:
        raise BadOption(f"{where('lr_decay')} must stay 1 with the cosine schedule, which "
                        f"replaces it; got {settings['lr_decay']!r}")
    _check_augment(settings, where("augment"))
    return settings


def _check_augment(settings: Mapping[str, Any], name: str) -> None:
    from fastfc.augment import parse_augment

    spec = settings["augment"]
    dataset = settings["dataset"]
    if dataset in REGRESSION_DATASETS:
        if spec is not None:
            raise BadOption(f"{name} {spec!r}: augmentation flips and shifts images; the "
                            f"{dataset} data are not images")
        return
    try:
        # an image data set here: its shape is (C, H, W)
        augmenter = parse_augment(spec, IMAGE_SHAPES[dataset])  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        text = re.sub(r"^augment: ", "", str(exc))
        raise BadOption(f"{name} {spec!r}: {text}") from None
    if augmenter is not None and augmenter.flip and dataset in NOT_MIRROR_SYMMETRIC:
        raise BadOption(f"{name} {spec!r}: flip is refused for {dataset}: "
                        f"{NOT_MIRROR_SYMMETRIC[dataset]}; use translate=K alone")


#: Python spellings in library messages -> the option a CLI user types
_PYTHON_NAMES = (
    (r"cifar10_dir=\.\.\.", "--data DIR"),
    (r"\bcifar10_dir\b", "--data"),
    (r"(?:optim_)?config\[['\"]learning_rate['\"]\]", "--learning-rate"),
    (r"\blearning_rate\b", "--learning-rate"),
    (r"\bdropout_keep_ratio\b", "--dropout-keep-ratio"),
    (r"\bweight_scale\b", "--weight-scale"),
    (r"\bbatch_size\b", "--batch-size"),
    (r"\bnum_epochs\b", "--num-epochs"),
    (r"\btime_budget\b", "--time-budget"),
    (r"\blr_decay\b", "--lr-decay"),
    (r"\bnum_test\b", "--num-test"),
    (r"\bprint_every\b", "--print-every"),
    (r"\bcheckpoint_every\b", "--checkpoint-every"),
    (r"\bupdate_rule\b", "--update-rule"),
    (r"\bschedule='cosine'", "--schedule cosine"),
)


def _in_flags(message: str) -> str:
    """A library error message with its Python argument names replaced by the options."""
    for pattern, flag in _PYTHON_NAMES:
        message = re.sub(r"(?<![-\w])" + pattern, flag, message)
    return message


# ------------------------------------------------------------------ data

def _standardize(data: dict[str, Any], shape: tuple[int, ...]) -> dict[str, Any]:
    """Per-channel standardisation of every split with the training split's statistics."""
    C = shape[0]
    X = data["X_train"].reshape(len(data["X_train"]), C, -1)
    mean = X.mean(axis=(0, 2), dtype=np.float64)
    std = X.std(axis=(0, 2), dtype=np.float64)
    std[std == 0] = 1.0
    for split in ("train", "val", "test"):
        x = data[f"X_{split}"]
        x3 = x.reshape(len(x), C, -1)
        data[f"X_{split}"] = ((x3 - mean[:, None]) / std[:, None]).reshape(x.shape)
    return data


def load_data(settings: Mapping[str, Any]) -> tuple[dict[str, Any], tuple[int, ...]]:
    """The data dict (six keys) and the image shape (C, H, W) of one sample."""
    from fastfc import data_utils

    dtype = np.dtype(settings["dtype"]).type
    preprocess = settings["preprocess"]
    shape = IMAGE_SHAPES[settings["dataset"]]
    if settings["dataset"] in REGRESSION_DATASETS:
        data = data_utils.load_regression_data(dtype=dtype,
                                               standardize=preprocess == "standardize")
        if settings["num_test"] is not None:
            data["X_test"] = data["X_test"][:settings["num_test"]]
            data["y_test"] = data["y_test"][:settings["num_test"]]
        return data, shape
    if settings["dataset"] == "digits":
        if preprocess in ("standardize", "zca"):
            data = data_utils.load_default_data(dtype=np.float64, scale=False,
                                                subtract_mean=False)
            data = _standardize(data, shape)
            if preprocess == "zca":
                zca = data_utils.ZCAWhitening(epsilon=settings["zca_epsilon"])
                zca.fit(data["X_train"])
                for split in ("train", "val", "test"):
                    data[f"X_{split}"] = zca.transform(data[f"X_{split}"])
            for split in ("train", "val", "test"):
                data[f"X_{split}"] = data[f"X_{split}"].astype(dtype)
        else:
            raw = preprocess == "none"
            data = data_utils.load_default_data(dtype=dtype, scale=not raw,
                                                subtract_mean=not raw)
        if settings["num_test"] is not None:
            data["X_test"] = data["X_test"][:settings["num_test"]]
            data["y_test"] = data["y_test"][:settings["num_test"]]
        return data, shape
    num_test = settings["num_test"] or TEST_IMAGES["cifar10"]
    data = data_utils.get_CIFAR10_data(
        num_test=num_test, cifar10_dir=settings["data"], dtype=dtype,
        standardize=preprocess in ("standardize", "zca"), subtract_mean=preprocess == "mean",
        whiten="zca" if preprocess == "zca" else None, zca_epsilon=settings["zca_epsilon"])
    return data, shape


def _load_data_checked(settings: Mapping[str, Any]
                       ) -> tuple[dict[str, Any], tuple[int, ...]]:
    """load_data with its errors phrased for the command line."""
    from fastfc.data_utils import DataError, DataNotFoundError

    try:
        return load_data(settings)
    except DataNotFoundError as exc:
        raise BadOption(_in_flags(str(exc))) from None
    except DataError as exc:
        raise RuntimeError(_in_flags(str(exc))) from None


# ------------------------------------------------------------------ train

def _build_net(settings: Mapping[str, Any], data: Mapping[str, Any]) -> Net:
    from fastfc import Net

    n_features = int(np.prod(data["X_train"].shape[1:]))
    if settings["loss"] == "mse":
        n_classes = int(np.prod(data["y_train"].shape[1:]))    # outputs of a regression
    else:
        n_classes = int(max(data["y_train"].max(), data["y_val"].max())) + 1
    dims = [n_features] + list(settings["hidden_dims"]) + [n_classes]
    return Net(dims, activation=settings["activation"],
               dropout_keep_ratio=settings["dropout_keep_ratio"],
               normalization=settings["normalization"], reg=settings["reg"],
               weight_scale=settings["weight_scale"], init=settings["init"],
               dtype=np.dtype(settings["dtype"]).type, seed=settings["seed"],
               loss=settings["loss"], label_smoothing=settings["label_smoothing"])


def _build_solver(settings: Mapping[str, Any], net: Net, data: Mapping[str, Any],
                  image_shape: tuple[int, ...], checkpoint: Optional[str], progress: Any,
                  verbose: bool) -> Solver:
    from fastfc import Solver
    from fastfc.augment import parse_augment

    iterations = max(len(data["X_train"]) // settings["batch_size"], 1)
    optim_config = {"learning_rate": settings["learning_rate"]}
    if settings["weight_decay"] is not None:
        optim_config["weight_decay"] = settings["weight_decay"]
    return Solver(
        net, data, update_rule=settings["update_rule"], optim_config=optim_config,
        warmup=settings["warmup"], ema_decay=settings["ema_decay"],
        ema_every=settings["ema_every"],
        lr_decay=settings["lr_decay"], batch_size=settings["batch_size"],
        num_epochs=settings["num_epochs"],
        print_every=settings["print_every"] or iterations, verbose=verbose,
        progress=progress, schedule=settings["schedule"],
        time_budget=settings["time_budget"], shuffle=settings["shuffle"],
        # (augment is set for image data sets only, whose shape is (C, H, W))
        augment=parse_augment(settings["augment"],
                              image_shape, seed=settings["seed"]),  # type: ignore[arg-type]
        checkpoint_path=checkpoint, checkpoint_every=settings["checkpoint_every"],
        on_divergence=FRONTEND_ON_DIVERGENCE, restore_norm_stats=True)


def _accuracy(net: Net, X: Any, y: Any, batch_size: int = 1000,
              settings: Optional[Mapping[str, Any]] = None) -> Optional[float]:
    """Accuracy of a classifier, or R^2 (clipped at 0, as the Solver's) of a regression
    net, on (X, y); with ``settings['tta'] == 'flip'``, of the predictions averaged over
    each image and its mirror image."""
    if not len(y):
        return None
    if net.loss_name == "mse":
        from fastfc.solver import _r2_score
        return _r2_score(y, net.predict(X, batch_size=batch_size))
    if settings is not None and settings.get("tta", "none") == "flip":
        from fastfc.augment import predict_flip_average
        shape = IMAGE_SHAPES[settings["dataset"]]
        predicted = predict_flip_average(net, X, shape, batch_size)  # type: ignore[arg-type]
        return float(np.mean(predicted == y))
    return float(np.mean(net.predict(X, batch_size=batch_size) == y))


def _versions() -> dict[str, str]:
    import scipy

    out = {"fastfc": __version__, "numpy": np.__version__, "scipy": scipy.__version__,
           "python": platform.python_version(), "machine": platform.machine()}
    try:
        from threadpoolctl import threadpool_info
        out["blas"] = [{k: i.get(k) for k in ("internal_api", "version", "architecture",
                                               "num_threads")}
                       for i in threadpool_info() if i.get("user_api") == "blas"]
    except Exception:  # pragma: no cover - informative only
        pass
    return out


def _json_safe(obj: Any) -> Any:
    """obj with NaN and infinities as None (JSON has no spelling for them) and NumPy
    scalars as Python numbers."""
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _write_json(path: str, obj: Any) -> None:
    from fastfc.checkpoint import atomic_write

    text = json.dumps(_json_safe(obj), indent=2, allow_nan=False).encode("utf-8")
    atomic_write(path, lambda f: f.write(text))


def _gemm_options(args: argparse.Namespace) -> None:
    """--gemm and --compute-dtype: settings of this process only (not of the run)."""
    from fastfc import _gemm
    try:
        if getattr(args, "gemm", None):
            _gemm.set_gemm_backend(args.gemm)
        if getattr(args, "compute_dtype", None):
            _gemm.set_compute_dtype(args.compute_dtype)
    except (ImportError, RuntimeError) as exc:
        raise BadOption(str(exc)) from None


def _threads(settings: Mapping[str, Any]) -> ContextManager[Any]:
    """The threads of a training run.

    The command owns its process, so with fastfc's pool on (the default) it trains in
    the fastest set-up, which a library call only gets when asked for: SciPy's OpenBLAS
    limited to one thread while the command runs and fastfc's pool sized to ``--threads``
    (default: the threads OpenBLAS had), so each step splits its GEMMs over the pool.
    With ``FASTFC_THREADING=blas`` OpenBLAS keeps the threading (``--threads`` limits it).
    """
    from fastfc import _threads as T
    n = settings["threads"]
    if T.threading_info()["mode"] == "pool":
        return T.threads(n if n is not None else T.get_num_threads(), blas_threads=1)
    if n is None:
        return nullcontext()
    from threadpoolctl import threadpool_limits
    return threadpool_limits(n)


def _say(args: argparse.Namespace, msg: str) -> None:
    if not args.quiet:
        print(msg, flush=True)


@contextlib.contextmanager
def _one_line_warnings(skip: Callable[[type[Warning]], bool] = lambda category: False
                       ) -> Iterator[None]:
    """Show warnings as one 'fastfc: warning: ...' line on stderr (no source line);
    a warning for which ``skip(category)`` is true is not shown."""
    def show(message: Warning | str, category: type[Warning], filename: str, lineno: int,
             file: Any = None, line: Optional[str] = None) -> None:
        if skip(category):
            return
        text = " ".join(str(message).split())
        print(f"fastfc: warning: {_in_flags(text)}", file=sys.stderr, flush=True)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


def _make_run_dir(settings: Mapping[str, Any], out: Optional[str]) -> tuple[str, bool]:
    """Create the run directory atomically under a name no other run holds; returns
    (path, created).  --out DIR must not exist or be empty."""
    if out is not None:
        if os.path.lexists(out) and not os.path.isdir(out):
            raise BadOption(f"--out {out}: exists and is not a directory")
        created = False
        if not os.path.isdir(out):
            parent = os.path.dirname(os.path.abspath(out))
            os.makedirs(parent, exist_ok=True)
            try:
                os.mkdir(out)
                created = True
            except FileExistsError:
                pass
        if not created and os.listdir(out):
            raise BadOption(f"--out {out}: the directory exists and is not empty; give a new "
                            f"directory, or continue the run in it with --resume {out}")
        return out, created
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = os.path.join("runs", f"{settings['dataset']}-{stamp}")
    os.makedirs("runs", exist_ok=True)
    for n in range(1, 10000):
        path = base if n == 1 else f"{base}-{n}"
        try:
            os.mkdir(path)
            return path, True
        except FileExistsError:
            continue
    raise RuntimeError(f"could not create a new run directory {base}-N")  # pragma: no cover


def _claim(run_dir: str) -> str:
    """Create RUN/config.json exclusively, so that two runs never share a directory."""
    path = os.path.join(run_dir, "config.json")
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    except FileExistsError:
        raise BadOption(f"--out {run_dir}: another run has just started in this "
                        "directory; give a new one") from None
    return path


def _discard_run_dir(run_dir: str, created: Optional[bool]) -> None:
    """After a failure before any checkpoint: remove what this run wrote (config.json)
    and the directory if this run created it.  Nothing else is touched."""
    try:
        names = set(os.listdir(run_dir))
        if names - {"config.json"}:
            return
        if "config.json" in names:
            os.unlink(os.path.join(run_dir, "config.json"))
        if created:
            os.rmdir(run_dir)
    except OSError:
        pass


def _read_config(run_dir: str, overrides: Optional[Mapping[str, Any]] = None
                 ) -> tuple[dict[str, Any], str]:
    """The checked settings in RUN/config.json, with ``overrides`` (from the command
    line) applied first."""
    if not os.path.isdir(run_dir):
        raise BadOption(f"--resume {run_dir}: no such directory")
    path = os.path.join(run_dir, "config.json")
    if not os.path.isfile(path):
        raise BadOption(f"--resume {run_dir}: no config.json there (not a run directory "
                        "of 'fastfc train')")
    try:
        with open(path, encoding="utf-8") as f:
            settings = json.load(f)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise BadOption(f"{path}: not readable as JSON ({' '.join(str(exc).split())})") \
            from None
    if not isinstance(settings, dict):
        raise BadOption(f"{path} must hold a JSON object of settings, got "
                        f"{type(settings).__name__}")
    settings = _upgrade(settings)
    settings.setdefault("preset", "default")
    overrides = overrides or {}
    settings.update(overrides)
    return validate_settings(settings, source=path, given=set(overrides)), path


def _resume_settings(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    """Settings of the run to continue: its config.json plus --num-epochs, --data and
    --threads."""
    extra = [_flag(k) for k, v in vars(args).items()
             if v is not None and (k in DEFAULTS or k in ("preset", "out"))
             and k not in RESUME_OPTIONS]
    if extra:
        raise BadOption(f"--resume continues a run with the settings in its config.json; "
                        f"{', '.join(sorted(set(extra)))} cannot change them (only "
                        f"{', '.join(_flag(k) for k in RESUME_OPTIONS)} may be given)")
    overrides = {k: getattr(args, k) for k in RESUME_OPTIONS if getattr(args, k) is not None}
    return _read_config(args.resume, overrides)


def _checkpoint_iteration(path: str) -> Optional[int]:
    """The iteration a solver checkpoint continues from (its header), or None."""
    from fastfc.checkpoint import HEADER_KEY

    try:
        with np.load(path, allow_pickle=False) as z:
            return int(json.loads(bytes(z[HEADER_KEY]).decode("utf-8"))["next_iteration"])
    except Exception:
        return None


def cmd_train(args: argparse.Namespace) -> int:
    """Train a net; writes the run directory; prints the final accuracies."""
    t_start = time.perf_counter()
    solver: Optional[Solver] = None
    run_dir: Optional[str]
    created: Optional[bool]
    config_path: Optional[str]
    # the Solver's own "interrupted" warning is replaced by the one line printed below
    with _one_line_warnings(skip=lambda c: solver is not None and solver.interrupted
                            and issubclass(c, RuntimeWarning)):
        if args.resume:
            settings, config_path = _resume_settings(args)
            run_dir, created = args.resume, False
        else:
            settings = resolve_settings(args)
            config_path = run_dir = created = None

        _gemm_options(args)
        with _threads(settings):
            # everything is checked and loaded before the run directory exists
            t0 = time.perf_counter()
            data, image_shape = _load_data_checked(settings)
            t_load = time.perf_counter() - t0
            try:
                np.random.seed(settings["seed"])
                net = _build_net(settings, data)
            except (TypeError, ValueError) as exc:
                raise BadOption(_in_flags(str(exc))) from None
            progress = None if not args.no_progress and not args.quiet else False
            if run_dir is None:
                run_dir, created = _make_run_dir(settings, args.out)
            checkpoint = os.path.join(run_dir, "solver.npz")
            trained = False
            try:
                try:
                    solver = _build_solver(settings, net, data, image_shape, checkpoint,
                                           progress, verbose=not args.quiet)
                except (TypeError, ValueError) as exc:
                    raise BadOption(_in_flags(str(exc))) from None
                if args.resume:
                    _resume_solver(args, settings, solver, run_dir, checkpoint,
                                   config_path)  # type: ignore[arg-type]  # set by --resume
                else:
                    config_path = _claim(run_dir)
                    _write_json(config_path, settings)
                unit = "samples" if settings["loss"] == "mse" else "images"
                _say(args, f"data: {settings['dataset']}, {len(data['y_train'])} train / "
                           f"{len(data['y_val'])} val / {len(data['y_test'])} test {unit}, "
                           f"{_PREPROCESS_WORDS[settings['preprocess']]}, loaded in "
                           f"{t_load:.2f} s")
                _say(args, f"model: {net!r}")
                _say(args, describe_rule(settings["update_rule"], settings["learning_rate"]))
                done_before = len(solver.loss_history)
                t0 = time.perf_counter()
                solver.train()
                t_train = time.perf_counter() - t0
                trained = True
            finally:
                if not trained and not args.resume:
                    _discard_run_dir(run_dir, created)

            if solver.interrupted:
                saved_at = _checkpoint_iteration(checkpoint)
                n = len(solver.loss_history)
                if saved_at is None:
                    where = "no checkpoint was written yet, so the run cannot be resumed"
                elif saved_at == n:
                    where = (f"state saved to {checkpoint} - continue with: "
                             f"fastfc train --resume {run_dir}")
                else:
                    where = (f"{checkpoint} holds iteration {saved_at} - continue from "
                             f"there with: fastfc train --resume {run_dir}")
                print(f"fastfc: interrupted at iteration {n}; {where}", file=sys.stderr,
                      flush=True)
            elif len(solver.loss_history) == done_before:
                print(f"nothing left to train: {run_dir} has done {solver.epoch} of "
                      f"{settings['num_epochs']} epochs (give --num-epochs N to extend "
                      "it); "
                      "nothing was written")
                return 0
            elif _checkpoint_iteration(checkpoint) != len(solver.loss_history):
                # the run ended between epoch checkpoints (a time budget): keep its end
                solver.save(checkpoint)

            t0 = time.perf_counter()
            accuracies = {
                "train": _accuracy(net, data["X_train"][:10000], data["y_train"][:10000],
                                   settings=settings),
                "val": _accuracy(net, data["X_val"], data["y_val"], settings=settings),
                "test": _accuracy(net, data["X_test"], data["y_test"], settings=settings),
            }
            t_eval = time.perf_counter() - t0

        model_path = net.save(os.path.join(run_dir, "model.npz"), settings=settings,
                              test_accuracy=accuracies["test"])
        pictures = {}
        try:
            from fastfc.vis_utils import plot_history, show_net_weights
            pictures["history"] = plot_history(solver, os.path.join(run_dir, "history.png"))
            if len(image_shape) == 3:      # first-layer weights as images
                pictures["weights"] = show_net_weights(
                    net, os.path.join(run_dir, "weights.png"), image_shape=image_shape)
        except ImportError as exc:
            _say(args, f"pictures skipped: {exc}")
        t_total = time.perf_counter() - t_start
        metrics = {
            "dataset": settings["dataset"],
            # for a regression run (loss mse) the "accuracies" are R^2, clipped at 0
            "metric": "r2" if settings["loss"] == "mse" else "accuracy",
            "final_accuracy": accuracies,
            "train_accuracy_samples": int(min(10000, len(data["y_train"]))),
            "test_images": int(len(data["y_test"])),
            "val_images": int(len(data["y_val"])),
            "best_val_acc": float(solver.best_val_acc),
            "epochs": int(solver.epoch),
            "iterations": len(solver.loss_history),
            "stopped_early": bool(solver.stopped_early),
            "interrupted": bool(solver.interrupted),
            "timings": {"load_s": t_load, "train_s": t_train, "eval_s": t_eval,
                        "total_s": t_total},
            "history": {"loss": [float(v) for v in solver.loss_history],
                        "train_acc": [float(v) for v in solver.train_acc_history],
                        "val_acc": [float(v) for v in solver.val_acc_history]},
            "config": settings,
            "versions": _versions(),
            "files": {"model": model_path, **pictures},
        }
        _write_json(os.path.join(run_dir, "metrics.json"), metrics)

    def fmt(v: Optional[float]) -> str:
        return "n/a" if v is None else f"{v:.4f}"

    # a regression run's "accuracy" is R^2 (clipped at 0)
    word, unit = ("R2", "samples") if settings["loss"] == "mse" else ("acc", "images")
    print(f"train {word} {fmt(accuracies['train'])}  val {word} {fmt(accuracies['val'])}  "
          f"test {word} {fmt(accuracies['test'])} ({len(data['y_test'])} {unit})  "
          f"epochs {solver.epoch}  wall {t_total:.1f} s  -> {run_dir}")
    return 130 if solver.interrupted else 0


_PREPROCESS_WORDS = {"standardize": "standardised per channel",
                     "zca": "standardised per channel, then ZCA-whitened",
                     "mean": "mean image subtracted", "none": "raw pixel values"}


def _resume_solver(args: argparse.Namespace, settings: Mapping[str, Any], solver: Solver,
                   run_dir: str, checkpoint: str, config_path: str) -> None:
    """Load RUN/solver.npz into the solver; with --num-epochs, extend (never shorten) the
    run."""
    if not os.path.exists(checkpoint):
        raise BadOption(f"--resume {run_dir}: no solver.npz there yet (the run stopped "
                        "before its first checkpoint); start it again instead")
    solver.resume(checkpoint)
    epochs = args.num_epochs
    if epochs is not None:
        done = solver.epoch
        if epochs < done:
            raise BadOption(f"--num-epochs {epochs}: the run in {run_dir} has already done "
                            f"{done} epochs; give --num-epochs {done} or more to continue it")
        with open(config_path, encoding="utf-8") as f:
            before = _upgrade(json.load(f)).get("num_epochs")
        if epochs != before and settings["schedule"] == "cosine" \
                and settings["time_budget"] is None:
            raise BadOption(f"--num-epochs {epochs}: the run in {run_dir} follows a cosine "
                            f"schedule laid out over {before} epochs; it cannot be extended "
                            "(start a new run)")
    _write_json(config_path, settings)
    _say(args, f"resumed at epoch {solver.epoch} of {settings['num_epochs']} from "
               f"{checkpoint}")


# ------------------------------------------------------------------ evaluate

def evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help="a model file (RUN/model.npz) or a run directory")
    parser.add_argument("--split", choices=["train", "val", "test"], default="test",
                        help="the data split to measure the accuracy on (default test)")
    parser.add_argument("--data", metavar="DIR", help="CIFAR-10 directory (default: as trained)")
    parser.add_argument("--num-test", type=int,
                        help="test images, from 1 to the number available (digits 270, "
                             "cifar10 10000; default: as trained)")


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Accuracy of a saved model on a split of the data set it was trained on."""
    from fastfc import Net

    path = args.checkpoint
    if os.path.isdir(path):
        path = os.path.join(path, "model.npz")
    net = Net.load(path)
    settings = dict(DEFAULTS)
    # models saved before --preprocess existed carry 'standardize' (False: the mean)
    settings["preprocess"] = "mean"
    settings.update(_upgrade(net.metadata.get("settings", {})))
    if args.data:
        settings["data"] = args.data
    if args.num_test is not None:
        settings["num_test"] = args.num_test
    if settings.get("dataset") not in DATASETS:
        raise BadOption(f"{path}: the model was trained on an unknown data set "
                        f"{settings.get('dataset')!r}")
    if args.num_test is not None:
        low, high = 1, TEST_IMAGES[settings["dataset"]]
        if not low <= args.num_test <= high:
            raise BadOption(f"--num-test must be an integer between {low} and {high}, "
                            f"got {args.num_test}")
    data, _ = _load_data_checked(settings)
    X, y = data[f"X_{args.split}"], data[f"y_{args.split}"]
    acc = _accuracy(net, X, y, settings=settings)
    if net.loss_name == "mse":
        mse = float(np.mean(np.sum((net.predict(X) - y) ** 2, axis=1)))
        print(f"{settings['dataset']} {args.split}: R2 {acc:.4f}, mean squared error "
              f"{mse:.4f} on {len(y)} samples")
        return 0
    print(f"{settings['dataset']} {args.split}: accuracy {acc:.4f} on {len(y)} images")
    return 0


# ------------------------------------------------------------------ gradcheck

#: centred-difference step of the check (float64)
GRADCHECK_H = 1e-5


def gradcheck_tolerance(n_layers: int) -> float:
    """Relative tolerance for a net of ``n_layers`` weight layers (float64).

    1e-7 for one layer, ten times more for each further one, at most 1e-5: the
    course's notes expect errors to grow with depth as rounding errors compound.
    """
    return min(1e-5, 1e-7 * 10.0 ** (n_layers - 1))


def gradcheck_arguments(parser: argparse.ArgumentParser) -> None:
    a = parser.add_argument
    a("--hidden-dims", "--hidden", dest="hidden_dims", default="7,5", metavar="H1,H2,...",
      help="widths of the random net's hidden layers, comma-separated (default 7,5)")
    a("--activation", default="relu", choices=ACTIVATIONS,
      help="nonlinearity after each hidden layer (default relu)")
    a("--normalization", default="none", choices=NORMALIZATIONS,
      help="normalise each hidden layer (default none)")
    a("--dropout-keep-ratio", "--dropout-keep", dest="dropout_keep_ratio", type=float,
      default=1.0, metavar="P",
      help="chance that a hidden unit is kept, in (0, 1] (default 1: no dropout)")
    a("--reg", type=float, default=0.1, help="L2 strength (default 0.1)")
    a("--input-dim", type=int, default=6, help="features per sample (default 6)")
    a("--num-classes", "--classes", dest="num_classes", type=int, default=4, metavar="C",
      help="how many classes the net scores, 2 or more (default 4); with --loss mse the "
           "number of outputs")
    a("--loss", default="softmax", choices=LOSSES,
      help="the loss checked: softmax, svm (random labels) or mse (random real targets) "
           "(default softmax)")
    a("--batch-size", "--batch", dest="batch_size", type=int, default=8, metavar="N",
      help="how many random samples the loss is checked on (default 8)")
    a("--seed", type=int, default=0, help="seed of the net and the samples (default 0)")
    parser.description = (
        "Check every parameter's gradient of a small random float64 net against centred "
        f"differences (h = {GRADCHECK_H:g}).  An entry passes when |numeric - analytic| <= "
        "rtol * (|numeric| + |analytic|) + atol, with rtol = 1e-7 for one weight layer, "
        "10x more per further layer, at most 1e-5, and atol = 10 * eps * max(1, |loss|) "
        "/ h, the rounding error of the difference itself (it dominates where a gradient "
        "is tiny, e.g. saturated sigmoid units).")


def cmd_gradcheck(args: argparse.Namespace) -> int:
    """Numerical gradient check of a small random Net; prints a table; exit 1 on a failure."""
    from fastfc import Net
    from fastfc.gradient_check import eval_numerical_gradient, rel_error

    for name, value, low in (("--input-dim", args.input_dim, 1),
                             ("--num-classes", args.num_classes,
                              1 if args.loss == "mse" else 2),
                             ("--batch-size", args.batch_size, 1)):
        if value < low:
            raise BadOption(f"{name} must be an integer >= {low}, got {value}")
    if not 0 < args.dropout_keep_ratio <= 1:
        raise BadOption(f"--dropout-keep-ratio must be in (0, 1], got "
                        f"{args.dropout_keep_ratio}")
    if not (math.isfinite(args.reg) and args.reg >= 0):
        raise BadOption(f"--reg must be a finite number >= 0, got {args.reg}")
    if not 0 <= args.seed <= _SEED_MAX:
        raise BadOption(f"--seed must be an integer between 0 and {_SEED_MAX}, got {args.seed}")
    rng = np.random.default_rng(args.seed)
    dims = [args.input_dim] + _int_list(args.hidden_dims, "--hidden-dims") + [args.num_classes]
    net = Net(dims, activation=args.activation,
              normalization=None if args.normalization == "none" else args.normalization,
              dropout_keep_ratio=args.dropout_keep_ratio, reg=args.reg, seed=args.seed,
              dtype=np.float64, loss=args.loss)
    X = rng.standard_normal((args.batch_size, args.input_dim))
    if args.loss == "mse":
        y = rng.standard_normal((args.batch_size, args.num_classes))
    else:
        y = rng.integers(0, args.num_classes, size=args.batch_size)
    loss, grads = net.loss(X, y)
    grads = {k: np.array(v, copy=True) for k, v in grads.items()}
    rtol = gradcheck_tolerance(len(dims) - 1)
    atol = 10 * np.finfo(np.float64).eps * max(1.0, abs(float(loss))) / GRADCHECK_H
    print(f"gradient check of {net!r} on {args.batch_size} random samples (float64, "
          f"h = {GRADCHECK_H:g}); pass: |numeric - analytic| <= {rtol:.0e} * (|numeric| + "
          f"|analytic|) + {atol:.1e}")
    width = max(len("parameter"), *(len(k) for k in net.params))
    print(f"{'parameter':<{width}}  {'max rel. error':>14}  {'worst / allowed':>15}  verdict")
    failed = []
    for name, param in net.params.items():
        numeric = eval_numerical_gradient(lambda _: float(net.loss(X, y)[0]), param,
                                          verbose=False, h=GRADCHECK_H)
        analytic = grads[name]
        allowed = rtol * (np.abs(numeric) + np.abs(analytic)) + atol
        worst = float(np.max(np.abs(numeric - analytic) / allowed))
        ok = worst <= 1.0
        if not ok:
            failed.append(name)
        print(f"{name:<{width}}  {rel_error(numeric, analytic):>14.3e}  {worst:>15.3f}  "
              f"{'ok' if ok else 'FAILED'}")
    if failed:
        print(f"gradient check FAILED for {', '.join(failed)}")
        return 1
    print("gradient check passed")
    return 0
