"""The environment git and DVC run in.

The container runs as uid 10001 with HOME=/tmp, or as whatever uid a person passes to
`docker run --user`, on a repository some other uid may own: a checkout bind-mounted from
the host, or a Kubernetes volume, which kind's and minikube's provisioners create owned by
root with mode 0777. git and libgit2 (DVC's git library) refuse such a repository
("dubious ownership") unless `safe.directory` names it. So, for this repository only:
- the git CLI gets safe.directory on its command-line level (GIT_CONFIG_COUNT), which no
  config file can override;
- libgit2, which reads no such variables, gets it from a private global config: a fresh
  XDG_CONFIG_HOME of this process, whose git/config says safe.directory and includes the
  user's own XDG git config; DVC keeps its own global config dir (DVC_GLOBAL_CONFIG_DIR).
No config file of the user or of the repository is written. Also: an identity even when
the uid has no passwd entry, writable DVC cache dirs, and no prompt that could hang a task.
"""

import atexit
import os
import pwd
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

DEFAULT_AUTHOR_NAME = "APOD pipeline"
DEFAULT_AUTHOR_EMAIL = "apod-pipeline@localhost"

# Inherited from a hook or a wrapper, these would point git at another repository or
# index than the one `git -C <repo>` names.
REPO_SELECTING = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_COMMON_DIR",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_NAMESPACE",
    "GIT_PREFIX",
    "GIT_CEILING_DIRECTORIES",
    "GIT_DISCOVERY_ACROSS_FILESYSTEM",
)


def _value(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    return value if value else None


def _writable_dir(path: str | None) -> bool:
    return bool(path) and os.path.isdir(path) and os.access(path, os.W_OK | os.X_OK)


def with_git_config(env: dict[str, str], pairs: list[tuple[str, str]]) -> dict[str, str]:
    """Append `pairs` to the GIT_CONFIG_COUNT/KEY/VALUE entries already in `env`."""
    try:
        count = int(env.get("GIT_CONFIG_COUNT", "0") or "0")
    except ValueError:
        count = 0
    for key, value in pairs:
        env[f"GIT_CONFIG_KEY_{count}"] = key
        env[f"GIT_CONFIG_VALUE_{count}"] = value
        count += 1
    env["GIT_CONFIG_COUNT"] = str(count)
    return env


def safe_directories(repo: Path) -> list[str]:
    """The repository as named and as resolved: git compares against its real path."""
    names = [str(repo)]
    real = os.path.realpath(repo)
    if real not in names:
        names.append(real)
    return names


def _config_value(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def private_config_home(repo: Path, user_config_home: str) -> str:
    """A new XDG_CONFIG_HOME for the children, removed when this process ends, whose
    git/config marks `repo` safe and includes the user's own XDG git config."""
    home = tempfile.mkdtemp(prefix="apod-version-config-")  # 0700: no one else's to edit
    atexit.register(shutil.rmtree, home, True)
    lines = ["[safe]", *(f"\tdirectory = {_config_value(d)}" for d in safe_directories(repo))]
    own = os.path.join(user_config_home, "git", "config")
    if os.path.isfile(own):
        lines += ["[include]", f"\tpath = {_config_value(own)}"]
    os.mkdir(os.path.join(home, "git"))
    Path(home, "git", "config").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return home


def identity(env: Mapping[str, str]) -> dict[str, str]:
    author = _value(env, "GIT_AUTHOR_NAME") or DEFAULT_AUTHOR_NAME
    email = _value(env, "GIT_AUTHOR_EMAIL") or DEFAULT_AUTHOR_EMAIL
    return {
        "GIT_AUTHOR_NAME": author,
        "GIT_AUTHOR_EMAIL": email,
        "GIT_COMMITTER_NAME": _value(env, "GIT_COMMITTER_NAME") or author,
        "GIT_COMMITTER_EMAIL": _value(env, "GIT_COMMITTER_EMAIL") or email,
    }


def user_name(env: Mapping[str, str], uid: int) -> str | None:
    """A USER for children when the environment names none and the uid has no passwd
    entry (`docker run --user 1000:1000`): DVC calls getpass.getuser(), which fails then."""
    if any(_value(env, name) for name in ("LOGNAME", "USER", "LNAME", "USERNAME")):
        return None
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid{uid}"


def site_cache_dir(dvc_root: Path | None, uid: int) -> str:
    """DVC's index/state cache: inside the project's ignored .dvc/tmp when we may write
    there, else a per-uid dir under the temp dir (DVC's default /var/tmp/dvc is shared
    between uids and breaks when another uid created it)."""
    if dvc_root is not None and _writable_dir(str(dvc_root / ".dvc")):
        return str(dvc_root / ".dvc" / "tmp" / "site-cache")
    return os.path.join(tempfile.gettempdir(), f"apod-dvc-{uid}", "site-cache")


def child_env(
    base: Mapping[str, str], repo: Path, dvc_root: Path | None = None, uid: int | None = None
) -> dict[str, str]:
    env = {key: value for key, value in base.items() if key not in REPO_SELECTING}
    uid = os.getuid() if uid is None else uid
    if not _writable_dir(env.get("HOME")):
        env["HOME"] = tempfile.gettempdir()
    env.update(identity(base))
    user = user_name(env, uid)
    if user:
        env["USER"] = user
    with_git_config(env, [("safe.directory", name) for name in safe_directories(repo)])
    user_config_home = _value(base, "XDG_CONFIG_HOME") or os.path.join(env["HOME"], ".config")
    env["XDG_CONFIG_HOME"] = private_config_home(repo, user_config_home)
    if not _value(base, "DVC_GLOBAL_CONFIG_DIR"):
        env["DVC_GLOBAL_CONFIG_DIR"] = os.path.join(user_config_home, "dvc")
    env["GIT_TERMINAL_PROMPT"] = "0"
    env["DVC_NO_ANALYTICS"] = "1"
    if not _value(base, "DVC_SITE_CACHE_DIR"):
        env["DVC_SITE_CACHE_DIR"] = site_cache_dir(dvc_root, uid)
    return env
