"""The DVC remote a run pushes to: the repository's default, or APOD_DVC_REMOTE.

Config is read and written with DVC's own Config class, in process, so that a remote URL
never appears on a child's command line (it may carry a user and a token).
"""

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dvc.config import Config, ConfigError

from apod_common import exit_codes, redaction
from apod_common.errors import StepError
from apod_version import s3

log = logging.getLogger("version")

DEFAULT_REMOTE_NAME = "local"
# The name a remote elsewhere (an object store, an SSH server) gets, so that no log line
# calls an s3:// URL "local".
STORE_REMOTE_NAME = "store"
# Options of a remote's config section that are secrets, whichever kind of remote.
SECRET_OPTIONS = ("password", "passphrase", "secret_access_key", "session_token", "token")
# Set by the image: where the DVC remote volume is mounted. A local remote there (or
# below) must be a mounted volume, never the image's own directory.
REMOTE_VOLUME_ENV = "APOD_DVC_REMOTE_VOLUME"


@dataclass(frozen=True)
class Remote:
    name: str
    url: str
    options: dict[str, str] = field(default_factory=dict)  # the rest of its config section


def is_local(url: str) -> bool:
    return "://" not in url or url.startswith("file://")


def name_for(url: str) -> str:
    return DEFAULT_REMOTE_NAME if is_local(url) else STORE_REMOTE_NAME


def local_path(url: str) -> str:
    return url.removeprefix("file://")


def strip_userinfo(url: str) -> str:
    """The URL without its user[:password]@ part, for a config file that gets committed."""
    return re.sub(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/\s@]+@", r"\g<scheme>", url, count=1)


def _config(dvc_root: Path) -> Config:
    return Config(dvc_dir=str(dvc_root / ".dvc"))


def _config_error(exc: Exception) -> StepError:
    return StepError(f"DVC config: {exc}", exit_codes.BAD_INPUT)


def default_remote(dvc_root: Path) -> Remote | None:
    try:
        conf = _config(dvc_root)
    except ConfigError as exc:
        raise _config_error(exc) from exc
    name = conf["core"].get("remote")
    if not name:
        return None
    section = conf["remote"].get(name)
    if not section or not section.get("url"):
        raise StepError(
            f"the default DVC remote {name!r} has no url in {dvc_root / '.dvc'}",
            exit_codes.BAD_INPUT,
        )
    options = {key: str(value) for key, value in section.items() if key != "url"}
    redaction.remember(*(options.get(key) for key in SECRET_OPTIONS))
    return Remote(name=name, url=str(section["url"]), options=options)


def normalise(url: str) -> str:
    """A local path made absolute against the working directory, as a person means it."""
    return os.path.abspath(local_path(url)) if is_local(url) else url


def override(dvc_root: Path, url: str) -> None:
    """Point the default remote at `url` in .dvc/config.local (never committed): the
    default remote's URL when both are local paths or both elsewhere, else a remote named
    for the kind of `url` (`local` or `store`), made the default there."""
    url = normalise(url)
    current = default_remote(dvc_root)
    if current and normalise(current.url) == url:
        return
    same_kind = current is not None and is_local(current.url) == is_local(url)
    name = current.name if same_kind else name_for(url)
    try:
        with _config(dvc_root).edit("local") as local:
            local["core"]["remote"] = name
            local["remote"].setdefault(name, {})["url"] = url
    except (ConfigError, OSError) as exc:
        raise _config_error(exc) from exc
    log.info("DVC remote %r -> %s (.dvc/config.local)", name, url)


def configure_new_repo(dvc_root: Path, url: str) -> None:
    """The committed settings of a repository this step creates."""
    with _config(dvc_root).edit("repo") as repo:
        repo["core"]["autostage"] = "false"
        repo["core"]["analytics"] = "false"
        repo["core"]["remote"] = name_for(url)
        # s3://bucket/prefix: the endpoint and the key stay in the environment.
        repo["remote"][name_for(url)] = {"url": strip_userinfo(url)}
        # Group-writable cache, as the git side: pods of another uid in group 0 can follow.
        repo["cache"]["shared"] = "group"


def resolve(dvc_root: Path, url: str | None, environ: Mapping[str, str]) -> Remote:
    """The remote a run talks to: the default one, pointed at `url` (APOD_DVC_REMOTE)
    when given, checked before anything is added, committed or checked out."""
    if url:
        override(dvc_root, url)
    target = default_remote(dvc_root)
    if target is None:
        raise StepError(
            f"no default DVC remote in {dvc_root / '.dvc'}: set APOD_DVC_REMOTE or run "
            "`dvc remote add -d NAME URL`",
            exit_codes.BAD_INPUT,
        )
    check_reachable(target, environ)
    return target


def check_reachable(remote: Remote, environ: Mapping[str, str]) -> None:
    """Before anything is added or committed. An S3 remote must answer, know the key and
    have its bucket (apod_version.s3). A local remote must exist already: a missing
    directory is usually a volume that is not mounted, and pushing into the container's
    own filesystem would lose the data while git points at it."""
    if s3.is_s3(remote.url):
        s3.check_reachable(remote.name, remote.url, remote.options, environ)
        return
    if not is_local(remote.url):
        return
    path = local_path(remote.url)
    if not os.path.isdir(path):
        raise StepError(
            f"DVC remote {remote.name!r} is not reachable: directory {path} does not exist "
            "(volume not mounted? create it or set APOD_DVC_REMOTE)",
            exit_codes.UPSTREAM_UNAVAILABLE,
        )
    # The image keeps an empty /dvc-remote of its own (so that a fresh named volume
    # inherits its owner): that directory exists even when no volume is mounted on it.
    volume = os.environ.get(REMOTE_VOLUME_ENV)
    if volume and paths_within(path, volume) and not is_mount_point(volume):
        raise StepError(
            f"DVC remote {remote.name!r} is not reachable: no volume is mounted at {volume} "
            "(pushing into the container's own directory would lose the data)",
            exit_codes.UPSTREAM_UNAVAILABLE,
        )


def paths_within(path: str, directory: str) -> bool:
    path, directory = os.path.abspath(path), os.path.abspath(directory)
    return os.path.commonpath([path, directory]) == directory


def is_mount_point(path: str) -> bool:
    """A mount point, bind mounts of the same filesystem included (/proc/self/mountinfo)."""
    if os.path.ismount(path):
        return True
    try:
        with open("/proc/self/mountinfo", encoding="utf-8") as info:
            points = {fields[4] for fields in map(str.split, info) if len(fields) > 4}
    except OSError:
        return False
    return os.path.realpath(path) in points
