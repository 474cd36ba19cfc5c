"""Secret values from Airflow connections, looked up only while a task runs.

Called from the Docker renderer's execute(); the values go straight into
DockerOperator's private_environment, which is neither templated nor rendered nor
serialized. Airflow masks a connection's password in task logs; the URI built here
is registered with the masker too.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode

from airflow.sdk import Connection
from airflow.sdk.exceptions import AirflowFailException, AirflowNotFoundException
from airflow.sdk.log import mask_secret

if TYPE_CHECKING:
    from apod_pipeline.steps import SecretEnv

log = logging.getLogger(__name__)

# Connection extras that are libpq connection parameters; anything else in the extras
# (Airflow's own keys such as "cursor") would make libpq refuse the URI.
LIBPQ_EXTRAS = (
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "connect_timeout",
    "application_name",
    "target_session_attrs",
    "options",
)


def resolve(ref: SecretEnv) -> str:
    """The value for `ref.env`, from connection `ref.connection` (or its fallback)."""
    try:
        conn = Connection.get(ref.connection)
    except AirflowNotFoundException:
        if ref.fallback is None:
            raise AirflowFailException(
                f"Airflow connection {ref.connection!r} is not defined; {ref.env} needs it "
                f"(set AIRFLOW_CONN_{ref.connection.upper()} or add it in the UI)"
            ) from None
        log.warning(
            "connection %r is not defined: %s uses the documented fallback",
            ref.connection,
            ref.env,
        )
        return ref.fallback
    if ref.kind == "password":
        if conn.password:
            return conn.password
        if ref.fallback is not None:
            log.warning(
                "connection %r has no password: %s uses the fallback", ref.connection, ref.env
            )
            return ref.fallback
        raise AirflowFailException(f"Airflow connection {ref.connection!r} has no password")
    if ref.kind == "login":
        if conn.login:
            return conn.login
        raise AirflowFailException(f"Airflow connection {ref.connection!r} has no login")
    if ref.kind == "postgres_uri":
        uri = postgres_uri(
            host=conn.host,
            port=conn.port,
            database=conn.schema,
            login=conn.login,
            password=conn.password,
            extra=conn.extra_dejson,
            conn_id=ref.connection,
        )
        mask_secret(uri)
        return uri
    raise ValueError(f"unknown secret kind {ref.kind!r}")


def postgres_uri(
    *,
    host: str | None,
    port: int | None,
    database: str | None,
    login: str | None,
    password: str | None,
    extra: dict | None = None,
    conn_id: str = "apod_db",
) -> str:
    """A libpq URI with every part percent-encoded, so any character in a password is safe."""
    missing = [name for name, value in (("host", host), ("schema", database)) if not value]
    if missing:
        # Names the empty fields, never the values.
        raise AirflowFailException(f"Airflow connection {conn_id!r} has no {' or '.join(missing)}")
    netloc = f"[{host}]" if ":" in host else quote(host, safe="")
    if port:
        netloc += f":{int(port)}"
    if login:
        userinfo = quote(login, safe="")
        if password:
            userinfo += ":" + quote(password, safe="")
        netloc = f"{userinfo}@{netloc}"
    query = {k: str(v) for k, v in (extra or {}).items() if k in LIBPQ_EXTRAS}
    uri = f"postgresql://{netloc}/{quote(database, safe='')}"
    return f"{uri}?{urlencode(query)}" if query else uri
