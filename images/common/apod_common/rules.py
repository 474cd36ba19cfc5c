"""What makes a row valid, stated once: transform rejects the raw entries that break a
rule (each with its reason), load checks the staged batch against the rules the stores
enforce, and the Postgres table's constraints say the same (load's tables.py).

Rows are normalised text columns (schema.CONTENT_COLUMNS); a missing value is NaN/None
(transform's frames) or "" (a CSV read back): both count as missing.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from apod_common.schema import FIRST_APOD_DATE, MEDIA_TYPES

FIRST_DATE = FIRST_APOD_DATE.isoformat()
NEEDS_URL = ("image", "video")
_DATE_SHAPE = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])


def missing(values: pd.Series) -> pd.Series:
    return values.isna() | values.eq("")


def real_dates(dates: pd.Series) -> pd.Series:
    """YYYY-MM-DD strings of days that exist. Vectorised, with no clock and no pandas
    Timestamp bounds, so the answer is the same on every pandas version."""
    shaped = dates.str.fullmatch(_DATE_SHAPE, na=False)
    real = shaped.copy()
    if shaped.any():
        text = dates[shaped]
        year = text.str.slice(0, 4).astype(int).to_numpy()
        month = text.str.slice(5, 7).astype(int).to_numpy()
        day = text.str.slice(8, 10).astype(int).to_numpy()
        leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
        month_ok = (month >= 1) & (month <= 12)
        last_day = _DAYS_IN_MONTH[np.where(month_ok, month, 0)] + (leap & (month == 2))
        real[shaped] = (year >= 1) & month_ok & (day >= 1) & (day <= last_day)
    return real


@dataclass(frozen=True)
class Rule:
    kind: str  # what is wrong, as a reject reason and in load's message
    broken: Callable[[pd.DataFrame], pd.Series]  # rows -> True where the rule is broken
    stored: bool  # enforced by the stores too (the table refuses such a row)
    shows: str | None = None  # the column whose value a message quotes


def _media(rows: pd.DataFrame) -> pd.Series:
    return rows["media_type"]


# In order: a row's reason is the first rule it breaks.
RULES = (
    Rule("missing date", lambda rows: missing(rows["date"]), stored=True),
    Rule(
        "invalid date",
        lambda rows: ~missing(rows["date"]) & ~real_dates(rows["date"]),
        stored=True,
        shows="date",
    ),
    Rule(
        f"date before {FIRST_DATE}",
        lambda rows: real_dates(rows["date"]) & rows["date"].lt(FIRST_DATE),
        stored=False,
    ),
    Rule("missing title", lambda rows: missing(rows["title"]), stored=True),
    Rule("missing media_type", lambda rows: missing(_media(rows)), stored=True),
    Rule(
        "unknown media_type",
        lambda rows: ~missing(_media(rows)) & ~_media(rows).isin(MEDIA_TYPES),
        stored=True,
        shows="media_type",
    ),
    Rule(
        "missing url",
        lambda rows: _media(rows).isin(NEEDS_URL) & missing(rows["url"]),
        stored=False,
        shows="media_type",
    ),
)
STORED_RULES = tuple(rule for rule in RULES if rule.stored)
