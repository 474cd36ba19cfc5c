"""The whole real archive (11,387 entries) through the CLI, checked against a plain-Python
reference of the documented normalisation. Needs APOD_ARCHIVE_DIR (the archive folder or
its ellanan-apod-api/api/_data/years folder); skipped without it."""

import json
import os
from pathlib import Path

import pandas as pd
import pytest
from test_transform_hostile import one_line, prose, url
from test_transform_rawinput import FETCHED_AT, write_raw

from apod_common import layout, runner
from apod_transform.main import main

pytestmark = pytest.mark.unit

YEARS = Path("ellanan-apod-api", "api", "_data", "years")
ARCHIVE_ENTRIES = 11_387
MEDIA_TYPES = {"image": 10_934, "video": 410, "other": 43}


def archive_years() -> Path:
    folder = os.environ.get("APOD_ARCHIVE_DIR")
    if not folder:
        pytest.skip("APOD_ARCHIVE_DIR is not set (the real APOD archive dump)")
    chosen = Path(folder)
    chosen = chosen / YEARS if (chosen / YEARS).is_dir() else chosen
    if not sorted(chosen.glob("[12][0-9][0-9][0-9].json")):
        pytest.skip(f"APOD_ARCHIVE_DIR={folder} holds no YYYY.json files")
    return chosen


def month_chunks(years: Path) -> list[list[dict]]:
    """The archive as extract would have fetched it: one chunk per month (<= 31 days)."""
    months: dict[str, list[dict]] = {}
    for year in sorted(years.glob("[12][0-9][0-9][0-9].json")):
        for date, value in sorted(json.loads(year.read_text(encoding="utf-8")).items()):
            months.setdefault(date[:7], []).append(value)
    return [months[m] for m in sorted(months)]


def reference(raw: dict) -> dict[str, str]:
    return {
        "date": raw["date"],
        "title": one_line(raw["title"]),
        "explanation": prose(raw.get("explanation", "")),
        "media_type": raw["media_type"].strip().lower(),
        "url": url(raw.get("url", "")),
        "hdurl": url(raw.get("hdurl", "")),
        "thumbnail_url": url(raw.get("thumbnail_url", "")),
        "copyright": one_line(raw.get("copyright", "")),
        "service_version": raw.get("service_version") or "v1",
        "run_id": "archive",
        "extracted_at": FETCHED_AT,
    }


def test_full_archive_stages_every_entry(tmp_path, capsys):
    chunks = month_chunks(archive_years())
    raw = [e for chunk in chunks for e in chunk]
    assert max(len(c) for c in chunks) <= 31
    write_raw(tmp_path, "archive", chunks)

    code = runner.run("transform", main, ["--run-id", "archive", "--data-dir", str(tmp_path)])
    out, err = capsys.readouterr()
    summary = json.loads(out.strip().splitlines()[-1])
    assert code == 0, err

    rejected = pd.read_csv(
        layout.rejected_rows(tmp_path, "archive"), dtype=str, keep_default_na=False
    )
    assert rejected.empty, rejected.to_dict("records")[:20]  # an account of any rejection
    assert summary["rows"] == len(raw) == ARCHIVE_ENTRIES
    assert (summary["first_date"], summary["last_date"]) == ("1995-06-16", "2026-08-22")

    staged = pd.read_csv(layout.staged_batch(tmp_path, "archive"), dtype=str, keep_default_na=False)
    assert staged["media_type"].value_counts().to_dict() == MEDIA_TYPES
    assert staged["date"].is_unique
    assert staged["date"].is_monotonic_increasing
    assert staged.to_dict("records") == [reference(e) for e in raw]
    # The archive's own oddities made it through the normalisation.
    assert staged["url"].str.startswith("https://www.youtube.com/embed/").any()
    assert not staged["url"].str.startswith("//").any()
    assert staged["copyright"].str.contains("\ufffd").any()
    assert staged["explanation"].str.contains("<a href=").any()
    assert (staged["explanation"] == "").sum() == 605
