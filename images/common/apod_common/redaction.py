"""One secret redactor for every step; `apod_common.runner.run` puts it in front of everything a
step prints: log records (their tracebacks too), the JSON summary and the one-line reason.

What it masks, as `***`:
- the values of the secrets the process holds: every variable named like a secret
  (SECRET_VARIABLE) and the file its `<NAME>_FILE` names, read at start, and every value
  `settings.secret` reads later; raw, percent-encoded and form-encoded. Values shorter
  than MIN_LITERAL are left to the patterns below: replacing "db" everywhere would
  mangle every message without protecting anything real;
- the user-info of a URL (`scheme://user:password@`, and `scheme://token@`, where the
  user name itself is the credential), up to the last "@" of the word, since a careless
  password may hold "/", ":" or "@";
- `password=...` (libpq key/value strings, URL queries) and `api_key=...` values.

Files are not this module's business: what a step writes to a file it strips itself
(extract's manifest URL, version's committed remote URL).
"""

import contextlib
import logging
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from urllib.parse import quote, quote_plus

MASK = "***"
MIN_LITERAL = 4
SECRET_VARIABLE = re.compile(
    r"^(NASA_API_KEY|APOD_DATABASE_URL|PGPASSWORD"
    r"|.+_(PASSWORD|TOKEN|SECRET|SECRET_KEY|SECRET_ACCESS_KEY|API_KEY))$"
)

_URL_USERINFO = re.compile(
    r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?:[^/\s:@]*:[^\s\"']*|[^/\s:@\"']+)@"
)
_KEY_VALUE = re.compile(
    r"(?P<key>(?:\bpassword|api_key)\s*=\s*)(?:'(?:[^'\\]|\\.)*'|[^\s&]+)", re.IGNORECASE
)


class Redactor:
    def __init__(self, secrets: Iterable[str | None] = ()):
        self._forms: list[str] = []
        self.add(*secrets)

    def add(self, *secrets: str | None) -> None:
        forms = set(self._forms)
        for secret in secrets:
            if secret and len(secret) >= MIN_LITERAL:
                forms |= {secret, quote(secret, safe=""), quote_plus(secret)}
        # Longest first, so that no shorter form cuts a longer one in half.
        self._forms = sorted(forms, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        # Known values first: a pattern applied first could split a value in two.
        text = str(text)
        for form in self._forms:
            text = text.replace(form, MASK)
        text = _URL_USERINFO.sub(rf"\g<scheme>{MASK}@", text)
        return _KEY_VALUE.sub(rf"\g<key>{MASK}", text)

    def value(self, value):
        """`value` (a summary: dicts, lists, strings, numbers) with every string redacted."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            return {key: self.value(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(item) for item in value]
        return value


_process = Redactor()


def redact(text: str) -> str:
    """`text` as the process's redactor masks it."""
    return _process(text)


def redact_value(value):
    return _process.value(value)


def remember(*secrets: str | None) -> None:
    """Mask these values from now on, wherever they appear."""
    _process.add(*secrets)


def secrets_in(environ: Mapping[str, str]) -> list[str]:
    """The values of the secret variables in `environ`, and of the files their _FILE names."""
    values = []
    for name, value in environ.items():
        base = name.removesuffix("_FILE")
        if not SECRET_VARIABLE.match(base):
            continue
        if base == name:
            values.append(value)
            continue
        # Unreadable: the step that needs the value reports why.
        with contextlib.suppress(OSError, UnicodeDecodeError):
            values.append(Path(value).read_text(encoding="utf-8").strip())
    return values


def remember_environment(environ: Mapping[str, str] = os.environ) -> None:
    remember(*secrets_in(environ))


class RedactingFilter(logging.Filter):
    """On a handler: masks every record it emits, whoever logged it, tracebacks included."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = _process(record.getMessage()), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.exc_info = None
        if record.exc_text:
            record.exc_text = _process(record.exc_text)
        if record.stack_info:
            record.stack_info = _process(record.stack_info)
        return True
