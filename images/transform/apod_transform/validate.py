"""Turn raw entries into normalised columns and give every bad row its reason, vectorised."""

from typing import Any

import numpy as np
import pandas as pd

from apod_common.schema import CONTENT_COLUMNS, FIRST_APOD_DATE, MEDIA_TYPES
from apod_transform import clean
from apod_transform.reasons import Reasons, json_type_name, show

FIRST_DATE = FIRST_APOD_DATE.isoformat()
NEEDS_URL = ("image", "video")
URL_COLUMNS = ("url", "hdurl", "thumbnail_url")
_DATE_SHAPE = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])


def raw_frame(entries: list[Any], reasons: Reasons) -> pd.DataFrame:
    """One object column per known field, extra keys dropped; non-objects get their reason."""
    kinds = pd.Series([type(e) for e in entries], dtype=object)
    is_object = kinds.eq(dict)
    reasons.add(
        ~is_object,
        lambda idx: "entry is not a JSON object (" + kinds[idx].map(json_type_name) + ")",
    )
    records = [e if isinstance(e, dict) else {} for e in entries]
    return pd.DataFrame(records, columns=list(CONTENT_COLUMNS), dtype=object)


def strings_only(frame: pd.DataFrame, reasons: Reasons) -> pd.DataFrame:
    """Keep the string values; reject non-strings, NUL bytes and lone surrogates.

    JSON null counts as absent: required fields then fail as "missing <field>".
    """
    text = pd.DataFrame(index=frame.index)
    for name in CONTENT_COLUMNS:
        kinds = frame[name].map(type)
        is_str = kinds.eq(str)
        reasons.add(
            frame[name].notna() & ~is_str,
            lambda idx, name=name, kinds=kinds: (
                f"{name} is not a string (" + kinds[idx].map(json_type_name) + ")"
            ),
        )
        text[name] = frame[name].where(is_str)
    for name in CONTENT_COLUMNS:
        column = text[name]
        if _clean_text("".join(column.dropna())):
            continue  # one C-speed pass over the column spares the per-value scans below
        # Postgres text cannot hold NUL.
        reasons.add(column.str.contains("\x00", regex=False, na=False), f"NUL byte in {name}")
        # Valid JSON ("\ud800") but not encodable as UTF-8: the row could not be written.
        reasons.add(
            column.str.contains("[\ud800-\udfff]", regex=True, na=False),
            f"invalid unicode (lone surrogate) in {name}",
        )
    return text


def _clean_text(text: str) -> bool:
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def normalise(text: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame(index=text.index)
    out["date"] = text["date"]
    out["title"] = clean.one_line(text["title"])
    out["explanation"] = clean.prose(text["explanation"])
    out["media_type"] = clean.keyword(text["media_type"])
    for name in URL_COLUMNS:
        out[name] = clean.url(text[name])
    out["copyright"] = clean.one_line(text["copyright"])
    out["service_version"] = clean.with_default(clean.unix_newlines(text["service_version"]), "v1")
    return out[list(CONTENT_COLUMNS)]


def _real_calendar_date(dates: pd.Series) -> pd.Series:
    """For YYYY-MM-DD strings: does the day exist? (Vectorised; no clock, no pandas Timestamp
    bounds, so the answer is the same on every pandas version.)"""
    year = dates.str.slice(0, 4).astype(int).to_numpy()
    month = dates.str.slice(5, 7).astype(int).to_numpy()
    day = dates.str.slice(8, 10).astype(int).to_numpy()
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    month_ok = (month >= 1) & (month <= 12)
    last_day = _DAYS_IN_MONTH[np.where(month_ok, month, 0)] + (leap & (month == 2))
    return pd.Series((year >= 1) & month_ok & (day >= 1) & (day <= last_day), index=dates.index)


def check_fields(text: pd.DataFrame, rows: pd.DataFrame, reasons: Reasons) -> None:
    """Reasons for normalised rows: dates, required fields, media type, URL presence."""
    date = rows["date"]
    reasons.add(date.isna() | date.eq(""), "missing date")
    shaped = date.str.fullmatch(_DATE_SHAPE, na=False)
    real = shaped.copy()
    if shaped.any():
        real[shaped] = _real_calendar_date(date[shaped])
    reasons.add(~real, lambda idx: "invalid date '" + show(date[idx]) + "'")
    reasons.add(real & date.where(real, FIRST_DATE).lt(FIRST_DATE), f"date before {FIRST_DATE}")

    title = rows["title"]
    reasons.add(title.isna() | title.eq(""), "missing title")

    media = rows["media_type"]
    reasons.add(media.isna() | media.eq(""), "missing media_type")
    reasons.add(
        ~media.isin(MEDIA_TYPES),
        lambda idx: "unknown media_type '" + show(text["media_type"][idx].str.strip()) + "'",
    )
    reasons.add(
        media.isin(NEEDS_URL) & rows["url"].isna(),
        lambda idx: "missing url for " + media[idx],
    )
