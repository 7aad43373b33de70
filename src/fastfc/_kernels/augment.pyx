"""Minibatch gathering with on-the-fly augmentation, straight into a preallocated buffer.

For each sample of the minibatch: take row ``idx[i]`` of the data set (an image stored
channel-first as c x h x w values), flip it horizontally when ``flip[i]``, translate it
by (``shift_y[i]``, ``shift_x[i]``) pixels with zero padding, and cast it to the
buffer's dtype -- one pass, no temporary padded copy of anything.  The random draws
come from the caller (fastfc.augment.Augmenter); this kernel only moves pixels.
"""
from libc.stdint cimport uint8_t, int32_t, intptr_t

from fastfc._kernels._types cimport floating
from fastfc._kernels._augment_loops cimport *

ctypedef fused source_t:
    float
    double


def gather_augment(const source_t[:, ::1] x, const intptr_t[::1] idx,
                   const uint8_t[::1] flip, const int32_t[::1] shift_y,
                   const int32_t[::1] shift_x, Py_ssize_t c, Py_ssize_t h, Py_ssize_t w,
                   floating[:, ::1] out):
    """out[i] = shift(flip(x[idx[i]])) for i < len(idx); shapes checked by the caller."""
    cdef Py_ssize_t n = idx.shape[0]
    with nogil:
        if source_t is float:
            if floating is float:
                ffc_augment_f_s(&x[0, 0], &idx[0], &flip[0], &shift_y[0], &shift_x[0],
                                n, c, h, w, &out[0, 0])
            else:
                ffc_augment_f_d(&x[0, 0], &idx[0], &flip[0], &shift_y[0], &shift_x[0],
                                n, c, h, w, &out[0, 0])
        else:
            if floating is float:
                ffc_augment_d_s(&x[0, 0], &idx[0], &flip[0], &shift_y[0], &shift_x[0],
                                n, c, h, w, &out[0, 0])
            else:
                ffc_augment_d_d(&x[0, 0], &idx[0], &flip[0], &shift_y[0], &shift_x[0],
                                n, c, h, w, &out[0, 0])
