"""UCLA's ``nndl/layer_utils.py``: the sandwich layers, plus every layer of
:mod:`fastfc.nndl.layers` (UCLA's file starts with ``from nndl.layers import *``)."""
from fastfc import layer_utils as _LU
from fastfc.layer_utils import *  # noqa: F401,F403
from fastfc.nndl import layers as _NL
from fastfc.nndl.layers import *  # noqa: F401,F403  (UCLA's dropout wins)

__all__ = sorted(set(_LU.__all__) | set(_NL.__all__))
