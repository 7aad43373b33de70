# The C loop of the augmented gather, csrc/augment_loops.h (float target: _s, double: _d;
# float source: _f_, double source: _d_).  cut_y / cut_x may be NULL (no cutout).
from libc.stdint cimport uint8_t, int32_t, intptr_t

cdef extern from "augment_loops.h" nogil:
    int FFC_PAD_ZERO
    int FFC_PAD_REFLECT
    int FFC_PAD_EDGE
    void ffc_augment_f_s(const float* x, const intptr_t* idx, const uint8_t* flip, const int32_t* shift_y,
                         const int32_t* shift_x, const int32_t* cut_y, const int32_t* cut_x,
                         Py_ssize_t n, Py_ssize_t c, Py_ssize_t h, Py_ssize_t w, int pad_mode,
                         Py_ssize_t cutout, float* out)
    void ffc_augment_d_s(const double* x, const intptr_t* idx, const uint8_t* flip, const int32_t* shift_y,
                         const int32_t* shift_x, const int32_t* cut_y, const int32_t* cut_x,
                         Py_ssize_t n, Py_ssize_t c, Py_ssize_t h, Py_ssize_t w, int pad_mode,
                         Py_ssize_t cutout, float* out)
    void ffc_augment_f_d(const float* x, const intptr_t* idx, const uint8_t* flip, const int32_t* shift_y,
                         const int32_t* shift_x, const int32_t* cut_y, const int32_t* cut_x,
                         Py_ssize_t n, Py_ssize_t c, Py_ssize_t h, Py_ssize_t w, int pad_mode,
                         Py_ssize_t cutout, double* out)
    void ffc_augment_d_d(const double* x, const intptr_t* idx, const uint8_t* flip, const int32_t* shift_y,
                         const int32_t* shift_x, const int32_t* cut_y, const int32_t* cut_x,
                         Py_ssize_t n, Py_ssize_t c, Py_ssize_t h, Py_ssize_t w, int pad_mode,
                         Py_ssize_t cutout, double* out)
