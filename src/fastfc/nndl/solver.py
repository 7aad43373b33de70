"""UCLA's ``Solver`` is CS231n's: :class:`fastfc.solver.Solver`, re-exported."""
from fastfc.solver import Solver

__all__ = ["Solver"]
