"""Vectorised normalisers for the text fields; each takes and returns a pandas Series.

Missing values stay missing (NaN/None) through every function here.
"""

import pandas as pd

# Old APOD explanations use lone "\r" as line breaks. Free text gets "\n" instead, the
# dialect's one line end: same meaning, and no reader has to know three kinds of line ends.
_CARRIAGE_RETURN = r"\r\n?"

# Whitespace inside a URL is never meaningful; percent-encode it instead of dropping it.
_URL_ESCAPES = {" ": "%20", "\t": "%09", "\n": "%0A", "\r": "%0D"}


def one_line(text: pd.Series) -> pd.Series:
    """Titles and credits: runs of whitespace (\\r\\n included) become one space, ends trimmed."""
    return text.str.replace(r"\s+", " ", regex=True).str.strip()


def prose(text: pd.Series) -> pd.Series:
    """Explanations: verbatim (HTML included) but for the outer whitespace and CR line breaks."""
    return unix_newlines(text.str.strip())


def unix_newlines(text: pd.Series) -> pd.Series:
    return text.str.replace(_CARRIAGE_RETURN, "\n", regex=True)


def keyword(text: pd.Series) -> pd.Series:
    return text.str.strip().str.lower()


def url(text: pd.Series) -> pd.Series:
    """Trim, give protocol-relative URLs https, percent-encode inner whitespace; "" is missing."""
    text = text.str.strip().str.replace(r"^//", "https://", regex=True)
    text = text.str.replace("[ \t\n\r]", lambda m: _URL_ESCAPES[m.group()], regex=True)
    return text.mask(text.eq(""))


def with_default(text: pd.Series, default: str) -> pd.Series:
    return text.mask(text.isna() | text.eq(""), default)
