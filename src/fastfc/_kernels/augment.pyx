"""Minibatch gathering with on-the-fly augmentation, straight into a preallocated buffer.

For each sample of the minibatch: take row ``idx[i]`` of the data set (an image stored
channel-first as c x h x w values), flip it horizontally when ``flip[i]``, translate it
by (``shift_y[i]``, ``shift_x[i]``) pixels reading the image padded with zeros, its
mirror image (reflect) or its border pixels (edge), zero a ``cutout`` x ``cutout``
square centred at (``cut_y[i]``, ``cut_x[i]``) when asked, and cast it to the buffer's
dtype -- one pass, no temporary padded copy of anything.  The random draws come from
the caller (fastfc.augment.Augmenter); this kernel only moves pixels.
"""
from libc.stdint cimport uint8_t, int32_t, intptr_t

from fastfc._kernels._types cimport floating
from fastfc._kernels._augment_loops cimport *

ctypedef fused source_t:
    float
    double

#: the padding modes of the translation, by name, as the kernel numbers them
PAD_CODES = {"zero": FFC_PAD_ZERO, "reflect": FFC_PAD_REFLECT, "edge": FFC_PAD_EDGE}


def gather_augment(const source_t[:, ::1] x not None, const intptr_t[::1] idx not None,
                   const uint8_t[::1] flip not None, const int32_t[::1] shift_y not None,
                   const int32_t[::1] shift_x not None, Py_ssize_t c, Py_ssize_t h,
                   Py_ssize_t w, floating[:, ::1] out not None, int pad_mode=0,
                   Py_ssize_t cutout=0,
                   const int32_t[::1] cut_y=None, const int32_t[::1] cut_x=None):
    """out[i] = cutout(shift(flip(x[idx[i]]))) for i < len(idx); shapes checked by the caller.

    ``pad_mode``: a value of PAD_CODES (zero, reflect or edge padding).  Cutout is
    applied when ``cutout`` > 0 and both ``cut_y`` and ``cut_x`` (centres, one per
    sample) are given.
    """
    cdef Py_ssize_t n = idx.shape[0]
    cdef const int32_t* cy = NULL
    cdef const int32_t* cx = NULL
    if n == 0:
        return
    if cutout > 0 and cut_y is not None and cut_x is not None:
        cy = &cut_y[0]
        cx = &cut_x[0]
    with nogil:
        if source_t is float:
            if floating is float:
                ffc_augment_f_s(&x[0, 0], &idx[0], &flip[0], &shift_y[0], &shift_x[0],
                                cy, cx, n, c, h, w, pad_mode, cutout, &out[0, 0])
            else:
                ffc_augment_f_d(&x[0, 0], &idx[0], &flip[0], &shift_y[0], &shift_x[0],
                                cy, cx, n, c, h, w, pad_mode, cutout, &out[0, 0])
        else:
            if floating is float:
                ffc_augment_d_s(&x[0, 0], &idx[0], &flip[0], &shift_y[0], &shift_x[0],
                                cy, cx, n, c, h, w, pad_mode, cutout, &out[0, 0])
            else:
                ffc_augment_d_d(&x[0, 0], &idx[0], &flip[0], &shift_y[0], &shift_x[0],
                                cy, cx, n, c, h, w, pad_mode, cutout, &out[0, 0])
