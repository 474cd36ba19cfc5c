"""Turn raw entries into normalised columns and give every bad row its reason, vectorised."""

from functools import partial
from typing import Any

import pandas as pd

from apod_common import rules
from apod_common.schema import CONTENT_COLUMNS
from apod_transform import clean
from apod_transform.reasons import Reasons, json_type_name, show

URL_COLUMNS = ("url", "hdurl", "thumbnail_url")


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


# Reject reasons that quote the offending value; every other rule's reason is its kind.
_WORDING = {
    "invalid date": lambda text, rows, idx: "invalid date '" + show(rows["date"][idx]) + "'",
    # As given, before lower-casing: the reason shows what the API sent.
    "unknown media_type": lambda text, rows, idx: (
        "unknown media_type '" + show(text["media_type"][idx].str.strip()) + "'"
    ),
    "missing url": lambda text, rows, idx: "missing url for " + rows["media_type"][idx],
}


def check_fields(text: pd.DataFrame, rows: pd.DataFrame, reasons: Reasons) -> None:
    """Reasons for normalised rows, from the pipeline's one statement of the rules."""
    for rule in rules.RULES:
        wording = _WORDING.get(rule.kind)
        reason = rule.kind if wording is None else partial(wording, text, rows)
        reasons.add(rule.broken(rows), reason)
