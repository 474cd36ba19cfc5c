"""The alert channels of a test: the project's alert catcher (apod-alertcatcher: aiosmtpd's
SMTP server and a standard-library webhook receiver) in-process on 127.0.0.1, and the
two connections a deployment would define for it, made by scripts/alert_connections.py
from the same settings an operator writes into `.env`."""

from __future__ import annotations

import secrets

import alert_connections

from apod_alertcatcher.catcher import AlertCatcher

__all__ = ["AlertCatcher", "alert_settings", "connection_env"]


def alert_settings(catcher: AlertCatcher, login: tuple[str, str] | None = None) -> dict[str, str]:
    """`.env`'s alert settings pointed at the catcher; the webhook's path holds a token,
    as a Slack URL does, so a test can look for it where it must not be."""
    settings = {
        "APOD_ALERT_WEBHOOK_URL": f"{catcher.url}/hooks/{secrets.token_hex(12)}",
        "APOD_ALERT_EMAIL_TO": "night-ops@example.org",
        "APOD_SMTP_HOST": catcher.host,
        "APOD_SMTP_PORT": str(catcher.smtp_port),
        "APOD_SMTP_SECURITY": "none",  # the catcher offers no TLS
    }
    if login:
        settings |= {"APOD_SMTP_USER": login[0], "APOD_SMTP_PASSWORD": login[1]}
    assert alert_connections.problems(settings) == []
    return settings


def connection_env(settings: dict[str, str]) -> dict[str, str]:
    """The AIRFLOW_CONN_* variables both deployments give Airflow for these settings."""
    return alert_connections.connections(settings)
