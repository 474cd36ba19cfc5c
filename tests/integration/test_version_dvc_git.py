"""The version step on real git + DVC repositories in temporary directories.

Every test runs `python -m apod_version` as a child process, as a container would, with
HOME pointed at a temporary directory so that no user or machine config leaks in.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[2]
CSV_HEADER = "date,title,explanation\n"


def _tools_missing() -> str | None:
    if shutil.which("git") is None:
        return "git is not installed"
    probe = subprocess.run(
        [sys.executable, "-c", "import dvc"], capture_output=True, check=False, timeout=60
    )
    if probe.returncode != 0:
        return f"dvc is not importable by {sys.executable}"
    return None


@pytest.fixture(scope="module", autouse=True)
def _need_git_and_dvc():
    reason = _tools_missing()
    if reason:
        pytest.skip(reason)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A clean environment: no GIT_*/DVC_* from outside, HOME in the test's tmp dir."""
    home = tmp_path / "home"
    home.mkdir()
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GIT_", "DVC_", "APOD_")) and k != "PYTHONPATH"
    }
    return {
        **base,
        "HOME": str(home),
        "PYTHONPATH": os.pathsep.join(str(REPO / "images" / p) for p in ("common", "version")),
        "DVC_NO_ANALYTICS": "1",
        "GIT_CONFIG_NOSYSTEM": "1",
    }


def sh(*argv: str, cwd: Path, env: dict[str, str], check: bool = True) -> str:
    result = subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=300
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed: {result.stderr}{result.stdout}")
    return result.stdout


def git(repo: Path, env: dict[str, str], *args: str, check: bool = True) -> str:
    return sh("git", *args, cwd=repo, env=env, check=check)


def dvc(cwd: Path, env: dict[str, str], *args: str, check: bool = True) -> str:
    return sh(sys.executable, "-m", "dvc", *args, cwd=cwd, env=env, check=check)


@dataclass
class Run:
    returncode: int
    summary: dict
    stdout: str
    stderr: str


def version(env: dict[str, str], *args: str, extra_env: dict[str, str] | None = None) -> Run:
    result = subprocess.run(
        [sys.executable, "-m", "apod_version", *args],
        env={**env, **(extra_env or {})},
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    lines = result.stdout.strip().splitlines()
    summary = json.loads(lines[-1]) if lines else {}
    return Run(result.returncode, summary, result.stdout, result.stderr)


def write_csv(path: Path, rows: int, salt: str = "") -> bytes:
    body = "".join(
        f'2024-01-{day:02d},Title {day}{salt},"Line one, with a comma\nline two"\n'
        for day in range(1, rows + 1)
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(CSV_HEADER + body, encoding="utf-8")
    return path.read_bytes()


@dataclass
class Project:
    repo: Path
    csv: Path
    remote: Path
    env: dict[str, str]

    def run(self, run_id: str, *args: str, extra_env: dict[str, str] | None = None) -> Run:
        return version(
            self.env, "--run-id", run_id, "--csv", str(self.csv), *args, extra_env=extra_env
        )

    def git(self, *args: str, check: bool = True) -> str:
        return git(self.repo, self.env, *args, check=check)

    def head(self) -> str:
        return self.git("rev-parse", "HEAD").strip()

    def commits(self) -> int:
        return int(self.git("rev-list", "--count", "HEAD").strip())


def make_project(tmp_path: Path, env: dict[str, str], remote_url: str | None = None) -> Project:
    """A repository set up like the project's own: git + DVC, default remote `local` at an
    absolute path, one commit, the dataset under data/."""
    repo = tmp_path / "repo"
    remote = tmp_path / "dvc-remote"
    remote.mkdir()
    repo.mkdir()
    git(repo, env, "init", "-q", "-b", "main")
    dvc(repo, env, "init", "-q")
    dvc(repo, env, "config", "core.autostage", "false")
    dvc(repo, env, "config", "core.analytics", "false")
    dvc(repo, env, "remote", "add", "-d", "local", remote_url or str(remote))
    (repo / "README.md").write_text("project\n")
    (repo / "tracked.txt").write_text("one\n")
    git(repo, env, "add", "-A")
    git(
        repo,
        env,
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@localhost",
        "commit",
        "-q",
        "-m",
        "initial",
    )
    csv = repo / "data" / "apod_data.csv"
    write_csv(csv, 3)
    return Project(repo=repo, csv=csv, remote=remote, env=env)


@pytest.fixture
def project(tmp_path: Path, env: dict[str, str]) -> Project:
    return make_project(tmp_path, env)


def remote_has(remote: Path, data: bytes) -> bool:
    digest = hashlib.md5(data).hexdigest()  # noqa: S324 - DVC's content address
    return (remote / "files" / "md5" / digest[:2] / digest[2:]).is_file()


# --- commits ----------------------------------------------------------------------------


def test_first_run_commits_only_the_dvc_metadata(project: Project):
    data = project.csv.read_bytes()
    before = project.head()
    run = project.run("manual__first")
    assert run.returncode == 0, run.stderr
    summary = run.summary
    assert summary["status"] == "ok"
    assert summary["committed"] is True
    assert summary["dvc_pushed"] is True
    assert summary["git_pushed"] is False
    assert summary["md5"] == hashlib.md5(data).hexdigest()  # noqa: S324
    assert summary["size"] == len(data)
    assert summary["rows"] == 3
    assert summary["repo"] == str(project.repo)
    assert summary["csv"] == str(project.csv)
    assert summary["commit"] == project.head()
    assert project.git("rev-parse", "HEAD~1").strip() == before

    changed = project.git("show", "--name-only", "--format=", "HEAD").split()
    assert sorted(changed) == ["data/.gitignore", "data/apod_data.csv.dvc"]
    stat = project.git("show", "--stat", "--format=", "HEAD")
    assert "apod_data.csv.dvc" in stat
    assert "data/apod_data.csv " not in stat
    assert project.git("log", "--all", "--format=%H", "--", "data/apod_data.csv") == ""
    assert "data/apod_data.csv" not in project.git("ls-files").split()

    message = project.git("log", "-1", "--format=%B")
    assert message.splitlines()[0] == "data: update apod_data.csv (run manual__first)"
    assert f"md5: {summary['md5']}" in message
    assert f"size: {len(data)}" in message
    assert "rows: 3" in message
    author = project.git("log", "-1", "--format=%an <%ae>|%cn <%ce>")
    assert (
        author.strip()
        == "APOD pipeline <apod-pipeline@localhost>|APOD pipeline <apod-pipeline@localhost>"
    )
    assert remote_has(project.remote, data)
    assert project.git("status", "--porcelain") == ""


def test_same_data_again_is_nothing_to_do(project: Project):
    assert project.run("r1").returncode == 0
    head = project.head()
    again = project.run("r2")
    assert again.returncode == 99, again.stderr
    assert again.summary["status"] == "skipped"
    assert "data unchanged" in again.summary["reason"]
    assert project.head() == head


def test_a_versioned_batch_is_recorded_for_the_next_extract(project: Project):
    """Committed or found unchanged, a run whose batch lies beside the CSV (raw/<batch>/, as
    the steps lay the data directory out) is recorded as the last one versioned; a run
    without one is not."""
    data_dir = project.csv.parent
    record = data_dir / "raw" / ".last-versioned.json"
    assert project.run("manual__no_batch").returncode == 0
    assert not record.exists()
    for run_id, code in (("manual__a", 99), ("manual__b", 0)):
        manifest = data_dir / "raw" / run_id / "manifest.json"
        manifest.parent.mkdir(parents=True)
        manifest.write_text("{}\n")
        if code == 0:
            write_csv(project.csv, 4)
        run = project.run(run_id)
        assert run.returncode == code, run.stderr
        assert json.loads(record.read_text()) == {
            "run_id": run_id,
            "md5": hashlib.md5(project.csv.read_bytes()).hexdigest(),  # noqa: S324
            "commit": run.summary.get("commit"),
        }


def test_changed_data_makes_exactly_one_new_commit(project: Project):
    assert project.run("r1").returncode == 0
    head = project.head()
    data = write_csv(project.csv, 5)
    run = project.run("r2")
    assert run.returncode == 0, run.stderr
    assert project.git("rev-list", "--count", f"{head}..HEAD").strip() == "1"
    assert run.summary["rows"] == 5
    assert project.git("show", "--name-only", "--format=", "HEAD").split() == [
        "data/apod_data.csv.dvc"
    ]
    assert f"md5: {hashlib.md5(data).hexdigest()}" in project.git("log", "-1", "--format=%B")  # noqa: S324
    assert remote_has(project.remote, data)


def test_other_changes_in_the_repository_stay_as_they_were(project: Project):
    (project.repo / "staged_new.txt").write_text("staged\n")
    project.git("add", "staged_new.txt")
    (project.repo / "tracked.txt").write_text("one\ntwo (staged)\n")
    project.git("add", "tracked.txt")
    (project.repo / "tracked.txt").write_text("one\ntwo (staged)\nthree (unstaged)\n")
    (project.repo / "README.md").write_text("project, edited but not staged\n")
    (project.repo / "untracked.txt").write_text("untracked\n")
    # data/ is untracked before the run (the CSV) and clean after it; the rest must match.
    status = project.git("status", "--porcelain").replace("?? data/\n", "")
    staged = project.git("diff", "--cached")
    unstaged = project.git("diff")

    run = project.run("r1")
    assert run.returncode == 0, run.stderr
    assert sorted(project.git("show", "--name-only", "--format=", "HEAD").split()) == [
        "data/.gitignore",
        "data/apod_data.csv.dvc",
    ]
    assert project.git("status", "--porcelain") == status
    assert project.git("diff", "--cached") == staged
    assert project.git("diff") == unstaged
    assert (project.repo / "tracked.txt").read_text() == "one\ntwo (staged)\nthree (unstaged)\n"


def test_a_fresh_clone_pulls_the_same_bytes_from_the_committed_remote(
    project: Project, tmp_path: Path
):
    data = project.csv.read_bytes()
    assert project.run("r1").returncode == 0
    clone = tmp_path / "clone"
    git(tmp_path, project.env, "clone", "-q", str(project.repo), str(clone))
    assert not (clone / "data" / "apod_data.csv").exists()
    dvc(clone, project.env, "pull", "-q")
    assert (clone / "data" / "apod_data.csv").read_bytes() == data


def test_apod_dvc_remote_overrides_without_being_committed(tmp_path: Path, env: dict[str, str]):
    # The committed default points where nothing is mounted: the override must win.
    project = make_project(tmp_path, env, remote_url="/nonexistent/apod-dvc-remote")
    other = tmp_path / "other-remote"
    other.mkdir()
    data = project.csv.read_bytes()
    run = project.run("r1", extra_env={"APOD_DVC_REMOTE": str(other)})
    assert run.returncode == 0, run.stderr
    assert remote_has(other, data)
    assert "/nonexistent/apod-dvc-remote" in (project.repo / ".dvc" / "config").read_text()
    assert str(other) in (project.repo / ".dvc" / "config.local").read_text()
    assert ".dvc/config.local" not in project.git("ls-files").split()
    assert project.git("status", "--porcelain") == ""

    clone = tmp_path / "clone"
    git(tmp_path, env, "clone", "-q", str(project.repo), str(clone))
    dvc(clone, env, "remote", "modify", "--local", "local", "url", str(other))
    dvc(clone, env, "pull", "-q")
    assert (clone / "data" / "apod_data.csv").read_bytes() == data


def test_push_to_a_bare_git_remote(project: Project, tmp_path: Path):
    bare = tmp_path / "bare.git"
    git(tmp_path, project.env, "init", "-q", "--bare", str(bare))
    project.git("remote", "add", "origin", str(bare))
    run = project.run("r1")
    assert run.returncode == 0, run.stderr
    assert run.summary["git_pushed"] is True
    assert git(bare, project.env, "rev-parse", "main").strip() == project.head()

    # APOD_GIT_REMOTE picks another remote, "none" turns pushing off.
    mirror = tmp_path / "mirror.git"
    git(tmp_path, project.env, "init", "-q", "--bare", str(mirror))
    project.git("remote", "add", "mirror", str(mirror))
    write_csv(project.csv, 4)
    run = project.run("r2", extra_env={"APOD_GIT_REMOTE": "mirror"})
    assert run.returncode == 0, run.stderr
    assert git(mirror, project.env, "rev-parse", "main").strip() == project.head()
    assert git(bare, project.env, "rev-parse", "main").strip() != project.head()
    write_csv(project.csv, 5)
    run = project.run("r3", extra_env={"APOD_GIT_REMOTE": "none"})
    assert run.returncode == 0, run.stderr
    assert run.summary["git_pushed"] is False
    unknown = project.run("r4", extra_env={"APOD_GIT_REMOTE": "nope"})
    assert unknown.returncode == 2
    assert "nope" in unknown.summary["reason"]


def test_git_push_failure_is_retryable_and_the_next_run_pushes(project: Project, tmp_path: Path):
    bare = tmp_path / "bare.git"
    git(tmp_path, project.env, "init", "-q", "--bare", str(bare))
    project.git("remote", "add", "origin", str(bare))
    away = tmp_path / "bare-away.git"
    bare.rename(away)
    run = project.run("r1")
    assert run.returncode == 5, run.stderr
    assert "git push" in run.summary["reason"]
    committed = project.head()
    assert project.git("log", "-1", "--format=%s").startswith("data: update apod_data.csv")

    away.rename(bare)
    again = project.run("r2")
    assert again.returncode == 99, again.stderr
    assert project.head() == committed
    assert git(bare, project.env, "rev-parse", "main").strip() == committed


# --- the DVC remote ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["unmounted", "under-a-file", "unwritable-store"])
def test_unreachable_dvc_remote_is_exit_5_without_commit_then_recovers(
    tmp_path: Path, env: dict[str, str], kind: str
):
    project = make_project(tmp_path, env)
    blocker = tmp_path / "blocker"
    if kind == "unmounted":
        broken = tmp_path / "mnt" / "dvc-remote"
    elif kind == "under-a-file":
        blocker.write_text("a file, not a directory\n")
        broken = blocker / "dvc-remote"
    else:
        # The directory is there but DVC cannot create its store in it (works as root too).
        broken = tmp_path / "broken-remote"
        broken.mkdir()
        (broken / "files").write_text("not a directory\n")
    head = project.head()
    run = project.run("r1", extra_env={"APOD_DVC_REMOTE": str(broken)})
    assert run.returncode == 5, run.stderr
    assert "dvc" in run.summary["reason"].lower()
    assert project.head() == head
    assert (
        not (project.repo / "data" / "apod_data.csv.dvc").exists()
        or project.git("ls-files", "data/apod_data.csv.dvc") == ""
    )
    if kind == "unmounted":
        assert not broken.exists()  # nothing was written where the volume should be

    data = project.csv.read_bytes()
    fixed = project.run("r2", extra_env={"APOD_DVC_REMOTE": str(project.remote)})
    assert fixed.returncode == 0, fixed.stderr
    assert project.git("rev-list", "--count", f"{head}..HEAD").strip() == "1"
    assert remote_has(project.remote, data)


def test_remote_credentials_never_reach_the_output_or_the_committed_config(project: Project):
    secret = "s3cr3t-t0ken"
    run = project.run(
        "r1", extra_env={"APOD_DVC_REMOTE": f"http://apod:{secret}@127.0.0.1:9/dvc-store"}
    )
    assert run.returncode == 5, run.stderr
    assert secret not in run.stdout + run.stderr
    assert secret not in (project.repo / ".dvc" / "config").read_text()
    assert secret not in project.git("log", "--all", "-p")


def test_no_push_commits_locally_and_the_next_run_pushes(project: Project):
    data = project.csv.read_bytes()
    run = project.run("r1", "--no-push")
    assert run.returncode == 0, run.stderr
    assert run.summary["committed"] is True
    assert run.summary["dvc_pushed"] is False
    assert not remote_has(project.remote, data)
    again = project.run("r2")
    assert again.returncode == 99
    assert remote_has(project.remote, data)
    assert "in sync" in dvc(project.repo, project.env, "status", "-c")


# --- concurrency ------------------------------------------------------------------------


def test_two_runs_at_once_serialise_into_one_commit(project: Project):
    head = project.head()
    argv = [sys.executable, "-m", "apod_version", "--csv", str(project.csv)]
    procs = [
        subprocess.Popen(
            [*argv, "--run-id", f"parallel-{i}"],
            env=project.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    outcomes = [proc.communicate(timeout=300) for proc in procs]
    codes = sorted(proc.returncode for proc in procs)
    assert codes == [0, 99], outcomes
    assert project.git("rev-list", "--count", f"{head}..HEAD").strip() == "1"
    project.git("fsck", "--strict")
    assert "in sync" in dvc(project.repo, project.env, "status", "-c")
    assert project.git("status", "--porcelain") == ""


def test_a_held_lock_makes_the_run_wait_then_give_up(project: Project):
    lock_path = project.repo / ".git" / "apod-version.lock"
    with lock_path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        run = project.run("r1", "--lock-timeout", "1")
    assert run.returncode == 5
    assert "lock" in run.summary["reason"]
    assert project.commits() == 1


# --- where the repository comes from ----------------------------------------------------


def test_init_repo_makes_an_empty_directory_a_data_repository(tmp_path: Path, env: dict[str, str]):
    data_dir = tmp_path / "volume"
    remote = tmp_path / "dvc-remote"
    remote.mkdir()
    csv = data_dir / "apod_data.csv"
    data = write_csv(csv, 2)
    (data_dir / "raw" / "batch").mkdir(parents=True)
    (data_dir / "raw" / "batch" / "x.json").write_text("[]")
    (data_dir / "staging" / "batch").mkdir(parents=True)
    (data_dir / "staging" / "batch" / "apod.csv").write_text(CSV_HEADER)

    refused = version(env, "--run-id", "r0", "--csv", str(csv))
    assert refused.returncode == 3
    assert "--init-repo" in refused.summary["reason"]
    no_remote = version(env, "--run-id", "r0", "--csv", str(csv), "--init-repo")
    assert no_remote.returncode == 2
    assert "APOD_DVC_REMOTE" in no_remote.summary["reason"]
    assert not (data_dir / ".git").exists()

    run = version(
        env,
        "--run-id",
        "r1",
        "--csv",
        str(csv),
        "--init-repo",
        extra_env={"APOD_DVC_REMOTE": str(remote)},
    )
    assert run.returncode == 0, run.stderr
    assert run.summary["repo"] == str(data_dir)
    log = git(data_dir, env, "log", "--format=%s").splitlines()
    assert len(log) == 2
    assert log[1].startswith("data: initialise")
    assert sorted(git(data_dir, env, "ls-files").split()) == [
        ".dvc/.gitignore",
        ".dvc/config",
        ".dvcignore",
        ".gitignore",
        "apod_data.csv.dvc",
    ]
    assert (data_dir / ".gitignore").read_text().splitlines() == [
        "/raw/",
        "/staging/",
        "/apod_data.csv",
    ]
    assert git(data_dir, env, "status", "--porcelain") == ""
    assert git(data_dir, env, "symbolic-ref", "--short", "HEAD").strip() == "main"
    config = (data_dir / ".dvc" / "config").read_text()
    assert "autostage = false" in config
    assert "analytics = false" in config
    assert "shared = group" in config
    assert git(data_dir, env, "config", "core.sharedRepository").strip() in ("1", "group")
    assert remote_has(remote, data)

    # The environment switch does the same, and a repository is only made once.
    again = version(
        env,
        "--run-id",
        "r2",
        "--csv",
        str(csv),
        extra_env={"APOD_INIT_REPO": "1", "APOD_DVC_REMOTE": str(remote)},
    )
    assert again.returncode == 99, again.stderr
    assert len(git(data_dir, env, "log", "--format=%s").splitlines()) == 2


def _volume(tmp_path: Path) -> tuple[Path, Path, Path]:
    data_dir = tmp_path / "volume"
    remote = tmp_path / "dvc-remote"
    remote.mkdir()
    csv = data_dir / "apod_data.csv"
    write_csv(csv, 2)
    return data_dir, remote, csv


def test_a_failed_init_leaves_nothing_and_the_next_succeeds_first_time(
    tmp_path: Path, env: dict[str, str]
):
    """An initialisation that fails late (here: its initial commit) leaves no half-made
    repository for the next run to trip on."""
    data_dir, remote, csv = _volume(tmp_path)
    (data_dir / ".gitignore").write_text("/notes/\n")
    before = sorted(p.name for p in data_dir.iterdir())
    unsigned = {
        "GIT_CONFIG_COUNT": "2",
        "GIT_CONFIG_KEY_0": "commit.gpgSign",
        "GIT_CONFIG_VALUE_0": "true",
        "GIT_CONFIG_KEY_1": "gpg.program",
        "GIT_CONFIG_VALUE_1": "false",
    }
    failed = version(
        env,
        *("--run-id", "r1", "--csv", str(csv), "--init-repo"),
        extra_env={"APOD_DVC_REMOTE": str(remote), **unsigned},
    )
    assert failed.returncode == 1, failed.stderr
    assert "git commit failed" in failed.summary["reason"]
    assert sorted(p.name for p in data_dir.iterdir()) == before
    assert (data_dir / ".gitignore").read_text() == "/notes/\n"

    run = version(
        env,
        *("--run-id", "r2", "--csv", str(csv), "--init-repo"),
        extra_env={"APOD_DVC_REMOTE": str(remote)},
    )
    assert run.returncode == 0, run.stderr
    assert len(git(data_dir, env, "log", "--format=%s").splitlines()) == 2
    assert (data_dir / ".gitignore").read_text().splitlines()[:3] == [
        "/notes/",
        "/raw/",
        "/staging/",
    ]
    assert git(data_dir, env, "status", "--porcelain") == ""


def test_a_killed_init_is_cleaned_up_by_the_next(tmp_path: Path, env: dict[str, str]):
    data_dir, remote, csv = _volume(tmp_path)
    leftover = data_dir / ".apod-init-killed"
    (leftover / ".git").mkdir(parents=True)
    run = version(
        env,
        *("--run-id", "r1", "--csv", str(csv), "--init-repo"),
        extra_env={"APOD_DVC_REMOTE": str(remote)},
    )
    assert run.returncode == 0, run.stderr
    assert not leftover.exists()
    assert git(data_dir, env, "status", "--porcelain") == ""


def test_init_never_replaces_someone_elses_dvc_project(tmp_path: Path, env: dict[str, str]):
    data_dir, remote, csv = _volume(tmp_path)
    dvc(data_dir, env, "init", "-q", "--no-scm")
    config = (data_dir / ".dvc" / "config").read_bytes()
    run = version(
        env,
        *("--run-id", "r1", "--csv", str(csv), "--init-repo"),
        extra_env={"APOD_DVC_REMOTE": str(remote)},
    )
    assert run.returncode == 3, run.stderr
    assert "has a .dvc directory but no git repository" in run.summary["reason"]
    assert (data_dir / ".dvc" / "config").read_bytes() == config
    assert not (data_dir / ".git").exists()
    assert not list(data_dir.glob(".apod-init-*"))


def test_a_git_repository_without_dvc_is_refused(tmp_path: Path, env: dict[str, str]):
    repo = tmp_path / "plain"
    repo.mkdir()
    git(repo, env, "init", "-q")
    csv = repo / "apod_data.csv"
    write_csv(csv, 1)
    run = version(env, "--run-id", "r1", "--csv", str(csv))
    assert run.returncode == 3
    assert "dvc init" in run.summary["reason"]


def test_a_csv_tracked_by_git_is_bad_input(project: Project):
    project.git("add", "-f", "data/apod_data.csv")
    run = project.run("r1")
    assert run.returncode == 3, run.stderr
    assert project.commits() == 1


def test_repo_argument_must_contain_the_csv(project: Project, tmp_path: Path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run = project.run("r1", "--repo", str(elsewhere))
    assert run.returncode == 2
    ok = project.run("r1", "--repo", str(project.repo))
    assert ok.returncode == 0, ok.stderr


# --- other users ------------------------------------------------------------------------


def _unused_uid(start: int = 54321) -> int:
    import pwd

    uid = start
    while True:
        try:
            pwd.getpwuid(uid)
        except KeyError:
            return uid
        uid += 1


def test_a_checkout_another_uid_owns(project: Project):
    """git refuses such a repository ("dubious ownership") unless safe.directory names it;
    the step sets it for this repository only (as `docker run` without --user does on a
    developer's bind-mounted checkout)."""
    if os.geteuid() != 0:
        pytest.skip("handing the checkout to another uid needs root")
    owner = _unused_uid()
    sh("chown", "-R", f"{owner}:{owner}", str(project.repo), cwd=project.repo, env=project.env)
    assert "dubious ownership" in sh(
        "sh", "-c", "git status 2>&1", cwd=project.repo, env=project.env, check=False
    )
    run = project.run("r1")
    assert run.returncode == 0, run.stderr
    assert run.summary["committed"] is True


# --- lineage ----------------------------------------------------------------------------


def dvc_md5(project: Project, commit: str) -> str:
    text = project.git("show", f"{commit}:data/apod_data.csv.dvc")
    (md5,) = [line.split(":", 1)[1].strip() for line in text.splitlines() if "md5:" in line]
    return md5


def lineage(project: Project, day: str) -> Run:
    return version(project.env, "lineage", "--date", day, "--csv", str(project.csv))


def three_versions(project: Project) -> list[str]:
    """Versions of 3, 5, then 5 changed rows; their commits, oldest first."""
    commits = []
    for run_id, rows, salt in (("manual__one", 3, ""), ("manual__two", 5, ""), ("sched", 5, "!")):
        write_csv(project.csv, rows, salt)
        run = project.run(run_id)
        assert run.returncode == 0, run.stderr
        commits.append(run.summary["commit"])
    return commits


def test_lineage_names_the_first_version_that_held_a_date(project: Project):
    one, two, three = three_versions(project)
    for day, commit, run_id in (
        ("2024-01-02", one, "manual__one"),
        ("2024-01-05", two, "manual__two"),  # changed again by `three`: still first in two
    ):
        run = lineage(project, day)
        assert run.returncode == 0, run.stderr
        summary = run.summary
        assert summary["commit"] == commit
        assert summary["md5"] == dvc_md5(project, commit)
        assert summary["run_id"] == run_id
        assert summary["committed_at"] == project.git("show", "-s", "--format=%cI", commit).strip()
        assert summary["versions"] == 3
        assert summary["latest_commit"] == three == project.head()
        assert summary["latest_md5"] == dvc_md5(project, three)

    missing = lineage(project, "2024-01-09")
    assert missing.returncode == 3
    assert "2024-01-09 is in no committed version" in missing.summary["reason"]
    assert lineage(project, "2024-02-30").returncode == 2
    assert project.head() == three  # read-only


def test_lineage_reads_a_version_the_cache_lacks_from_the_remote(project: Project):
    _, two, _ = three_versions(project)
    shutil.rmtree(project.repo / ".dvc" / "cache")
    run = lineage(project, "2024-01-04")
    assert run.returncode == 0, run.stderr
    assert run.summary["commit"] == two
    assert "not in the DVC cache" in run.stderr
    shutil.rmtree(project.remote)
    project.remote.mkdir()
    gone = lineage(project, "2024-01-04")
    assert gone.returncode == 5, gone.stderr
    assert "neither in the DVC cache nor on the remote" in gone.summary["reason"]
