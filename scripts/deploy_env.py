#!/usr/bin/env python3
"""The deployments' env files: the one reader and the one secret generator (standard
library only). Compose's `.env` and Kubernetes' `k8s/.secrets.env` are both made here.

    deploy_env.py init FILE [--template T]   create FILE (0600) from T, or with only the
                                             secrets; give every empty secret a fresh
                                             random value; existing values are kept
    deploy_env.py get FILE NAME              print NAME's value (empty when absent)
    deploy_env.py set FILE NAME VALUE        set a setting that is not a secret

No secret is ever printed by `init` or accepted on a command line by `set`. The format is
what docker compose and kustomize's `envs:` both read: NAME=value lines, `#` comments.

Exit codes: 0 done, 2 usage or an unreadable FILE.
"""

from __future__ import annotations

import argparse
import base64
import os
import re
import secrets
import socket
import sys
from collections.abc import Callable
from pathlib import Path


def _token() -> str:
    # URL-safe alphabet: the passwords go into database URLs unescaped.
    return secrets.token_urlsafe(24)


def _jwt_secret() -> str:
    # 64 bytes: Airflow signs its tokens with HS512, and warns on every request about a
    # shorter key (RFC 7518 asks for at least the hash's size).
    return secrets.token_urlsafe(48)


def _fernet_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode("ascii")


def _access_key_id() -> str:
    # An S3 access key id is an identifier that logs and error messages may show; the
    # "apod" prefix tells whose it is, the random part keeps stacks apart.
    return "apod" + secrets.token_hex(8)


# Every secret either deployment needs -> how a fresh value is made.
GENERATED: dict[str, Callable[[], str]] = {
    "NASA_API_KEY": lambda: os.environ.get("NASA_API_KEY") or "DEMO_KEY",
    "POSTGRES_PASSWORD": _token,
    "AIRFLOW_DB_PASSWORD": _token,
    "APOD_ADMIN_PASSWORD": _token,
    "APOD_LOADER_PASSWORD": _token,
    "AIRFLOW_ADMIN_PASSWORD": _token,
    "AIRFLOW_JWT_SECRET": _jwt_secret,
    "AIRFLOW_API_SECRET_KEY": _token,
    "AIRFLOW_FERNET_KEY": _fernet_key,
    # The object store's one S3 key (images/objectstore), which the version step pushes with.
    "APOD_S3_ACCESS_KEY_ID": _access_key_id,
    "APOD_S3_SECRET_ACCESS_KEY": _token,
}

# Secrets you give when you want what they open (alerts: scripts/alert_connections.py);
# never generated, empty means off.
GIVEN = ("APOD_SMTP_PASSWORD", "APOD_ALERT_WEBHOOK_URL")

_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=(.*)$")


def _parse(line: str) -> tuple[str, str] | None:
    """(name, value) of a NAME=value line; None for comments, blanks and anything else."""
    match = _LINE.match(line)
    if not match or line.lstrip().startswith("#"):
        return None
    value = match.group(2).strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1]
    return match.group(1), value


def read_env(path: Path) -> dict[str, str]:
    """NAME -> value of an env file (the last line wins, as in docker compose)."""
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        parsed = _parse(line)
        if parsed:
            values[parsed[0]] = parsed[1]
    return values


def value(path: Path, name: str) -> str:
    """NAME's value in the file, empty when the file or the name is absent."""
    return read_env(path).get(name, "") if path.is_file() else ""


def _with_value(lines: list[str], name: str, new: str) -> list[str]:
    """The lines with NAME's last assignment set to `new`, or one appended."""
    for i in range(len(lines) - 1, -1, -1):
        parsed = _parse(lines[i])
        if parsed and parsed[0] == name:
            return [*lines[:i], f"{name}={new}", *lines[i + 1 :]]
    return [*lines, f"{name}={new}"]


def _write_private(path: Path, lines: list[str]) -> None:
    """Replace the file in one step, readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write("".join(f"{line}\n" for line in lines))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def init(path: Path, template: Path | None = None, header: str = "") -> list[str]:
    """Make sure every secret has a value; returns the names that were generated."""
    if path.exists():
        lines = path.read_text(encoding="utf-8").splitlines()
    elif template is not None:
        lines = template.read_text(encoding="utf-8").splitlines()
    else:
        lines = header.splitlines()
    present = {p[0]: p[1] for p in map(_parse, lines) if p}
    added = [name for name in GENERATED if not present.get(name)]
    for name in added:
        lines = _with_value(lines, name, GENERATED[name]())
    if added or not path.exists() or (path.stat().st_mode & 0o077):
        _write_private(path, lines)
    return added


def set_value(path: Path, name: str, new: str) -> None:
    if name in GENERATED or name in GIVEN:
        raise ValueError(f"{name} is a secret: edit {path} instead")
    _write_private(path, _with_value(path.read_text(encoding="utf-8").splitlines(), name, new))


# Environment variables that would point the compose scripts at another stack than the
# one their env file names (they prefer the environment's values to the file's).
STEERING_PREFIXES = ("APOD_", "COMPOSE_", "AIRFLOW_", "DOCKER_GID")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def new_stack(path: Path, prefix: str, **settings: str) -> dict[str, str]:
    """Write the env file of a compose stack beside any other (docker-compose.yml's
    parameters: its own project, network, volumes and free loopback ports, profile
    offline), plus `settings`; scripts/compose-env.sh adds the secrets."""
    name = f"{prefix}-{secrets.token_hex(3)}"
    values = {
        "APOD_COMPOSE_PROJECT": name,
        "APOD_DOCKER_NETWORK": f"{name}-net",
        "APOD_PGDATA_VOLUME": f"{name}-pgdata",
        "APOD_DATA_VOLUME": f"{name}-data",
        "APOD_OBJECTSTORE_VOLUME": f"{name}-objectstore",
        "APOD_UI_PORT": str(free_port()),
        "APOD_PG_PORT": str(free_port()),
        "APOD_S3_PORT": str(free_port()),
        "APOD_ALERTS_PORT": str(free_port()),
        "COMPOSE_PROFILES": "offline",
        **settings,
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write("".join(f"{key}={value}\n" for key, value in values.items()))
    return values


def stack_environ(env_file: Path, environ: dict[str, str] | None = None) -> dict[str, str]:
    """An environment for scripts/compose-*.sh that names the stack of env_file only."""
    environ = dict(os.environ if environ is None else environ)
    kept = {k: v for k, v in environ.items() if not k.startswith(STEERING_PREFIXES)}
    return {**kept, "APOD_ENV_FILE": str(env_file)}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    init_cmd = sub.add_parser("init", help="create FILE or fill in the secrets it lacks")
    init_cmd.add_argument("file", type=Path)
    init_cmd.add_argument("--template", type=Path, help="what a new FILE starts from")
    get_cmd = sub.add_parser("get", help="print NAME's value")
    get_cmd.add_argument("file", type=Path)
    get_cmd.add_argument("name")
    set_cmd = sub.add_parser("set", help="set a setting that is not a secret")
    set_cmd.add_argument("file", type=Path)
    set_cmd.add_argument("name")
    set_cmd.add_argument("value")
    args = parser.parse_args(argv)
    try:
        if args.command == "init":
            added = init(args.file, args.template)
            if added:
                print(f"deploy_env: generated {', '.join(added)} in {args.file}", file=sys.stderr)
        elif args.command == "get":
            print(value(args.file, args.name))
        else:
            set_value(args.file, args.name, args.value)
    except (OSError, ValueError) as exc:
        print(f"deploy_env: {args.file}: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
