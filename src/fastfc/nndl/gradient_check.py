"""UCLA's gradient checks are CS231n's: :mod:`fastfc.gradient_check`, re-exported."""
from fastfc import gradient_check as _gc
from fastfc.gradient_check import *  # noqa: F401,F403

__all__ = list(_gc.__all__)
