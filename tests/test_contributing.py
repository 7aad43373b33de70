"""CONTRIBUTING.md names files by path: every one of them must exist in the source tree."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "CONTRIBUTING.md"
# the guide describes the source tree: a copy of tests/ run against an installed wheel
# (.ci/install_test.sh, cibuildwheel) has no tree to check, and the source tree's own
# run of the suite checks it
if not (ROOT / "setup.py").is_file():
    pytest.skip("needs the source tree (CONTRIBUTING.md, csrc/, src/)", allow_module_level=True)

# a backticked token that looks like a repository path: a folder part, or a file name
# with one of the project's extensions (placeholders such as <concern> are skipped)
_PATH = re.compile(r"^[\w./-]+$")
_EXTENSIONS = (".py", ".pyx", ".pxd", ".pyi", ".h", ".md", ".toml", ".in", ".cfg", ".sh")


def named_paths(text):
    """The backticked paths of a Markdown text (outside fenced code blocks)."""
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    paths = []
    for token in re.findall(r"`([^`\n]+)`", text):
        if not _PATH.match(token) or token.startswith("."):   # `.pyx`: an extension
            continue
        if "/" in token or token.endswith(_EXTENSIONS):
            if token.endswith(_EXTENSIONS) or token.endswith("/"):
                paths.append(token)
    return sorted(set(paths))


def test_guide_exists_and_names_paths():
    assert GUIDE.is_file()
    paths = named_paths(GUIDE.read_text(encoding="utf-8"))
    # the table alone names every kernel module, loop header and declaration file
    assert len(paths) > 30
    for concern in ("dense", "losses", "norm", "optim", "augment", "net"):
        assert f"src/fastfc/_kernels/{concern}.pyx" in paths
        assert f"csrc/{concern}_loops.h" in paths
        assert f"src/fastfc/_kernels/_{concern}_loops.pxd" in paths


@pytest.mark.parametrize("path", named_paths(GUIDE.read_text(encoding="utf-8")))
def test_named_path_exists(path):
    where = ROOT / path
    # a bare file name (no folder) must exist somewhere in the tree
    if "/" not in path:
        assert any(ROOT.glob(f"**/{path}")), f"CONTRIBUTING.md names {path}, found nowhere"
    else:
        assert where.exists(), f"CONTRIBUTING.md names {path}, which does not exist"


def test_every_loop_header_is_in_the_guide():
    """A new csrc/*.h must be described in the guide too."""
    text = GUIDE.read_text(encoding="utf-8")
    for header in sorted((ROOT / "csrc").glob("*.h")):
        assert f"`csrc/{header.name}`" in text, f"csrc/{header.name} is not in CONTRIBUTING.md"


def test_extraction():
    text = ("see `csrc/a_loops.h` and `x.py`, not `FFC_REAL`, `.pyi` or `<concern>.pyx`"
            "\n```\n`b/c.h`\n```")
    assert named_paths(text) == ["csrc/a_loops.h", "x.py"]
