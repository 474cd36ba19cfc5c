"""Settings from the environment; secrets also from files (`<NAME>_FILE`).

Secrets never come from the command line. A deployment that mounts secrets as files
(Kubernetes Secret volumes, Docker secrets) sets e.g. NASA_API_KEY_FILE instead of
NASA_API_KEY. Every secret read here is handed to the redactor, so that no output shows it.

The run id (`run_id`) is every step's: --run-id, else $APOD_RUN_ID, else DEFAULT_RUN_ID.
The steps are separate processes that find each other's files only through it (it names
the batch folders, layout.batch_name), so the default is a fixed name, not one made up
per process (a time-stamped default would differ between extract and the transform run
after it). A rerun under the same id resumes that batch, as extract's failure message
says; a fresh fetch of the same days wants a new id (or extract's --refetch). The by-hand
runner (dags/apod_pipeline/by_hand.py, `make steps`) uses the same default; a DAG test
keeps the two equal. The id is written into every staged row, the table's provenance and
the commit message, so it must be one printable line.
"""

import os
import re
from pathlib import Path

from apod_common import exit_codes, redaction
from apod_common.errors import StepError

DEFAULT_DATA_DIR = "/data"
DEFAULT_RUN_ID = "manual"


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
    """The run id (see above): non-empty printable text, or a usage error."""
    value = cli_value or env("APOD_RUN_ID", DEFAULT_RUN_ID)
    if not value.strip() or re.search(r"[\x00-\x1f\x7f]", value):
        raise StepError("the run id must be non-empty printable text", exit_codes.USAGE)
    return value
