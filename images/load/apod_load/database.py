"""Which Postgres to talk to, connecting to it, and what its errors mean for the exit code."""

import contextlib
import getpass
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
from psycopg import errors
from psycopg.conninfo import conninfo_to_dict

from apod_common import exit_codes, redaction, settings
from apod_common.errors import StepError

log = logging.getLogger("load")

CONNECT_TIMEOUT_SECONDS = 10
APPLICATION_NAME = "apod-load"
_MAX_CAUSE = 300

# Connection failures that retrying will not cure: wrong credentials, unknown database,
# pg_hba refusal. Everything else (refused, timeout, DNS, server starting) is retryable.
_REFUSALS = (
    "password authentication failed",
    "authentication failed",
    "no password supplied",
    "does not exist",
    "pg_hba.conf",
    "permission denied",
    "not permitted to log in",
)


@dataclass(frozen=True)
class Target:
    """Where to connect; `conninfo` "" leaves everything to libpq's PG* variables."""

    conninfo: str
    host: str
    port: str
    dbname: str
    user: str

    def __str__(self) -> str:
        return f"{self.host}:{self.port}/{self.dbname}"


def target_from_env() -> Target:
    """APOD_DATABASE_URL (or _FILE), else libpq's own PGHOST/PGPORT/PGUSER/... variables."""
    conninfo = settings.secret("APOD_DATABASE_URL") or ""
    params: dict = {}
    if conninfo:
        try:
            params = conninfo_to_dict(conninfo)
        except psycopg.ProgrammingError:
            # libpq's message may quote the string it could not parse: do not repeat it.
            raise StepError(
                "APOD_DATABASE_URL is not a valid PostgreSQL connection URL", exit_codes.USAGE
            ) from None
    # The password as libpq decoded it ("%40" is "@") may show up in a message on its own.
    redaction.remember(params.get("password"))
    env = os.environ.get
    host = str(params.get("host") or env("PGHOST") or "localhost").split(",")[0]
    user = str(params.get("user") or env("PGUSER") or _os_user())
    return Target(
        conninfo=conninfo,
        host=host,
        port=str(params.get("port") or env("PGPORT") or "5432").split(",")[0],
        dbname=str(params.get("dbname") or env("PGDATABASE") or user),
        user=user,
    )


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a uid without a passwd entry (containers run as 10001)
        return "postgres"


def connect(target: Target):
    """An autocommit connection (transactions are explicit), or exit 4/5 with the reason."""
    log.info("connecting to Postgres at %s as %s", target, target.user)
    try:
        return psycopg.connect(
            target.conninfo,
            autocommit=True,
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            client_encoding="UTF8",
            application_name=APPLICATION_NAME,
        )
    except psycopg.OperationalError as exc:
        cause = _cause(exc)
        if any(marker in cause.lower() for marker in _REFUSALS):
            raise StepError(
                f"Postgres at {target} refused user {target.user}: {cause}",
                exit_codes.UPSTREAM_REFUSED,
            ) from None
        raise StepError(
            f"cannot connect to Postgres at {target}: {cause}", exit_codes.UPSTREAM_UNAVAILABLE
        ) from None


@contextlib.contextmanager
def session(target: Target, doing: str) -> Iterator:
    """A connection for the block; database errors in it become classified StepErrors."""
    conn = connect(target)
    try:
        yield conn
    except psycopg.Error as exc:
        raise step_error(exc, target, doing) from None
    finally:
        conn.close()


def _cause(exc: Exception) -> str:
    """libpq's reason in one line, e.g. 'Connection refused' or 'timeout expired'."""
    # 'connection to server at "h" (1.2.3.4), port 5432 failed: Connection refused\n\tIs
    # the server running...': the first line's reason is the news, the rest is advice.
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    text = text.rsplit(" failed: ", 1)[-1]
    text = " ".join(text.replace("FATAL:", "").split())
    # Redacted before it is cut: a cut could leave half a secret that no rule recognises.
    return redaction.redact(text)[:_MAX_CAUSE]


def step_error(exc: Exception, target: Target, doing: str) -> StepError:
    """Classify an error raised while working in the database."""
    diag = getattr(exc, "diag", None)
    message = (diag.message_primary if diag else None) or str(exc)
    context = (diag.context if diag else None) or ""
    detail = (diag.message_detail if diag else None) or ""
    if detail.startswith("Failing row contains ("):
        # The row starts with its date; the rest may be a megabyte of explanation.
        first = detail.removeprefix("Failing row contains (").split(",", 1)[0]
        message = f"{message} (row with date {first[:40]})"
    elif context:
        # COPY's context names the line and column ("COPY stage, line 7, column date: ...").
        message = f"{message} ({context.splitlines()[0][:_MAX_CAUSE]})"
    message = redaction.redact(" ".join(message.split()))[: 2 * _MAX_CAUSE]
    if isinstance(exc, errors.DataError | errors.IntegrityError):
        return StepError(
            f"Postgres rejected the batch while {doing}: {message}", exit_codes.BAD_INPUT
        )
    if isinstance(exc, errors.InsufficientPrivilege):
        return StepError(
            f"permission denied on Postgres at {target} while {doing}: {message}",
            exit_codes.UPSTREAM_REFUSED,
        )
    if isinstance(exc, errors.LockNotAvailable):
        return StepError(
            f"gave up waiting for a lock while {doing} (another load still running?): {message}",
            exit_codes.UPSTREAM_UNAVAILABLE,
        )
    if isinstance(exc, errors.OperationalError):
        return StepError(
            f"lost Postgres at {target} while {doing}: {message}",
            exit_codes.UPSTREAM_UNAVAILABLE,
        )
    return StepError(f"Postgres error at {target} while {doing}: {message}", exit_codes.FAILURE)
