"""README.md runs as written.

Every fenced block of the README is accounted for:

* ``python`` blocks run, each in a fresh interpreter, in a temporary directory, with
  ``FASTFC_DATA`` unset (a first visitor has no CIFAR-10);
* ``bash`` blocks are split into commands (``&&`` chains included); a command runs,
  in a temporary directory shared by the commands of its block, unless it is listed in
  ``NOT_RUN`` with the reason it is documented but not run here;
* ``json`` blocks must parse; ``text`` blocks are output and are not run.

A ``fastfc`` or ``python`` in a command is this interpreter running the fastfc under
test (the in-place build or the installed package), so a broken command or block fails
here and not on a visitor's machine.  The same file checks what the README relies on:
``fastfc.<submodule>`` works after ``import fastfc`` (PEP 562), while ``import fastfc``
itself stays cheap and imports no optional dependency.
"""
import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import fastfc

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

#: commands the README documents but this test does not run, with the reason
NOT_RUN = {
    'pip install ".[data,plot,progress]"':
        "installs into the current environment and compiles the kernels (minutes)",
    'pip install ".[test]"':
        "installs into the current environment; .ci/run runs exactly this command",
    "python -m pytest":
        "the test suite itself (this test is part of it); .ci/run runs exactly this command",
    'pip install ".[docs]"':
        "installs into the current environment; .ci/run installs the docs extra",
    "sphinx-build -W -b html docs docs/_build/html":
        "the documentation build takes minutes; .ci/run runs exactly this command",
    "FASTFC_DATA=/path/to/cifar-10-batches-py fastfc train --dataset cifar10 --preset best":
        "needs the CIFAR-10 data set and trains for 9 minutes",
}

#: what a command that runs must print (a regular expression searched in stdout+stderr)
EXPECT = {
    "fastfc train": r"test acc 0\.9[5-9]",
    "fastfc evaluate runs/first --split test": r"digits test: accuracy 0\.\d+",
    "fastfc gradcheck --activation swish --normalization layernorm": r"W1",
    "fastfc info": r"fastfc \d+\.\d+",
}

_FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```[ \t]*$", re.S | re.M)


def _readme_text():
    """README.md's text; the README tests skip in a copy of tests/ without it (the
    install test runs tests/ against an installed wheel, away from the source tree)."""
    if not README.exists():
        pytest.skip("README.md is not beside tests/ (tests run away from the source tree)")
    return README.read_text(encoding="utf-8")


def readme_blocks(text=None):
    """(language, body, line number) of every fenced block of the README."""
    text = _readme_text() if text is None else text
    return [(m.group(1), m.group(2), text.count("\n", 0, m.start()) + 1)
            for m in _FENCE.finditer(text)]


def _split_outside_quotes(line, separator):
    """Split ``line`` at ``separator`` where it is not inside quotes."""
    parts, current, quote, i = [], [], None, 0
    while i < len(line):
        ch = line[i]
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif line.startswith(separator, i):
            parts.append("".join(current))
            current = []
            i += len(separator)
            continue
        current.append(ch)
        i += 1
    parts.append("".join(current))
    return parts


def shell_commands(body):
    """The commands of a shell block: continuation lines joined, comments removed,
    ``a && b`` split into ``a`` and ``b``."""
    body = body.replace("\\\n", " ")
    commands = []
    for line in body.splitlines():
        code = _split_outside_quotes(line, " #")[0]
        if code.lstrip().startswith("#"):
            continue
        for command in _split_outside_quotes(code, "&&"):
            command = " ".join(command.split())
            if command:
                commands.append(command)
    return commands


def test_the_block_parser():
    """The extraction itself, on a made-up README: a broken parser must not make the
    README tests pass vacuously."""
    text = ("x\n```bash\n# a comment\npip install . && fastfc train  # trains\n"
            "echo '{\"a\": \"#1 && 2\"}' > s.json\nA=1 \\\n    fastfc info\n```\n"
            "```python\nprint(1)\n```\n")
    blocks = readme_blocks(text)
    assert [(lang, line) for lang, _, line in blocks] == [("bash", 2), ("python", 9)]
    assert shell_commands(blocks[0][1]) == [
        "pip install .", "fastfc train", "echo '{\"a\": \"#1 && 2\"}' > s.json",
        "A=1 fastfc info"]


def test_every_block_is_accounted_for():
    blocks = readme_blocks()
    languages = {lang for lang, _, _ in blocks}
    assert languages <= {"python", "bash", "json", "text"}, \
        f"README has a block of an unknown language: {languages}"
    assert sum(lang == "python" for lang, _, _ in blocks) >= 2
    commands = [c for lang, body, _ in blocks if lang == "bash" for c in shell_commands(body)]
    stale = sorted(set(NOT_RUN) - set(commands))
    assert not stale, f"NOT_RUN lists commands the README no longer has: {stale}"
    missing = sorted(set(EXPECT) - set(commands))
    assert not missing, f"EXPECT lists commands the README no longer has: {missing}"
    run = [c for c in commands if c not in NOT_RUN]
    assert any(c.startswith("fastfc train") for c in run)
    for lang, body, line in blocks:
        if lang == "json":
            json.loads(body)


def test_readme_names_no_file_outside_the_repository():
    """The repository stands alone: no ../shared paths, no made-up wheel names."""
    text = _readme_text()
    if not (ROOT / "docs").is_dir():
        pytest.skip("docs/ is not part of this tree (an sdist)")
    assert "../" not in text
    for path in re.findall(r"`((?:docs|bench|examples|src|tests|\.ci)/[\w./-]+)`", text):
        if path.startswith("docs/_build/"):
            continue  # made by the documentation build
        assert (ROOT / path).exists(), f"README names {path}, which does not exist"
    assert not re.search(r"fastfc-\d[\w.-]*\.whl", text), "README names a wheel file"
    for page in ("getting_started", "install", "migrating", "net", "solver", "cli",
                 "sklearn", "sweeps", "performance", "troubleshooting", "reference_values"):
        assert (ROOT / "docs" / "user_guide" / f"{page}.md").exists(), page


def test_readme_results_table_is_the_benchmarks():
    """README's table is the headline of bench/RESULTS.md, pasted unchanged."""
    _readme_text()

    def table(path):
        text = path.read_text(encoding="utf-8")
        start = text.index("<!-- README table: paste from here -->")
        return text[start:text.index("<!-- README table: to here -->")]
    results = ROOT / "bench" / "RESULTS.md"
    if not results.exists():
        pytest.skip("bench/ is not part of this tree (an sdist)")
    assert table(README) == table(results), \
        "paste the headline table of bench/RESULTS.md into README.md"


def test_ci_runs_the_commands_readme_leaves_to_it():
    """The commands NOT_RUN leaves to CI (the test command, the docs build) are the
    ones .ci/run runs, so README cannot drift from what CI checks."""
    ci = ROOT / ".ci" / "run"
    if not ci.exists():
        pytest.skip(".ci/ is not part of this tree (an sdist)")
    ci_commands = [" ".join(c.replace("--quiet", "").split())
                   for line in ci.read_text(encoding="utf-8").splitlines()
                   for c in shell_commands(line)]
    for command, reason in NOT_RUN.items():
        if ".ci/run" not in reason:
            continue
        assert any(c == command or c.startswith(command + " ") for c in ci_commands), \
            f"README's {command!r} is not what .ci/run runs"


def _environment(tmp_path):
    """Environment of a first visitor: no FASTFC_DATA, headless plots, and ``fastfc`` /
    ``python`` meaning this interpreter with the fastfc under test."""
    env = {k: v for k, v in os.environ.items() if k != "FASTFC_DATA"}
    env["MPLBACKEND"] = "Agg"
    package_parent = str(Path(fastfc.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(
        [package_parent] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    bin_dir = tmp_path / "_bin"
    bin_dir.mkdir()
    for name, args in (("fastfc", "-m fastfc"), ("python", "")):
        script = bin_dir / name
        script.write_text(f'#!/bin/sh\nexec "{sys.executable}" {args} "$@"\n')
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
    env["PATH"] = os.pathsep.join([str(bin_dir), env.get("PATH", "")])
    return env


def _run(argv, cwd, env, what):
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{what} failed (status {proc.returncode}):\n{output}"
    return output


def _blocks(lang):
    if not README.exists():
        return []  # pytest reports the test as skipped (empty parameter set)
    return [pytest.param(body, id=f"line{line}")
            for block_lang, body, line in readme_blocks() if block_lang == lang]


@pytest.mark.parametrize("body", _blocks("python"))
def test_python_block_runs(body, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    (work / "block.py").write_text(body, encoding="utf-8")
    _run([sys.executable, "block.py"], work, _environment(tmp_path), "README block")


@pytest.mark.skipif(sys.platform == "win32", reason="the README's commands are POSIX shell")
@pytest.mark.parametrize("body", _blocks("bash"))
def test_shell_block_runs(body, tmp_path):
    commands = [c for c in shell_commands(body) if c not in NOT_RUN]
    if not commands:
        assert all(c in NOT_RUN for c in shell_commands(body))
        return
    env = _environment(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    for command in commands:
        output = _run(["/bin/sh", "-c", command], work, env, f"README command {command!r}")
        if command in EXPECT:
            assert re.search(EXPECT[command], output), \
                f"{command!r} did not print {EXPECT[command]!r}:\n{output}"


# ------------------------------------------------------- import fastfc, PEP 562

OPTIONAL = ("matplotlib", "sklearn", "optuna", "dask", "distributed", "tqdm", "torch",
            "pandas", "sphinx", "onnx", "onnxruntime")


def _python(code):
    env = {k: v for k, v in os.environ.items() if k != "FASTFC_DATA"}
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(fastfc.__file__).resolve().parents[1]), env.get("PYTHONPATH", "")])
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_import_fastfc_imports_no_optional_dependency():
    out = _python(
        "import sys, json\n"
        "import fastfc\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {OPTIONAL!r})))\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('fastfc.'))))\n")
    optional, loaded = (json.loads(line) for line in out.splitlines())
    assert optional == [], f"import fastfc imported optional dependencies: {optional}"
    for lazy in ("fastfc.vis_utils", "fastfc.augment", "fastfc.sweep", "fastfc.sklearn",
                 "fastfc.cli", "fastfc.nndl", "fastfc.data_utils", "fastfc.onnx"):
        assert lazy not in loaded, f"import fastfc imported {lazy}"


def test_submodules_load_on_first_attribute_access():
    out = _python(
        "import sys\n"
        "import fastfc\n"
        "assert 'fastfc.vis_utils' not in sys.modules\n"
        "f = fastfc.vis_utils.plot_history\n"
        "assert sys.modules['fastfc.vis_utils'] is fastfc.vis_utils\n"
        "assert 'matplotlib' not in sys.modules  # plotting imports it, not the module\n"
        "print(fastfc.augment.Augmenter.__name__, fastfc.sweep.sweep.__name__,\n"
        "      fastfc.data_utils.load_default_data.__name__,\n"
        "      fastfc.nndl.layers.affine_forward.__name__,\n"
        "      fastfc.classifiers.TwoLayerNet.__name__,\n"
        "      fastfc.schedules.__name__, fastfc.checkpoint.__name__, fastfc.cli.main.__name__)\n"
        "assert 'onnx' not in sys.modules and fastfc.onnx.__name__ == 'fastfc.onnx'\n"
        "assert 'onnx' not in sys.modules  # exporting imports it, not the module\n")
    assert out.split() == ["Augmenter", "sweep", "load_default_data", "affine_forward",
                           "TwoLayerNet", "fastfc.schedules", "fastfc.checkpoint", "main"]


def test_lazy_loading_knows_only_public_submodules():
    names = dir(fastfc)
    for name in ("vis_utils", "augment", "sweep", "sklearn", "data_utils", "nndl", "cli",
                 "Net", "Solver", "layers"):
        assert name in names, name
    assert names == sorted(names)
    with pytest.raises(AttributeError, match="no attribute 'no_such_module'"):
        fastfc.no_such_module
    with pytest.raises(AttributeError):
        fastfc._kernels_that_do_not_exist
    assert not hasattr(fastfc, "os")
    # every name the lazy loader promises is a real, public submodule
    for name in fastfc._LAZY_SUBMODULES:
        assert not name.startswith("_")
        assert (Path(fastfc.__file__).parent / f"{name}.py").exists() or \
            (Path(fastfc.__file__).parent / name / "__init__.py").exists(), name
    # from fastfc import * stays the eager, dependency-free public API
    namespace = {}
    exec("from fastfc import *", namespace)
    assert "sklearn" not in namespace and "Net" in namespace


# ------------------------------------------------------- fastfc bench: help = behaviour

def test_bench_help_names_options_the_harness_accepts(capsys):
    """``fastfc bench --help`` suggests ``--quick`` and other harness options; each of
    them is one the harness parses, and ``fastfc bench --quick`` hands it on."""
    from fastfc import cli

    assert cli.main(["bench", "--help"]) == 0
    text = capsys.readouterr().out
    assert "fastfc bench --quick" in text
    suggested = sorted(set(re.findall(r"(?<![\w-])(--[a-z][\w-]*)", text)) - {"--help"})
    assert "--quick" in suggested
    # what main() hands to the harness
    assert cli._split_bench(["bench", "--quick", "--rounds", "3"])[1] == \
        ["--quick", "--rounds", "3"]
    assert cli._split_bench(["bench", "--", "--help"])[1] == ["--help"]
    harness = ROOT / "bench" / "__main__.py"
    if not harness.exists():
        pytest.skip("bench/ is not part of this tree (an sdist)")
    before = {k for k in sys.modules if k == "bench" or k.startswith("bench.")}
    sys.path.insert(0, str(ROOT))
    try:
        import importlib
        bench_main = importlib.import_module("bench.__main__")
        for option in suggested:
            args = bench_main.parse_args([option] + ([] if option == "--quick" else ["1"]))
            assert args is not None, option
    finally:
        sys.path.remove(str(ROOT))
        for name in [k for k in sys.modules
                     if (k == "bench" or k.startswith("bench.")) and k not in before]:
            del sys.modules[name]
