"""Build the Cython kernels of fastfc.

Metadata lives in pyproject.toml; this file only lists the compiled extensions.

Environment switches
--------------------
FASTFC_CYTHON_DEBUG=1  compile with bounds, wraparound and initialisation checks on
                       (slow; used by CI to catch out-of-bounds access in the kernels).
FASTFC_NATIVE=1        add -march=native for a local build tuned to this CPU.  Never
                       set it for a wheel that is meant to run on other machines.
"""
import os
import sys
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

DEBUG = os.environ.get("FASTFC_CYTHON_DEBUG", "0") not in ("", "0")
NATIVE = os.environ.get("FASTFC_NATIVE", "0") not in ("", "0")

KERNELS = sorted(p.stem for p in Path("src/fastfc/_kernels").glob("*.pyx"))

DIRECTIVES = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "nonecheck": DEBUG,
    "cdivision": True,
    "embedsignature": True,
    "cpow": True,
}

if sys.platform == "win32":
    COMPILE_ARGS = ["/O2"]
else:
    COMPILE_ARGS = ["-O3", "-fno-math-errno", "-Wno-unused-function", "-Wno-unreachable-code"]
    if DEBUG:
        COMPILE_ARGS = ["-O1", "-g", "-Wno-unused-function"]
    elif NATIVE:
        COMPILE_ARGS.append("-march=native")

HEADERS = [str(p) for p in Path("csrc").glob("*.h")]
PXDS = [str(p) for p in Path("src/fastfc/_kernels").glob("*.pxd")]

extensions = [
    Extension(
        f"fastfc._kernels.{name}",
        [f"src/fastfc/_kernels/{name}.pyx"],
        include_dirs=["csrc"],
        extra_compile_args=COMPILE_ARGS,
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION"),
                       ("FASTFC_DEBUG_BUILD", "1" if DEBUG else "0")],
        depends=HEADERS + PXDS,
    )
    for name in KERNELS
]

MODE = "debug" if DEBUG else ("native" if NATIVE else "release")


class BuildExt(build_ext):
    """build_ext that recompiles everything when the build mode changed since last time.

    Debug and release objects share output paths; without this a release build after a
    debug build would keep the slow, checked modules (the sources are not newer).
    """

    def finalize_options(self):
        super().finalize_options()
        if not self.parallel:
            self.parallel = os.cpu_count() or 1

    def run(self):
        stamp = Path(self.build_temp) / "fastfc-build-mode"
        if not stamp.exists() or stamp.read_text() != MODE:
            self.force = True
        super().run()
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text(MODE)


setup(
    cmdclass={"build_ext": BuildExt},
    ext_modules=cythonize(
        extensions,
        compiler_directives=DIRECTIVES,
        build_dir="build/cython-debug" if DEBUG else "build/cython",
        force=DEBUG,
    ),
)
