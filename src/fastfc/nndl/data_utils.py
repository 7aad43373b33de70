"""UCLA's data loading is CS231n's: :mod:`fastfc.data_utils`, re-exported."""
from fastfc import data_utils as _du
from fastfc.data_utils import *  # noqa: F401,F403

__all__ = list(_du.__all__)
