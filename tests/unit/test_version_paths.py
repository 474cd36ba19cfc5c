"""Where the version step finds the repository, the DVC project and its files."""

from pathlib import Path

import pytest

from apod_version import paths
from apod_version.initrepo import gitignore_text
from apod_version.remote import is_local, local_path, normalise

pytestmark = pytest.mark.unit


def test_git_root_is_the_nearest_directory_with_dot_git(tmp_path: Path):
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    deep = tmp_path / "repo" / "data" / "sub"
    deep.mkdir(parents=True)
    assert paths.git_root(deep) == tmp_path / "repo"
    # A worktree or submodule has a .git file instead of a directory.
    (deep / ".git").write_text("gitdir: elsewhere\n")
    assert paths.git_root(deep) == deep


def test_no_git_root_above_a_plain_directory(tmp_path: Path):
    plain = tmp_path / "plain"
    plain.mkdir()
    found = paths.git_root(plain)
    assert found is None or not paths.is_inside(found, tmp_path)


def test_dvc_root_stops_at_the_repository(tmp_path: Path):
    (tmp_path / ".dvc").mkdir()  # above the repository: must not count
    repo = tmp_path / "repo"
    (repo / "data").mkdir(parents=True)
    csv = repo / "data" / "apod_data.csv"
    assert paths.dvc_root(csv, repo) is None
    (repo / ".dvc").mkdir()
    assert paths.dvc_root(csv, repo) == repo
    (repo / "data" / ".dvc").mkdir()  # dvc init --subdir
    assert paths.dvc_root(csv, repo) == repo / "data"


def test_files_beside_the_csv(tmp_path: Path):
    csv = tmp_path / "data" / "apod_data.csv"
    assert paths.dvc_file(csv) == tmp_path / "data" / "apod_data.csv.dvc"
    assert paths.gitignore_beside(csv) == tmp_path / "data" / ".gitignore"
    assert paths.relative(paths.dvc_file(csv), tmp_path) == "data/apod_data.csv.dvc"


def test_is_inside(tmp_path: Path):
    assert paths.is_inside(tmp_path / "a" / "b", tmp_path)
    assert not paths.is_inside(tmp_path.parent / "other", tmp_path)


def test_absolute_keeps_symlinks(tmp_path: Path, monkeypatch):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    monkeypatch.chdir(tmp_path)
    assert paths.absolute("link/x.csv") == tmp_path / "link" / "x.csv"


@pytest.mark.parametrize(
    ("existing", "expected"),
    [
        ("", "/raw/\n/staging/\n"),
        ("/apod_data.csv\n", "/apod_data.csv\n/raw/\n/staging/\n"),
        ("/apod_data.csv", "/apod_data.csv\n/raw/\n/staging/\n"),
        ("/staging/\n/raw/\n", "/staging/\n/raw/\n"),
    ],
)
def test_gitignore_of_a_new_data_repository(existing, expected):
    assert gitignore_text(existing) == expected


@pytest.mark.parametrize(
    ("url", "local"),
    [
        ("/dvc-remote", True),
        ("relative/remote", True),
        ("file:///dvc-remote", True),
        ("s3://bucket/x", False),
        ("ssh://host/x", False),
        ("remote://other/x", False),
    ],
)
def test_local_remotes(url, local):
    assert is_local(url) is local


def test_local_remote_paths_are_made_absolute(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert local_path("file:///dvc-remote") == "/dvc-remote"
    assert normalise("store") == str(tmp_path / "store")
    assert normalise("file:///dvc-remote/") == "/dvc-remote"
    assert normalise("s3://bucket/x") == "s3://bucket/x"
