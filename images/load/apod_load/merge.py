"""Merging a batch into the dataset: pure pandas, no files."""

from dataclasses import dataclass

import pandas as pd

from apod_common.schema import CONTENT_COLUMNS

KEY = "date"
_VALUES = [c for c in CONTENT_COLUMNS if c != KEY]


@dataclass(frozen=True)
class Merged:
    frame: pd.DataFrame  # CONTENT_COLUMNS, one row per date, sorted by date
    added: int
    updated: int
    unchanged: int


def empty_dataset() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series([], dtype=str) for c in CONTENT_COLUMNS})


def merge(existing: pd.DataFrame | None, batch: pd.DataFrame) -> Merged:
    """The dataset with the batch applied: one row per date, the batch wins, sorted.

    Within the batch the last row of a date wins, as in the Postgres load.
    """
    columns = list(CONTENT_COLUMNS)
    if existing is None:
        existing = empty_dataset()
    old = existing[columns].drop_duplicates(KEY, keep="last").set_index(KEY)
    new = batch[columns].drop_duplicates(KEY, keep="last").set_index(KEY)

    common = new.index.intersection(old.index)
    same = (new.loc[common, _VALUES] == old.loc[common, _VALUES]).all(axis=1)
    unchanged = int(same.sum())
    updated = len(common) - unchanged

    frame = (
        pd.concat([old.drop(index=common), new])
        .sort_index(kind="stable")
        .reset_index()[columns]
        .fillna("")
    )
    return Merged(frame=frame, added=len(new) - len(common), updated=updated, unchanged=unchanged)
