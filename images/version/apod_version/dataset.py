"""Facts about the dataset for the summary and the commit message."""

import csv
from dataclasses import dataclass
from pathlib import Path

from apod_common import exit_codes
from apod_common.errors import StepError

# APOD explanations are long; the csv module's default limit (128 KiB) is not a bound we
# want to hit on a field.
_FIELD_LIMIT = 16 * 1024 * 1024


@dataclass(frozen=True)
class DvcOut:
    md5: str
    size: int


def count_rows(path: Path) -> int:
    """Data rows (records after the header); quoted newlines stay inside their record."""
    csv.field_size_limit(_FIELD_LIMIT)
    try:
        with path.open(encoding="utf-8", errors="replace", newline="") as handle:
            records = sum(1 for _ in csv.reader(handle, strict=True))
    except csv.Error as exc:
        raise StepError(f"{path} is not a readable CSV: {exc}", exit_codes.BAD_INPUT) from exc
    return max(records - 1, 0)


def parse_dvc_file(text: str) -> DvcOut:
    """md5 and size of the single output a `dvc add` file describes."""
    from ruamel.yaml import YAML

    data = YAML(typ="safe").load(text) or {}
    outs = data.get("outs") if isinstance(data, dict) else None
    if not outs or not isinstance(outs, list) or not isinstance(outs[0], dict):
        raise ValueError("no outs in the .dvc file")
    out = outs[0]
    md5 = out.get("md5")
    if not isinstance(md5, str) or not md5:
        raise ValueError("the .dvc file has no md5")
    return DvcOut(md5=md5, size=int(out.get("size", 0)))
