"""One row per date: the latest entry of the batch wins; differing earlier ones are rejected."""

import pandas as pd

from apod_common.schema import CONTENT_COLUMNS

DUPLICATE_REASON = "duplicate date in batch"

# Missing and "" make the same CSV cell, so they compare equal (and NaN != NaN would
# make identical rows look different).
_MISSING = ""


def superseded(rows: pd.DataFrame) -> tuple[pd.Index, pd.Index]:
    """Among good rows (in batch order): (identical earlier copies, differing earlier copies)."""
    later = rows["date"].duplicated(keep="last")
    if not later.any():
        return rows.index[:0], rows.index[:0]
    columns = [c for c in CONTENT_COLUMNS if c != "date"]
    winners = rows.loc[~later].set_index("date")[columns]
    losers = rows.loc[later]
    theirs = winners.loc[losers["date"]].fillna(_MISSING).to_numpy()
    same = (losers[columns].fillna(_MISSING).to_numpy() == theirs).all(axis=1)
    return losers.index[same], losers.index[~same]
