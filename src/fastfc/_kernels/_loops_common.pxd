# What the C loop headers share, csrc/loops_common.h: the side results of an update pass.

cdef extern from "loops_common.h" nogil:
    ctypedef struct ffc_update_stats:
        double sumsq
        Py_ssize_t nonfinite
