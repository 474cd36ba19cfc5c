"""The environment the version step gives git and DVC."""

import os
import subprocess
import tempfile
from pathlib import Path

import pytest

from apod_version.childenv import child_env, identity, site_cache_dir, user_name, with_git_config

pytestmark = pytest.mark.unit


def git_config_pairs(env: dict[str, str]) -> list[tuple[str, str]]:
    count = int(env["GIT_CONFIG_COUNT"])
    return [(env[f"GIT_CONFIG_KEY_{i}"], env[f"GIT_CONFIG_VALUE_{i}"]) for i in range(count)]


def test_safe_directory_is_this_repository_only(tmp_path: Path):
    env = child_env({"HOME": str(tmp_path)}, tmp_path / "repo")
    assert git_config_pairs(env) == [("safe.directory", str(tmp_path / "repo"))]


def test_safe_directory_also_names_the_resolved_path(tmp_path: Path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    env = child_env({"HOME": str(tmp_path)}, tmp_path / "link")
    assert git_config_pairs(env) == [
        ("safe.directory", str(tmp_path / "link")),
        ("safe.directory", str(tmp_path / "real")),
    ]


def test_existing_git_config_entries_are_kept():
    env = {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "http.proxy", "GIT_CONFIG_VALUE_0": "p"}
    with_git_config(env, [("safe.directory", "/data")])
    assert git_config_pairs(env) == [("http.proxy", "p"), ("safe.directory", "/data")]


def test_identity_defaults_and_committer_follows_author():
    assert identity({}) == {
        "GIT_AUTHOR_NAME": "APOD pipeline",
        "GIT_AUTHOR_EMAIL": "apod-pipeline@localhost",
        "GIT_COMMITTER_NAME": "APOD pipeline",
        "GIT_COMMITTER_EMAIL": "apod-pipeline@localhost",
    }
    ident = identity(
        {"GIT_AUTHOR_NAME": "Ada", "GIT_AUTHOR_EMAIL": "ada@x", "GIT_COMMITTER_NAME": ""}
    )
    assert ident["GIT_COMMITTER_NAME"] == "Ada"
    assert ident["GIT_COMMITTER_EMAIL"] == "ada@x"
    assert identity({"GIT_COMMITTER_EMAIL": "ci@x"})["GIT_COMMITTER_EMAIL"] == "ci@x"


def test_no_prompts_no_analytics(tmp_path: Path):
    env = child_env({"HOME": str(tmp_path)}, tmp_path)
    assert env["GIT_TERMINAL_PROMPT"] == "0"
    assert env["DVC_NO_ANALYTICS"] == "1"


def test_unwritable_or_missing_home_falls_back_to_the_temp_dir(tmp_path: Path):
    assert child_env({}, tmp_path)["HOME"] == tempfile.gettempdir()
    assert child_env({"HOME": str(tmp_path / "nope")}, tmp_path)["HOME"] == tempfile.gettempdir()
    assert child_env({"HOME": str(tmp_path)}, tmp_path)["HOME"] == str(tmp_path)


def test_dvc_site_cache_inside_the_project_when_writable(tmp_path: Path):
    (tmp_path / ".dvc").mkdir()
    assert site_cache_dir(tmp_path, 10001) == str(tmp_path / ".dvc" / "tmp" / "site-cache")
    assert site_cache_dir(None, 10001) == os.path.join(
        tempfile.gettempdir(), "apod-dvc-10001", "site-cache"
    )
    env = child_env({"HOME": str(tmp_path), "DVC_SITE_CACHE_DIR": "/x"}, tmp_path, tmp_path)
    assert env["DVC_SITE_CACHE_DIR"] == "/x"


def test_inherited_variables_that_select_another_repository_are_dropped(tmp_path: Path):
    env = child_env(
        {
            "HOME": str(tmp_path),
            "GIT_DIR": "/elsewhere/.git",
            "GIT_INDEX_FILE": "/x",
            "PATH": "/bin",
        },
        tmp_path,
    )
    assert "GIT_DIR" not in env
    assert "GIT_INDEX_FILE" not in env
    assert env["PATH"] == "/bin"


def test_a_uid_without_passwd_entry_still_gets_a_user_name(tmp_path: Path):
    import pwd

    unknown = 54321
    while True:
        try:
            pwd.getpwuid(unknown)
        except KeyError:
            break
        unknown += 1
    assert user_name({}, unknown) == f"uid{unknown}"
    assert user_name({}, 0) == pwd.getpwuid(0).pw_name
    assert user_name({"USER": "ada"}, unknown) is None
    assert child_env({"HOME": str(tmp_path)}, tmp_path, uid=unknown)["USER"] == f"uid{unknown}"
    assert child_env({"HOME": str(tmp_path), "USER": "ada"}, tmp_path)["USER"] == "ada"


def test_libgit2_gets_safe_directory_from_a_private_global_config(tmp_path: Path):
    (tmp_path / "home" / ".config" / "git").mkdir(parents=True)
    own = tmp_path / "home" / ".config" / "git" / "config"
    own.write_text("[user]\n\tname = Ada\n")
    repo = tmp_path / 'a "quoted" repo'
    env = child_env({"HOME": str(tmp_path / "home")}, repo)
    private = Path(env["XDG_CONFIG_HOME"])
    assert private != tmp_path / "home" / ".config"
    assert oct(private.stat().st_mode & 0o777) == "0o700"
    # DVC keeps reading its own global config where it would without us.
    assert env["DVC_GLOBAL_CONFIG_DIR"] == str(tmp_path / "home" / ".config" / "dvc")

    def git_config(*args: str) -> str:
        clean = {k: v for k, v in env.items() if not k.startswith("GIT_CONFIG_")}
        result = subprocess.run(
            ["git", "config", "--global", *args], env=clean, capture_output=True, text=True
        )
        return result.stdout.strip()

    assert git_config("--get-all", "safe.directory") == str(repo)
    assert git_config("--includes", "--get", "user.name") == "Ada"


def test_set_global_config_dirs_are_kept(tmp_path: Path):
    env = child_env(
        {"HOME": str(tmp_path), "XDG_CONFIG_HOME": "/cfg", "DVC_GLOBAL_CONFIG_DIR": "/dvccfg"},
        tmp_path,
    )
    assert env["DVC_GLOBAL_CONFIG_DIR"] == "/dvccfg"
    assert (Path(env["XDG_CONFIG_HOME"]) / "git" / "config").read_text().count("[include]") == 0
