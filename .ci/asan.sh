#!/usr/bin/env bash
# Run fastfc's concurrency and buffer-ownership tests under AddressSanitizer.
#
#   .ci/asan.sh                 # build a sanitised copy of this tree, run the tests
#   .ci/asan.sh -k labels       # extra pytest arguments are passed on
#
# The kernels are compiled in place in a scratch copy of the source tree (src/, csrc/,
# tests/, setup.py, pyproject.toml) with -fsanitize=address, so the release build in
# the working tree is left alone.  CPython itself is not sanitised: libasan is
# LD_PRELOADed, and PYTHONMALLOC=malloc routes Python's own allocations through it.
#
# Environment:
#   PYTHON               interpreter with fastfc's build and test requirements (python3)
#   FASTFC_ASAN_TREE     source tree to build and test (default: this repository)
#   FASTFC_ASAN_WORK     scratch directory (default: a new mktemp -d, removed at exit)
#   FASTFC_ASAN_TESTS    pytest node ids/paths to run (default: the list below)
#   FASTFC_ASAN_REUSE=1  with FASTFC_ASAN_WORK: keep the sanitised build made there
#                        before (sources are copied again; changed kernels recompile)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TREE=${FASTFC_ASAN_TREE:-$ROOT}
PY=${PYTHON:-python3}

if [[ -n "${FASTFC_ASAN_WORK:-}" ]]; then
    WORK=$FASTFC_ASAN_WORK
    mkdir -p "$WORK"
else
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/fastfc-asan.XXXXXX")
    trap 'rm -rf "$WORK"' EXIT
fi

LIBASAN=$(gcc -print-file-name=libasan.so)
if [[ ! -e "$LIBASAN" ]]; then
    echo "asan.sh: gcc has no libasan.so ($LIBASAN)" >&2
    exit 2
fi

echo "== copying $TREE to $WORK"
if [[ "${FASTFC_ASAN_REUSE:-0}" != 1 ]]; then
    rm -rf "$WORK/build" "$WORK/src"
fi
# sources only: no compiled modules or build records of the original tree
(cd "$TREE" && tar -cf - --exclude='*.so' --exclude='_build_info.py' \
    --exclude='__pycache__' src csrc tests setup.py pyproject.toml) | (cd "$WORK" && tar -xf -)

echo "== building the kernels with -fsanitize=address (release directives)"
cd "$WORK"
CFLAGS="-fsanitize=address -fno-omit-frame-pointer -g" \
LDFLAGS="-fsanitize=address" \
    "$PY" setup.py build_ext --inplace -j 2 >"$WORK/build.log" 2>&1 \
    || { tail -30 "$WORK/build.log"; exit 1; }
# (grep reads all of nm's output: with pipefail, grep -q could fail the pipe)
if [[ $(nm -D src/fastfc/_kernels/net.*.so | grep -c __asan_) -eq 0 ]]; then
    echo "asan.sh: the kernels were not instrumented (CFLAGS ignored?)" >&2
    exit 1
fi

DEFAULT_TESTS=(
    "tests/test_net_safety.py::test_threads_sharing_one_net_give_a_serial_result"
    "tests/test_net_safety.py::test_adam_step_count_under_threads"
    "tests/test_net_safety.py::test_calls_on_one_net_wait_for_each_other"
    "tests/test_net_safety.py::test_the_lock_is_per_net"
    "tests/test_net_safety.py::test_running_stats_entries_cannot_be_swapped_or_written"
    "tests/test_net_safety.py::test_running_stats_round_trip_through_extra_state"
    "tests/test_net_safety.py::test_params_update_and_ior_copy_into_the_flat_buffer"
    "tests/test_net_safety.py::test_params_entries_cannot_be_removed"
    "tests/test_net_safety.py::test_optimizer_state_arrays_are_read_only_views"
    "tests/test_net_safety.py::test_labels_changed_during_a_step_are_never_read_out_of_bounds"
    "tests/test_net_safety.py::test_indices_changed_during_a_step_are_never_read_out_of_bounds"
    "tests/test_net_safety.py::test_large_evaluation_gives_its_workspace_back"
    "tests/test_threading.py::test_two_python_threads_train_at_once"
    # fastfc's bf16 GEMM: packing at every edge of its tiles, both micro-kernels
    "tests/test_gemm.py::test_fastfcs_bf16_gemm_against_numpy"
    "tests/test_gemm.py::test_bf16_gemms_give_the_same_net_steps"
    # bf16 steps: the loops that write a bf16 copy of their output (every path)
    "tests/test_compute_dtype.py::test_operands_rounded_once_give_the_bits_of_rounding_in_every_product"
)
if [[ -n "${FASTFC_ASAN_TESTS:-}" ]]; then
    read -r -a TESTS <<<"$FASTFC_ASAN_TESTS"
else
    TESTS=("${DEFAULT_TESTS[@]}")
fi

echo "== running ${#TESTS[@]} test(s) under AddressSanitizer"
# halt_on_error: the first report ends the run (exit code 1 from ASan, not pytest's).
# --capture=sys: pytest must not capture file descriptor 2, or the report ASan writes
# there just before it exits would be lost with the capture file.
LD_PRELOAD="$LIBASAN" \
ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:abort_on_error=0:allocator_may_return_null=1" \
PYTHONMALLOC=malloc \
PYTHONPATH="$WORK/src" \
HYPOTHESIS_PROFILE=dev \
    "$PY" -m pytest -q -p no:cacheprovider --capture=sys "${TESTS[@]}" "$@"
echo "== AddressSanitizer: no errors"
