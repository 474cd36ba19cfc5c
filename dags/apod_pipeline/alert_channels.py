"""Where alerts go: e-mail through the smtp provider's SmtpNotifier (connection
`apod_smtp`) and a webhook (connection `apod_alert_webhook`). Imported by alerts.send
only when an alert goes out, never when a DAG is parsed.

Each channel returns False when it is off: its connection is absent, or has no host (e-mail)
or no URL (webhook), or no recipient (e-mail). Both deployments always define the two
connections and leave them empty until the settings are given (compose/README.md).

`apod_smtp`: host, port, login, password (login only when the server needs one), and the
extras `to` (recipients, comma-separated), `from_email` (default DEFAULT_FROM, or the
login when that is an address) and `security`: `ssl` (TLS from the first byte, SMTPS),
`starttls` (plain, then STARTTLS: refused when the server cannot) or `none`; empty: ssl
on port 465, starttls on any other. A connection without `security` but with the
provider's own `disable_ssl`/`disable_tls` extras is read the provider's way.

`apod_alert_webhook`: the URL in the password field (it often holds a token, and Airflow
masks passwords), or in the host field. The body is one JSON object: `text` (the
message, as Slack, Mattermost or Teams incoming webhooks show it) and `alert` (the same
fields by name, for a receiver of one's own).
"""

from __future__ import annotations

import html
import json
import urllib.error
import urllib.request
from functools import cached_property
from urllib.parse import urlsplit

from airflow.providers.smtp.hooks.smtp import SmtpHook
from airflow.providers.smtp.notifications.smtp import SmtpNotifier
from airflow.sdk import Connection
from airflow.sdk.exceptions import AirflowNotFoundException
from airflow.sdk.log import mask_secret

from apod_pipeline.alerts import SMTP_CONN_ID, WEBHOOK_CONN_ID, Alert

DEFAULT_FROM = "apod-pipeline@localhost"
SECURITY = ("ssl", "starttls", "none")
SMTPS_PORT = 465
WEBHOOK_TIMEOUT = 10  # seconds; an alert must not hold a worker slot for long
SMTP_TIMEOUT = 20
SMTP_RETRIES = 1  # the provider's default of 5 would keep a dead server's task busy


def connection(conn_id: str) -> Connection | None:
    try:
        return Connection.get(conn_id)
    except AirflowNotFoundException:
        return None


def security_of(conn: Connection) -> str | None:
    """ssl, starttls or none; None: the provider's own extras decide."""
    extra = conn.extra_dejson
    mode = str(extra.get("security") or "").strip().lower()
    if mode:
        if mode not in SECURITY:
            raise ValueError(f"connection {SMTP_CONN_ID!r}: security must be one of {SECURITY}")
        return mode
    if "disable_ssl" in extra or "disable_tls" in extra:
        return None
    return "ssl" if conn.port == SMTPS_PORT else "starttls"


class AlertSmtpHook(SmtpHook):
    """SmtpHook that reads TLS from the one `security` word (compose and Kubernetes write
    the connection as text, where the provider's two booleans cannot be derived)."""

    @property
    def use_ssl(self) -> bool:
        mode = security_of(self.conn)
        return super().use_ssl if mode is None else mode == "ssl"

    @property
    def smtp_starttls(self) -> bool:
        mode = security_of(self.conn)
        return super().smtp_starttls if mode is None else mode == "starttls"

    @property
    def smtp_retry_limit(self) -> int:
        return int(self.conn.extra_dejson.get("retry_limit", SMTP_RETRIES))

    @property
    def timeout(self) -> int:
        return int(self.conn.extra_dejson.get("timeout", SMTP_TIMEOUT))


class AlertSmtpNotifier(SmtpNotifier):
    @cached_property
    def hook(self) -> SmtpHook:
        return AlertSmtpHook(smtp_conn_id=self.smtp_conn_id, auth_type=self.auth_type)


def email(alert: Alert) -> bool:
    conn = connection(SMTP_CONN_ID)
    to = str((conn.extra_dejson.get("to") if conn else "") or "").strip()
    if conn is None or not conn.host or not to:
        return False
    sender = str(conn.extra_dejson.get("from_email") or "").strip()
    if not sender:
        sender = conn.login if conn.login and "@" in conn.login else DEFAULT_FROM
    body = "".join(
        f"<tr><th align='left'>{html.escape(label)}</th><td>{html.escape(value)}</td></tr>"
        for label, value in alert.lines()
    )
    notifier = AlertSmtpNotifier(
        to=to,
        from_email=sender,
        subject=alert.subject,
        html_content=f"<p>{html.escape(alert.subject)}</p><table>{body}</table>",
        smtp_conn_id=SMTP_CONN_ID,
    )
    # notify() and not __call__: the subject and body are final text, and rendering them
    # as Jinja templates would run whatever a step's reason happens to contain.
    notifier.notify({})
    return True


def webhook(alert: Alert) -> bool:
    conn = connection(WEBHOOK_CONN_ID)
    url = str((conn.password or conn.host or "") if conn else "").strip()
    if not url:
        return False
    mask_secret(url)
    if urlsplit(url).scheme not in ("http", "https"):
        raise ValueError(f"connection {WEBHOOK_CONN_ID!r} must hold an http(s) URL")
    payload = {
        "text": alert.text,
        "alert": {"event": alert.event, **{label: value for label, value in alert.lines()}},
    }
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked above
        url,
        data=json.dumps(payload).encode("utf-8"),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT) as response:  # noqa: S310
            response.read()
    except urllib.error.HTTPError as exc:  # its text holds no URL, only the status
        raise RuntimeError(f"the webhook answered HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise RuntimeError(f"the webhook could not be reached: {reason}") from None
    return True


CHANNELS = (email, webhook)
