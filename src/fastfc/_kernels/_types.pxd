# The one fused floating type of fastfc's kernels: every kernel is compiled for float32
# and float64 from a single source.
ctypedef fused floating:
    float
    double
