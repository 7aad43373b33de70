"""Optuna stays optional: importing fastfc and fastfc.sweep does not import it, and a
sweep without it says how to install it.  (No importorskip here: these run with or
without Optuna.)"""
import os
import subprocess
import sys

import fastfc

SRC = os.path.dirname(os.path.dirname(fastfc.__file__))


def env_with_src(**extra):
    return dict(os.environ, PYTHONPATH=os.pathsep.join(
        [SRC, os.environ.get("PYTHONPATH", "")]), **extra)


def test_importing_fastfc_and_the_sweep_does_not_import_optuna():
    code = ("import sys, fastfc, fastfc.sweep, fastfc.cli\n"
            "from fastfc.sweep import sweep, loguniform\n"
            "loguniform(1e-4, 1e-2)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('optuna', 'cmaes', 'sqlalchemy')))")
    out = subprocess.run([sys.executable, "-c", code], env=env_with_src(),
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_without_optuna_the_sweep_says_how_to_install_it():
    code = ("import sys\nsys.modules['optuna'] = None\n"
            "import numpy as np\nfrom fastfc.sweep import sweep\n"
            "d = {'X_train': np.zeros((4, 2)), 'y_train': np.array([0, 1, 0, 1]),\n"
            "     'X_val': np.zeros((2, 2)), 'y_val': np.array([0, 1])}\n"
            "try:\n    sweep({'reg': [0.0]}, d, n_jobs=1, results=None)\n"
            "except ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], env=env_with_src(),
                         capture_output=True, text=True, check=True).stdout
    assert "pip install 'fastfc[sweep]'" in out and "Optuna" in out
