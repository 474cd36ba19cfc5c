"""Duplicated dates inside one batch: identical copies collapse, the latest differing one wins."""

from pathlib import Path

import pytest
from test_transform_rawinput import entry

from apod_transform.batch import transform
from apod_transform.rawinput import RawBatch

pytestmark = pytest.mark.unit


def run_chunks(*chunks):
    """Entries of chunk i carry fetched_at 2026-11-22T08:00:0i+00:00."""
    batch = RawBatch(manifest=Path("manifest.json"))
    for number, chunk in enumerate(chunks):
        batch.entries.extend(chunk)
        batch.extracted_at.extend([f"2026-11-22T08:00:0{number}+00:00"] * len(chunk))
    return transform(batch, "run-1")


def test_identical_duplicates_collapse_silently_keeping_the_latest_provenance():
    same = entry("2024-01-01")
    result = run_chunks([same, entry("2024-01-02")], [dict(same)])
    assert result.rejected.empty
    assert result.collapsed == 1
    assert result.staged["date"].tolist() == ["2024-01-01", "2024-01-02"]
    assert result.staged["extracted_at"].tolist() == [
        "2026-11-22T08:00:01+00:00",
        "2026-11-22T08:00:00+00:00",
    ]


def test_duplicates_equal_after_normalisation_are_identical():
    result = run_chunks(
        [entry("2024-01-01", title="A\r\nB", url="//x.org/a b", credit="ignored")],
        [entry("2024-01-01", title=" A B ", url="https://x.org/a%20b")],
    )
    assert result.rejected.empty
    assert result.collapsed == 1


def test_differing_duplicates_keep_the_latest_chunk_and_reject_the_rest():
    first, second, third = (entry("2024-01-01", title=t) for t in ("First", "Second", "Third"))
    result = run_chunks([first, entry("2024-01-02")], [second], [third])
    assert result.staged.set_index("date").loc["2024-01-01", "title"] == "Third"
    assert result.staged.set_index("date").loc["2024-01-01", "extracted_at"].endswith("02+00:00")
    assert result.rejected["reason"].tolist() == ["duplicate date in batch"] * 2
    assert result.rejected["record"].str.contains("First").tolist() == [True, False]
    assert result.reason_counts == {"duplicate date in batch": 2}
    assert result.collapsed == 0


def test_latest_position_wins_inside_one_chunk():
    result = run_chunks([entry("2024-01-01", title="Old"), entry("2024-01-01", title="New")])
    assert result.staged["title"].tolist() == ["New"]
    assert len(result.rejected) == 1


def test_an_identical_earlier_copy_collapses_while_a_differing_one_is_rejected():
    kept = entry("2024-01-01", title="Kept")
    result = run_chunks([dict(kept)], [entry("2024-01-01", title="Other")], [kept])
    assert result.staged["title"].tolist() == ["Kept"]
    assert result.collapsed == 1
    assert result.rejected["record"].str.contains("Other").tolist() == [True]


def test_missing_values_compare_equal():
    bare = {"date": "2024-01-01", "title": "T", "media_type": "other"}
    result = run_chunks([bare], [dict(bare, explanation="", copyright=None)])
    assert result.rejected.empty
    assert result.collapsed == 1


def test_an_invalid_later_copy_does_not_displace_a_valid_one():
    result = run_chunks([entry("2024-01-01")], [entry("2024-01-01", media_type="gif")])
    assert result.staged["date"].tolist() == ["2024-01-01"]
    assert result.rejected["reason"].tolist() == ["unknown media_type 'gif'"]
