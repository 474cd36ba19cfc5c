"""Keep database passwords out of every message, log line and summary."""

import logging
import re
from collections.abc import Iterable
from urllib.parse import quote

MASK = "***"

# scheme://user:password@host -> scheme://user:***@host. Up to the last '@' of the word:
# a careless password may hold '/', ':' or even an unencoded '@'.
_URL_PASSWORD = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*):[^\s\"']*@")
# password=... in a libpq key/value string or a URL query (?password=...&).
_KEYWORD_PASSWORD = re.compile(
    r"(?P<key>\bpassword\s*=\s*)(?:'(?:[^'\\]|\\.)*'|[^\s&]+)", re.IGNORECASE
)
# Secrets shorter than this are only masked by the two patterns above: blindly replacing
# "ab" everywhere would mangle messages without protecting anything real.
_MIN_LITERAL = 4


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """`text` with URL passwords, password=... pairs and the given secret values masked."""
    # Known values first: masking the URL pattern first could split a value in two.
    for secret in sorted({s for s in secrets if s and len(s) >= _MIN_LITERAL}, key=len)[::-1]:
        text = text.replace(secret, MASK).replace(quote(secret, safe=""), MASK)
    text = _URL_PASSWORD.sub(rf"\g<head>:{MASK}@", text)
    return _KEYWORD_PASSWORD.sub(rf"\g<key>{MASK}", text)


class RedactingFilter(logging.Filter):
    """Masks secrets in every record a handler emits, whoever logged it."""

    def __init__(self, secrets: Iterable[str | None] = ()):
        super().__init__()
        self.secrets = tuple(s for s in secrets if s)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.secrets)
        record.msg, record.args = redact(message, self.secrets), None
        return True


def install(secrets: Iterable[str | None] = ()) -> None:
    """Attach a RedactingFilter to every handler of the root logger."""
    secrets = tuple(secrets)
    for handler in logging.getLogger().handlers:
        handler.filters = [f for f in handler.filters if not isinstance(f, RedactingFilter)]
        handler.addFilter(RedactingFilter(secrets))
