"""fastfc.show_config() and the ``fastfc`` command line (``--version``, ``info``)."""
import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
import scipy

import fastfc
from fastfc import cli
from fastfc._config import show_config
from fastfc._kernels import blas


def _installed():
    """True when fastfc is imported from an installed wheel (not a source tree)."""
    expect = os.environ.get("FASTFC_EXPECT_SITE")
    here = Path(fastfc.__file__).resolve()
    if expect:
        return True
    return "site-packages" in here.parts and not (here.parents[2] / "setup.py").exists()


# ------------------------------------------------------------------- show_config

def test_show_config_dicts_holds_what_a_bug_report_needs():
    cfg = show_config(mode="dicts")
    assert cfg["fastfc"]["version"] == fastfc.__version__
    assert Path(cfg["fastfc"]["location"]) == Path(fastfc.__file__).parent
    assert cfg["dependencies"]["numpy"] == np.__version__
    assert cfg["dependencies"]["scipy"] == scipy.__version__
    assert cfg["kernels"]["importable"] is True
    assert cfg["kernels"]["float_types"] == ["float32", "float64"]
    assert cfg["kernels"]["blas_backend"] == blas.backend()
    assert cfg["python"]["executable"] == sys.executable
    json.dumps(cfg)  # plain data: pasteable as JSON


def test_show_config_prints_a_readable_block(capsys):
    assert show_config() is None
    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"fastfc {fastfc.__version__}"
    for needle in ("build", "float types", "float32, float64", "BLAS backend",
                   "BLAS (scipy.linalg.cython_blas)", f"numpy           {np.__version__}",
                   f"scipy           {scipy.__version__}", "Python"):
        assert needle in out, needle


def test_show_config_is_exported():
    assert fastfc.show_config is show_config
    assert "show_config" in fastfc.__all__


@pytest.mark.parametrize("mode", ["json", "", None, "DICTS"])
def test_show_config_bad_mode(mode):
    with pytest.raises(ValueError, match="mode must be one of"):
        show_config(mode=mode)


def test_build_info_recorded_by_the_build():
    """An installed fastfc knows how it was built (setup.py writes _build_info.py)."""
    build = show_config(mode="dicts")["build"]
    if build is None:
        if _installed():
            pytest.fail("fastfc is installed but carries no _build_info.py")
        pytest.skip("source-tree build without _build_info.py")
    assert build["version"] == fastfc.__version__
    assert isinstance(build["debug"], bool) and isinstance(build["native"], bool)
    assert build["mode"] == ("debug" if build["debug"] else
                             "native" if build["native"] else "release")
    assert build["cython_version"] and build["cython_version"][0].isdigit()
    assert build["compiler"]["type"] and build["compiler"]["command"]
    assert build["float_types"] == ["float32", "float64"]
    assert set(build["kernels"]) >= {"blas", "dense", "losses", "norm", "optim", "net"}
    assert build["cython_directives"]["boundscheck"] == build["debug"]


def test_show_config_without_build_info(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "fastfc._build_info", None)  # import now fails
    cfg = show_config(mode="dicts")
    assert cfg["build"] is None
    assert cfg["kernels"]["float_types"] == ["float32", "float64"]
    show_config()
    assert "not recorded" in capsys.readouterr().out


def test_blas_threads_come_from_threadpoolctl():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    runtime = show_config(mode="dicts")["blas"]["runtime"]
    if not runtime and not sys.platform.startswith("linux"):
        pytest.skip("threadpoolctl reports no BLAS here (Apple Accelerate is not reported)")
    assert runtime, "threadpoolctl found no BLAS in the process"
    for lib in runtime:
        assert isinstance(lib["num_threads"], int) and lib["num_threads"] >= 1
        assert lib["filepath"] and lib["internal_api"]
    with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
        limited = show_config(mode="dicts")["blas"]["runtime"]
    assert [lib["num_threads"] for lib in limited] == [1] * len(limited)


def test_blas_is_scipys_library():
    blas_info = show_config(mode="dicts")["blas"]
    if blas_info.get("runtime_from") != "scipy":
        pytest.skip("scipy's BLAS cannot be told apart here (e.g. Accelerate on macOS)")
    scipy_dir = Path(scipy.__file__).resolve().parent
    for lib in blas_info["runtime"]:
        path = Path(lib["filepath"]).resolve()
        assert path.is_relative_to(scipy_dir) or path.is_relative_to(
            scipy_dir.parent / "scipy.libs"), path


def test_show_config_without_threadpoolctl(monkeypatch):
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)
    blas_info = show_config(mode="dicts")["blas"]
    assert blas_info["runtime"] == []
    assert "threadpoolctl" in blas_info["runtime_error"]


# ------------------------------------------------------------------- version

def test_version_matches_the_installed_metadata():
    try:
        dist = metadata.distribution("fastfc")
    except metadata.PackageNotFoundError:
        pytest.skip("fastfc is not installed (source tree on sys.path)")
    location = Path(dist.locate_file("fastfc/__init__.py")).resolve()
    if location != Path(fastfc.__file__).resolve():
        pytest.skip("the installed metadata belongs to another copy of fastfc")
    assert dist.version == fastfc.__version__


def test_console_script_entry_point():
    try:
        eps = metadata.distribution("fastfc").entry_points
    except metadata.PackageNotFoundError:
        pytest.skip("fastfc is not installed")
    scripts = {ep.name: ep.value for ep in eps if ep.group == "console_scripts"}
    assert scripts.get("fastfc") == "fastfc.cli:main"


# ------------------------------------------------------------------- the CLI, in process

def test_cli_version(capsys):
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"fastfc {fastfc.__version__}"


def test_cli_help(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "info" in out and "--version" in out


def test_cli_info(capsys):
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"fastfc {fastfc.__version__}\n")
    assert "float32, float64" in out


def test_cli_info_json(capsys):
    assert cli.main(["info", "--json"]) == 0
    cfg = json.loads(capsys.readouterr().out)
    assert cfg["fastfc"]["version"] == fastfc.__version__
    assert cfg["kernels"]["float_types"] == ["float32", "float64"]


@pytest.mark.parametrize("argv, needle", [
    ([], "a command is required"),
    (["frobnicate"], "invalid choice"),
    (["info", "--bogus"], "unrecognized arguments"),
    (["--bogus"], "unrecognized arguments"),
    (["info", "extra"], "unrecognized arguments"),
], ids=["none", "unknown-command", "unknown-option", "unknown-global", "extra-arg"])
def test_cli_bad_arguments_one_line_and_status_2(capsys, argv, needle):
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("fastfc: error: ") and needle in lines[0]


def test_cli_command_table():
    names = [c.name for c in cli.COMMANDS]
    assert "info" in names and len(names) == len(set(names))
    for command in cli.COMMANDS:
        assert callable(command.add_arguments) and callable(command.run) and command.help


def _boom(args):
    raise RuntimeError("the kernel\nexploded")


def test_cli_command_error_is_one_line_status_1(monkeypatch, capsys):
    boom = cli.Command("boom", "fails", lambda parser: None, _boom)
    monkeypatch.setattr(cli, "COMMANDS", cli.COMMANDS + (boom,))
    assert cli.main(["boom"]) == 1
    err = capsys.readouterr().err
    assert err == "fastfc: error: boom: RuntimeError: the kernel exploded\n"
    with pytest.raises(RuntimeError):
        cli.main(["--traceback", "boom"])


def test_cli_keyboard_interrupt_status_130(monkeypatch, capsys):
    def interrupted(args):
        raise KeyboardInterrupt
    stop = cli.Command("stop", "interrupted", lambda parser: None, interrupted)
    monkeypatch.setattr(cli, "COMMANDS", cli.COMMANDS + (stop,))
    assert cli.main(["stop"]) == 130
    assert capsys.readouterr().err == "fastfc: error: interrupted\n"


# ------------------------------------------------------------------- the CLI, as a program

def _run(*args):
    return subprocess.run(list(args), capture_output=True, text=True, timeout=120)


def test_python_m_fastfc_cli_version_and_bad_argument():
    res = _run(sys.executable, "-m", "fastfc.cli", "--version")
    assert res.returncode == 0 and res.stdout.strip() == f"fastfc {fastfc.__version__}"
    res = _run(sys.executable, "-m", "fastfc.cli", "frobnicate")
    assert res.returncode == 2
    assert len(res.stderr.splitlines()) == 1 and "Traceback" not in res.stderr


def test_installed_fastfc_program():
    script = Path(sys.executable).parent / ("fastfc.exe" if os.name == "nt" else "fastfc")
    if not script.exists():
        pytest.skip("no fastfc console script beside this Python (not installed here)")
    res = _run(str(script), "--version")
    assert res.returncode == 0 and res.stdout.strip() == f"fastfc {fastfc.__version__}"
    res = _run(str(script), "info")
    assert res.returncode == 0 and "float32, float64" in res.stdout
    res = _run(str(script), "info", "--nope")
    assert res.returncode == 2 and len(res.stderr.splitlines()) == 1


def test_imported_from_the_expected_site_packages():
    """Under .ci/install_test.sh: fastfc comes from the test venv, not a source tree."""
    expect = os.environ.get("FASTFC_EXPECT_SITE")
    if not expect:
        pytest.skip("FASTFC_EXPECT_SITE not set (only the install test sets it)")
    here = Path(fastfc.__file__).resolve()
    assert here.is_relative_to(Path(expect).resolve()), here
    assert Path(blas.__file__).resolve().is_relative_to(Path(expect).resolve())
