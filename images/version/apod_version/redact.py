"""Keep credentials out of logs: remote URLs may carry a user and a token."""

import re

_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/\s@]+@")


def redact(text: str) -> str:
    """Replace the user[:password]@ part of every URL in `text` with ***@."""
    return _USERINFO.sub(r"\g<scheme>***@", text)


def strip_userinfo(url: str) -> str:
    """The URL without its user[:password]@ part, for a config file that gets committed."""
    return _USERINFO.sub(r"\g<scheme>", url, count=1)
