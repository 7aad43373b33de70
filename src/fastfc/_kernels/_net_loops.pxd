# The C loops only the fused training step uses, csrc/net_loops.h.
from libc.stdint cimport uint8_t, uint32_t, uint64_t, intptr_t

cdef extern from "net_loops.h" nogil:
    void ffc_dropout_mask(uint8_t* mask, Py_ssize_t size, uint32_t threshold, uint64_t key)
    uint64_t ffc_splitmix64(uint64_t x)
    void ffc_gather_rows_f_s(const float* x, const intptr_t* idx, Py_ssize_t n, Py_ssize_t d, float* out)
    void ffc_gather_rows_d_s(const double* x, const intptr_t* idx, Py_ssize_t n, Py_ssize_t d, float* out)
    void ffc_gather_rows_f_d(const float* x, const intptr_t* idx, Py_ssize_t n, Py_ssize_t d, double* out)
    void ffc_gather_rows_d_d(const double* x, const intptr_t* idx, Py_ssize_t n, Py_ssize_t d, double* out)
