"""shellcheck over every shell script of the repository.

A shell script is a file git knows (tracked, or new and not ignored) whose name ends in
.sh or whose first line is a shebang naming sh, bash or dash: so .ci/run and the images'
extension-less scripts are checked too, and a script another change adds is checked
without being listed here. scripts/test.sh installs Debian's shellcheck; without it the
test skips, which fails a CI run (tests/conftest.py).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
_SHEBANG = re.compile(rb"^#!\s*(?:/usr)?/bin/(?:env\s+)?(?:ba|da)?sh\b")


def shell_scripts(repo: Path = REPO) -> list[Path]:
    listed = subprocess.run(
        ["git", "-C", str(repo), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    scripts = []
    for name in sorted({n.decode() for n in listed if n}):
        path = repo / name
        if not path.is_file():  # deleted in the worktree, not yet in the index
            continue
        if name.endswith(".sh"):
            scripts.append(path)
            continue
        with path.open("rb") as handle:
            if _SHEBANG.match(handle.readline(200)):
                scripts.append(path)
    return scripts


def shellcheck() -> str:
    found = shutil.which("shellcheck")
    if found is None:
        pytest.skip("shellcheck is not installed (scripts/test.sh installs Debian's)")
    return found


def test_the_scripts_found_include_those_without_an_extension():
    names = {str(p.relative_to(REPO)) for p in shell_scripts()}
    assert {".ci/run", "images/builder/apod-install", "scripts/test.sh"} <= names
    assert "scripts/bench.py" not in names


def test_every_shell_script_passes_shellcheck():
    scripts = shell_scripts()
    # -x follows the files a script sources (their `# shellcheck source=` paths are
    # relative to the repository).
    result = subprocess.run(
        [shellcheck(), "-x", *(str(p.relative_to(REPO)) for p in scripts)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_shellcheck_fails_a_script_with_a_fault(tmp_path):
    script = tmp_path / "bad.sh"
    script.write_text("#!/usr/bin/env bash\nrm -rf $1/data\n", encoding="utf-8")
    result = subprocess.run(
        [shellcheck(), str(script)], capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
    assert "SC2086" in result.stdout  # the unquoted $1
