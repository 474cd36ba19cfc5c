"""Settings from the environment; secrets also from files (`<NAME>_FILE`).

Secrets never come from the command line. A deployment that mounts secrets as files
(Kubernetes Secret volumes, Docker secrets) sets e.g. NASA_API_KEY_FILE instead of
NASA_API_KEY. Every secret read here is handed to the redactor, so that no output shows it.
"""

import os
from pathlib import Path

from apod_common import exit_codes, redaction
from apod_common.errors import StepError

DEFAULT_DATA_DIR = "/data"


def env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def secret(name: str, default: str | None = None) -> str | None:
    """Read a secret from $NAME, or from the file named by $NAME_FILE; never printed."""
    value = env_or_file(name)
    redaction.remember(value)
    return default if value is None else value


def env_or_file(name: str, default: str | None = None) -> str | None:
    """$NAME, or the content of the file named by $NAME_FILE (for values that are not
    secret as a whole, such as a remote URL whose credentials the redactor masks anyway)."""
    file_name = env(f"{name}_FILE")
    if file_name:
        try:
            return Path(file_name).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise StepError(
                f"cannot read {name}_FILE ({file_name}): {exc.strerror}", exit_codes.USAGE
            ) from exc
    return env(name, default)


def data_dir(cli_value: str | None = None) -> Path:
    return Path(cli_value or env("APOD_DATA_DIR", DEFAULT_DATA_DIR))


def run_id(cli_value: str | None = None) -> str:
    return cli_value or env("APOD_RUN_ID", "manual")
