"""Where the repository, the DVC root and the committed files are, from the CSV's path.

Found by walking up the directories instead of asking git, because git refuses to
answer (dubious ownership) before safe.directory is set for the very path we look for.
"""

import os
from pathlib import Path


def absolute(path: str | os.PathLike) -> Path:
    """Absolute without resolving symlinks: the path the caller named is the one recorded."""
    return Path(os.path.abspath(os.fspath(path)))


def find_upwards(start: Path, marker: str, stop: Path | None = None) -> Path | None:
    """The nearest of `start` and its parents that holds `marker`, not above `stop`."""
    for directory in (start, *start.parents):
        if (directory / marker).exists():
            return directory
        if stop is not None and directory == stop:
            return None
    return None


def git_root(start: Path) -> Path | None:
    return find_upwards(start, ".git")


def dvc_root(csv: Path, repo: Path) -> Path | None:
    """The DVC project holding the CSV: the repository itself, or a `dvc init --subdir`."""
    return find_upwards(csv.parent, ".dvc", stop=repo)


def is_inside(path: Path, directory: Path) -> bool:
    try:
        path.relative_to(directory)
    except ValueError:
        return False
    return True


def dvc_file(csv: Path) -> Path:
    return csv.with_name(csv.name + ".dvc")


def gitignore_beside(csv: Path) -> Path:
    return csv.parent / ".gitignore"


def relative(path: Path, repo: Path) -> str:
    """A path as git names it inside the repository (forward slashes, no leading ./)."""
    return path.relative_to(repo).as_posix()
