# Affine layers and activations (row-major, contiguous, sizes checked by the caller).
from fastfc._kernels._types cimport floating

cdef void affine_forward(const floating* x, const floating* w, const floating* b,
                         floating* out, int n, int d, int m) noexcept nogil
cdef void affine_backward(const floating* dout, const floating* x, const floating* w,
                          floating* dx, floating* dw, floating* db,
                          int n, int d, int m) noexcept nogil
cdef void act_backward(int kind, const floating* z, const floating* y, floating* dout,
                       Py_ssize_t size, floating alpha) noexcept nogil
