"""Compiled kernels of fastfc (typed Cython over BLAS).

These modules trust their callers: shapes, dtypes and contiguity are checked by the
Python wrappers in fastfc.layers, fastfc.optim and fastfc.net before a kernel runs.
"""
