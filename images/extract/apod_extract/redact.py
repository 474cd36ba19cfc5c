"""Keep the API key out of everything printed: log lines, failure reasons, the manifest."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, quote, quote_plus, urlencode, urlsplit, urlunsplit

MASK = "***"
_KEY_PARAM = re.compile(r"(api_key=)[^&\s\"'<>]*", re.IGNORECASE)


class Redactor:
    def __init__(self, secrets: Iterable[str | None]):
        forms: set[str] = set()
        for secret in secrets:
            if secret:
                forms |= {secret, quote(secret, safe=""), quote_plus(secret)}
        # Longest first, so a secret's encoded form is not half-replaced by a shorter one.
        self._forms = sorted(forms, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        text = _KEY_PARAM.sub(rf"\1{MASK}", str(text))
        for form in self._forms:
            text = text.replace(form, MASK)
        return text


class RedactingFilter(logging.Filter):
    """Applied to the log handlers, so no library can print the key by accident."""

    def __init__(self, redactor: Redactor):
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.redactor(record.getMessage())
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = self.redactor(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


def install(redactor: Redactor) -> None:
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactingFilter(redactor))


def public_url(url: str) -> str:
    """`url` without credentials: no user:password@ and no api_key in the query."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port:
        host = f"{host}:{parts.port}"
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k.lower() != "api_key"])
    return urlunsplit((parts.scheme, host, parts.path, query, ""))
