"""Reject reasons: one per row, the first failed check wins, texts safe for one CSV cell."""

import json
import re
from collections import Counter
from collections.abc import Callable

import pandas as pd

# Control characters and lone surrogates: shown escaped so that a reason or a "date as
# given" stays one printable line and always encodes as UTF-8.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")
_SHOWN_CHARS = 40

_JSON_TYPES = {
    dict: "object",
    list: "array",
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    type(None): "null",
}


def json_type_name(kind: type) -> str:
    return _JSON_TYPES.get(kind, kind.__name__)


def printable(text: str) -> str:
    return json.dumps(text)[1:-1] if _UNSAFE.search(text) else text


def show(values: pd.Series) -> pd.Series:
    """A short, printable rendering of offending values for a reason text."""
    return values.str.slice(0, _SHOWN_CHARS).map(printable)


def kind(reason: str) -> str:
    """The reason without the quoted value, for counting reasons in the logs."""
    return re.sub(r" '.*'$", "", reason)


class Reasons:
    """The reject reason of every row (None while the row is still good)."""

    def __init__(self, index: pd.Index):
        self.series = pd.Series(None, index=index, dtype=object)

    def add(self, failed: pd.Series, reason: str | Callable[[pd.Index], pd.Series]) -> None:
        """Give `reason` to the rows that fail here and had no reason yet.

        A callable reason is computed only for those rows, so per-value messages cost
        nothing on a clean batch.
        """
        fresh = failed.fillna(False).astype(bool) & self.series.isna()
        if not fresh.any():
            return
        if callable(reason):
            reason = reason(fresh.index[fresh.to_numpy()])
        self.series = self.series.mask(fresh, reason)

    @property
    def good(self) -> pd.Series:
        return self.series.isna()

    def counts(self) -> dict[str, int]:
        found = self.series.dropna()
        return dict(sorted(Counter(kind(r) for r in found).items()))
