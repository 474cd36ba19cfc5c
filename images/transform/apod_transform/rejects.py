"""The rejected rows file: the date as given, the reason, and the original entry as JSON."""

import json
import re
from typing import Any

import pandas as pd

from apod_common.schema import REJECTED_COLUMNS
from apod_transform.reasons import printable

_SURROGATE = re.compile("[\ud800-\udfff]")


def _date_as_given(entry: Any) -> str:
    if not isinstance(entry, dict) or entry.get("date") is None:
        return ""
    date = entry["date"]
    if not isinstance(date, str):
        date = json.dumps(date, ensure_ascii=False, separators=(",", ":"))
    return printable(date)


def record_json(entry: Any) -> str:
    """Compact JSON of the entry; ASCII-escaped only when it holds lone surrogates."""
    text = json.dumps(entry, ensure_ascii=False, separators=(",", ":"))
    if _SURROGATE.search(text):
        text = json.dumps(entry, separators=(",", ":"))
    return text


def rejected_frame(entries: list[Any], reasons: pd.Series) -> pd.DataFrame:
    """`reasons` maps batch position to reason for the rejected rows only, in batch order."""
    rows = [
        (_date_as_given(entries[i]), reason, record_json(entries[i]))
        for i, reason in reasons.items()
    ]
    return pd.DataFrame(rows, columns=list(REJECTED_COLUMNS), dtype=object)
