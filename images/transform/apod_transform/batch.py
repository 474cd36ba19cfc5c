"""The pure transform: raw entries in, (staged rows, rejected rows) out. No files, no clock."""

from dataclasses import dataclass

import pandas as pd

from apod_common.schema import CONTENT_COLUMNS, STAGED_COLUMNS
from apod_transform import duplicates, validate
from apod_transform.rawinput import RawBatch
from apod_transform.reasons import Reasons
from apod_transform.rejects import rejected_frame


@dataclass(frozen=True)
class Result:
    staged: pd.DataFrame  # STAGED_COLUMNS, one row per date, sorted by date
    rejected: pd.DataFrame  # REJECTED_COLUMNS, in batch order
    total: int  # entries read
    collapsed: int  # identical duplicates dropped silently
    reason_counts: dict[str, int]

    @property
    def reject_ratio(self) -> float:
        return len(self.rejected) / self.total if self.total else 0.0


def transform(raw: RawBatch, run_id: str) -> Result:
    reasons = Reasons(pd.RangeIndex(len(raw.entries)))
    frame = validate.raw_frame(raw.entries, reasons)
    text = validate.strings_only(frame, reasons)
    rows = validate.normalise(text)
    validate.check_fields(text, rows, reasons)

    good = rows.loc[reasons.good]
    identical, differing = duplicates.superseded(good)
    reasons.add(
        pd.Series(rows.index.isin(differing), index=rows.index), duplicates.DUPLICATE_REASON
    )
    kept = good.index.difference(identical).difference(differing)

    staged = rows.loc[kept, list(CONTENT_COLUMNS)]
    staged = staged.assign(
        run_id=run_id,
        extracted_at=pd.Series(raw.extracted_at, dtype=object).loc[kept].to_numpy(),
    )
    staged = staged.sort_values("date", kind="stable").reset_index(drop=True)

    rejected = reasons.series.dropna()
    return Result(
        staged=staged[list(STAGED_COLUMNS)],
        rejected=rejected_frame(raw.entries, rejected),
        total=len(raw.entries),
        collapsed=len(identical),
        reason_counts=reasons.counts(),
    )
