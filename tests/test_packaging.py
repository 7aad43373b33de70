"""Packaging: what the sdist and the wheel carry, and that the sdist rebuilds into a
working wheel.

From a source tree, the ``built`` fixture copies the tree (without build products),
makes the sdist with ``python -m build --sdist``, unpacks it and builds the wheel from
the unpacked sdist (``--no-isolation``: the ``test`` extra brings setuptools, Cython and
build; hence ``slow``).  The build shares the source tree's build cache
(``build/fastfc-cache``, see setup.py): a kernel is taken from it only when the hash of
every input found in the unpacked sdist -- sources, headers, flags, versions -- matches
a build made from the tree, so an sdist that lacks an input still compiles (and fails)
on its own.  When FASTFC_WHEEL and
FASTFC_SDIST name artefacts (.ci/install_test.sh sets them to the repaired wheel and
the sdist it built), those are checked instead and nothing is built.  Outside a source
tree without those variables (cibuildwheel's test run), the artefact tests skip.

The stub tests need no artefact: they compare each installed ``.pyi`` with the
compiled module beside it.
"""
import ast
import email.parser
import importlib
import inspect
import os
import re
import shutil
import subprocess
import sys
import tarfile
import types
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCE_TREE = (ROOT / "setup.py").is_file() and any((ROOT / "src/fastfc/_kernels").glob("*.pyx"))
#: kernels every build must have, whatever else is added later
CORE_KERNELS = {"blas", "dense", "losses", "norm", "optim", "net"}
EXT_SUFFIXES = (".so", ".pyd")
#: names of build products that never belong in a copy of the source tree
COPY_IGNORE = shutil.ignore_patterns(
    ".git", "build", "dist", "wheelhouse", "*.so", "*.pyd", "*.egg-info", "__pycache__",
    ".venv", ".hypothesis", ".pytest_cache", "*.pyc",
)


def _run(cmd, cwd, env=None, timeout=900):
    """Run a command; on failure, fail the test with the end of its output."""
    res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                         timeout=timeout)
    if res.returncode != 0:
        tail = "\n".join((res.stdout + res.stderr).splitlines()[-40:])
        pytest.fail(f"{' '.join(map(str, cmd))} exited {res.returncode}:\n{tail}")
    return res


def _clean_env():
    """The environment of a release build: no debug or -march=native switches."""
    env = dict(os.environ)
    for key in ("FASTFC_NATIVE", "FASTFC_CYTHON_DEBUG", "PYTHONPATH", "CFLAGS"):
        env.pop(key, None)
    if SOURCE_TREE and "FASTFC_BUILD_CACHE" not in env:
        env["FASTFC_BUILD_CACHE"] = str(ROOT / "build" / "fastfc-cache")
    return env


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(wheel, sdist) paths: given by FASTFC_WHEEL/FASTFC_SDIST, or built here."""
    wheel, sdist = os.environ.get("FASTFC_WHEEL"), os.environ.get("FASTFC_SDIST")
    if wheel and sdist:
        return Path(wheel), Path(sdist)
    if not SOURCE_TREE:
        pytest.skip("no source tree to build from, and FASTFC_WHEEL/FASTFC_SDIST not set")
    base = tmp_path_factory.mktemp("packaging")
    tree = base / "tree"
    shutil.copytree(ROOT, tree, ignore=COPY_IGNORE)
    out = base / "dist"
    env = _clean_env()
    _run([sys.executable, "-m", "build", "--sdist", "--no-isolation", "--outdir", out, "."],
         cwd=tree, env=env)
    (sdist,) = out.glob("fastfc-*.tar.gz")
    with tarfile.open(sdist) as tar:
        if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4 / 3.10.12
            tar.extractall(base / "unpacked", filter="data")
        else:
            tar.extractall(base / "unpacked")
    (unpacked,) = (base / "unpacked").iterdir()
    _run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", out, "."],
         cwd=unpacked, env=env)
    (wheel,) = out.glob("fastfc-*.whl")
    return wheel, sdist


@pytest.fixture(scope="module")
def wheel_names(built):
    return zipfile.ZipFile(built[0]).namelist()


@pytest.fixture(scope="module")
def sdist_names(built):
    with tarfile.open(built[1]) as tar:
        names = [m.name for m in tar.getmembers() if m.isfile()]
    # strip the leading "fastfc-<version>/"
    return [n.split("/", 1)[1] for n in names if "/" in n]


def _wheel_text(wheel, name):
    return zipfile.ZipFile(wheel).read(name).decode()


def _dist_info(names):
    (info,) = {n.split("/")[0] for n in names if n.split("/")[0].endswith(".dist-info")}
    return info


def _build_info_of(wheel):
    text = _wheel_text(wheel, "fastfc/_build_info.py")
    (assign,) = [n for n in ast.parse(text).body if isinstance(n, ast.Assign)]
    return ast.literal_eval(assign.value)


def _expected_kernels(wheel):
    """The kernels the wheel must hold: the source tree's .pyx files, else those its
    build recorded (never fewer than the core ones)."""
    if SOURCE_TREE:
        kernels = {p.stem for p in (ROOT / "src/fastfc/_kernels").glob("*.pyx")}
    else:
        kernels = set(_build_info_of(wheel)["kernels"])
    assert CORE_KERNELS <= kernels
    return kernels


# ------------------------------------------------------------------------ the wheel

@pytest.mark.slow
def test_wheel_holds_compiled_kernels_stubs_and_py_typed(built, wheel_names):
    wheel = built[0]
    assert not wheel.name.endswith("-none-any.whl"), f"{wheel.name} is a pure-Python wheel"
    for kernel in sorted(_expected_kernels(wheel)):
        compiled = [n for n in wheel_names
                    if n.startswith(f"fastfc/_kernels/{kernel}.") and n.endswith(EXT_SUFFIXES)]
        assert len(compiled) == 1, f"compiled module of {kernel}: {compiled}"
        assert f"fastfc/_kernels/{kernel}.pyi" in wheel_names, f"stub of {kernel} missing"
    for name in ("fastfc/py.typed", "fastfc/__init__.py", "fastfc/_config.py",
                 "fastfc/cli.py", "fastfc/_build_info.py", "fastfc/_kernels/__init__.py"):
        assert name in wheel_names, name


@pytest.mark.slow
def test_wheel_has_no_sources_tests_or_bench(wheel_names):
    tops = {n.split("/")[0] for n in wheel_names}
    assert tops == {"fastfc", _dist_info(wheel_names)}, f"unexpected top-level entries: {tops}"
    bad = [n for n in wheel_names
           if n.endswith((".pyx", ".pxd", ".c", ".h", ".o", ".obj"))
           or "/tests/" in n or "/bench/" in n or "/test_" in n or "conftest" in n]
    assert not bad, f"the wheel carries sources, tests or bench files: {bad}"


@pytest.mark.slow
def test_wheel_metadata_version_entry_point_and_requirements(built, wheel_names):
    wheel = built[0]
    info = _dist_info(wheel_names)
    meta = email.parser.Parser().parsestr(_wheel_text(wheel, f"{info}/METADATA"))
    # the version lives in fastfc/_config.py only: the metadata and file name follow it
    config = _wheel_text(wheel, "fastfc/_config.py")
    (version,) = re.findall(r'^__version__ = "([^"]+)"$', config, re.M)
    assert meta["Version"] == version
    assert wheel.name.startswith(f"fastfc-{version}-")
    if SOURCE_TREE:
        src = (ROOT / "src/fastfc/_config.py").read_text()
        assert re.findall(r'^__version__ = "([^"]+)"$', src, re.M) == [version]
    # the console script
    entry_points = _wheel_text(wheel, f"{info}/entry_points.txt")
    assert re.search(r"^fastfc\s*=\s*fastfc\.cli:main$", entry_points, re.M), entry_points
    # BLAS comes from scipy (cython_blas): no BLAS package of its own (MKL is only the
    # optional extra fastfc[mkl])
    requires = " ".join(r for r in meta.get_all("Requires-Dist") or [] if "extra ==" not in r)
    assert "numpy>=2.0" in requires and "scipy>=1.13" in requires
    assert not re.search(r"openblas|mkl|blis", requires, re.I), requires
    extras = [r for r in meta.get_all("Requires-Dist") or [] if 'extra == "mkl"' in r]
    assert extras and extras[0].startswith("mkl"), extras


@pytest.mark.slow
def test_wheel_is_a_portable_release_build(built):
    info = _build_info_of(built[0])
    assert info["debug"] is False and info["native"] is False and info["mode"] == "release"
    flags = " ".join([info["compiler"]["command"], info["cflags_env"],
                      *info["extra_compile_args"]])
    assert "-march=native" not in flags and "-mtune=native" not in flags, flags
    assert info["cython_directives"]["boundscheck"] is False
    assert info["float_types"] == ["float32", "float64"]


# ------------------------------------------------------------------------ the sdist

@pytest.mark.slow
def test_sdist_holds_everything_to_rebuild(built, sdist_names):
    names = set(sdist_names)
    kernels = _expected_kernels(built[0])
    for kernel in kernels:
        assert f"src/fastfc/_kernels/{kernel}.pyx" in names, kernel
        assert f"src/fastfc/_kernels/{kernel}.pyi" in names, kernel
    assert "src/fastfc/_kernels/_types.pxd" in names
    if SOURCE_TREE:
        for path in (ROOT / "src/fastfc/_kernels").glob("*.pxd"):
            assert f"src/fastfc/_kernels/{path.name}" in names, path.name
        for path in (ROOT / "csrc").iterdir():
            if path.suffix in (".h", ".c"):
                assert f"csrc/{path.name}" in names, path.name
    assert any(n.startswith("csrc/") and n.endswith(".h") for n in names)
    for name in ("setup.py", "pyproject.toml", "MANIFEST.in", "README.md", "PKG-INFO",
                 "src/fastfc/py.typed", "src/fastfc/cli.py", "tests/conftest.py"):
        assert name in names, name


@pytest.mark.slow
def test_sdist_has_no_generated_or_compiled_files(sdist_names):
    bad = [n for n in sdist_names
           if (n.endswith(".c") and not n.startswith("csrc/"))
           or n.endswith((".so", ".pyd", ".o", ".pyc"))
           or n.startswith(("build/", "bench/", ".ci/", "dist/"))
           or n.endswith("_build_info.py")]
    assert not bad, f"the sdist carries generated or compiled files: {bad}"


@pytest.mark.slow
def test_wheel_from_the_sdist_works(built, tmp_path):
    """Install the wheel (built from the sdist) into a directory of its own and use it
    from a working directory outside any source tree."""
    target = tmp_path / "site"
    _run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
          "--no-compile", "--target", target, built[0]], cwd=tmp_path)
    script = """
import sys
from pathlib import Path
import numpy as np
import fastfc
from fastfc import layers
from fastfc._kernels import blas
target = Path(sys.argv[1]).resolve()
assert Path(fastfc.__file__).resolve().is_relative_to(target), fastfc.__file__
assert Path(blas.__file__).resolve().is_relative_to(target), blas.__file__
rng = np.random.default_rng(0)
for dtype in (np.float32, np.float64):
    a = rng.standard_normal((7, 5)).astype(dtype)
    b = rng.standard_normal((5, 3)).astype(dtype)
    c = np.zeros((7, 3), dtype)
    blas._gemm(a, b, c)
    np.testing.assert_allclose(c, a @ b, rtol=1e-5)
    out, _ = layers.affine_forward(a, b, np.zeros(3, dtype))
    assert out.dtype == dtype
    np.testing.assert_allclose(out, a @ b, rtol=1e-5)
cfg = fastfc.show_config(mode="dicts")
assert cfg["build"]["debug"] is False, cfg["build"]
assert cfg["kernels"]["float_types"] == ["float32", "float64"]
print(fastfc.__version__)
"""
    env = _clean_env()
    env["PYTHONPATH"] = str(target)
    res = _run([sys.executable, "-c", script, target], cwd=tmp_path, env=env)
    version = res.stdout.strip()
    cli = _run([sys.executable, "-m", "fastfc.cli", "--version"], cwd=tmp_path, env=env)
    assert cli.stdout.strip() == f"fastfc {version}"


# ------------------------------------------------------------------------ the repo

def test_no_generated_c_files_in_git():
    """Cython's .c output is a build product: only csrc/ may hold C sources in git."""
    if not (ROOT / ".git").exists() or shutil.which("git") is None:
        pytest.skip("not a git checkout")
    res = subprocess.run(["git", "ls-files", "*.c", "*.cpp"], cwd=ROOT, capture_output=True,
                         text=True)
    if res.returncode != 0:
        pytest.skip(f"git ls-files failed: {res.stderr.strip()}")
    tracked = [f for f in res.stdout.split() if not f.startswith("csrc/")]
    assert not tracked, f"generated C files checked into git: {tracked}"


def test_version_is_defined_once():
    if not SOURCE_TREE:
        pytest.skip("needs the source tree")
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'^dynamic\s*=\s*\[[^\]]*"version"', pyproject, re.M)
    assert re.search(r'^version\s*=\s*\{\s*attr\s*=\s*"fastfc\._config\.__version__"',
                     pyproject, re.M)
    assert not re.search(r'^version\s*=\s*"', pyproject, re.M), "a static version in pyproject"
    hits = [p for p in (ROOT / "src").rglob("*.py")
            if re.search(r'^__version__\s*=\s*"', p.read_text(), re.M)]
    assert [p.name for p in hits] == ["_config.py"], hits


# ------------------------------------------------------------------------ the stubs

def _kernel_modules():
    """The compiled kernel modules (not ``_cyutility``, Cython's shared utility code)."""
    import fastfc._kernels as pkg
    here = Path(pkg.__file__).parent
    names = sorted({p.name.split(".")[0] for p in here.iterdir()
                    if p.name.endswith(EXT_SUFFIXES) and not p.name.startswith("_")})
    assert CORE_KERNELS <= set(names), names
    return here, names


def _stub_api(path):
    """{name: [parameter names] or None} of the top level of a .pyi, plus class methods
    as 'Class.method'."""
    api = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.FunctionDef):
            api[node.name] = [a.arg for a in node.args.args + node.args.kwonlyargs]
        elif isinstance(node, ast.ClassDef):
            api[node.name] = None
            for item in node.body:
                if not isinstance(item, ast.FunctionDef) or item.name.startswith("__"):
                    continue
                if "property" in {getattr(d, "id", None) for d in item.decorator_list}:
                    continue  # properties are data descriptors, compared as attributes
                api[f"{node.name}.{item.name}"] = [a.arg for a in item.args.args
                                                   + item.args.kwonlyargs]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            if not node.target.id.startswith("_"):
                api[node.target.id] = None
    return api


def _module_api(module):
    """The same for a compiled module: its def functions, classes and public dicts."""
    api = {}
    for name, value in vars(module).items():
        if name.startswith("__") or isinstance(value, types.ModuleType):
            continue
        if inspect.isclass(value):
            api[name] = None
            for attr, member in vars(value).items():
                if attr.startswith("__") or not callable(member):
                    continue
                api[f"{name}.{attr}"] = list(inspect.signature(member).parameters)
        elif callable(value):
            api[name] = list(inspect.signature(value).parameters)
        elif isinstance(value, dict) and not name.startswith("_"):
            api[name] = None
        elif type(value) is int and name.isupper():      # public constants
            api[name] = None
    return api


def test_every_kernel_module_has_a_stub_and_py_typed():
    here, names = _kernel_modules()
    missing = [n for n in names if not (here / f"{n}.pyi").is_file()]
    assert not missing, f"compiled kernel modules without a .pyi stub: {missing}"
    assert (here.parent / "py.typed").is_file()


@pytest.mark.parametrize("name", sorted(CORE_KERNELS | {"augment"}))
def test_stub_matches_the_compiled_module(name):
    here, names = _kernel_modules()
    if name not in names:
        pytest.skip(f"no compiled module {name}")
    module = importlib.import_module(f"fastfc._kernels.{name}")
    stub, real = _stub_api(here / f"{name}.pyi"), _module_api(module)
    assert sorted(stub) == sorted(real), (
        f"{name}.pyi and the compiled module differ: only in the stub "
        f"{sorted(set(stub) - set(real))}, only in the module {sorted(set(real) - set(stub))}")
    for key, params in real.items():
        if params is not None and stub[key] is not None:
            assert [p for p in stub[key] if p != "self"] == [p for p in params if p != "self"], \
                f"{name}.{key}: stub parameters {stub[key]} but the module has {params}"
