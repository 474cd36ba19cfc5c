"""Reading extract's files: manifest and chunk checks; also the raw-dir builder other
transform tests import (written as extract writes them: through apod_common.manifest)."""

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from apod_common import exit_codes, layout, manifest
from apod_common.errors import NothingToDo, StepError
from apod_common.manifest import Chunk, Manifest
from apod_transform.rawinput import read_raw

pytestmark = pytest.mark.unit

FETCHED_AT = "2026-11-22T08:00:00+00:00"
PLACEHOLDER_DAY = dt.date(1995, 6, 16)


def entry(date: str, **fields: Any) -> dict[str, Any]:
    """A well-formed API image entry; keyword arguments override or add fields."""
    base = {
        "date": date,
        "title": f"Title of {date}",
        "explanation": f"Explanation of {date}.",
        "media_type": "image",
        "url": f"https://apod.nasa.gov/apod/image/{date}.jpg",
        "hdurl": f"https://apod.nasa.gov/apod/image/{date}_big.jpg",
        "service_version": "v1",
    }
    base.update(fields)
    return base


def _day(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return PLACEHOLDER_DAY


def write_raw(
    data_dir: Path,
    run_id: str,
    chunks: list[list[Any] | bytes],
    fetched_at: list[str] | str = FETCHED_AT,
    span: tuple[str, str] = ("1995-06-16", "2026-12-31"),
) -> Path:
    """Write a raw batch like extract does; a bytes chunk is written as is (for corruption)."""
    raw = layout.raw_dir(data_dir, run_id)
    raw.mkdir(parents=True, exist_ok=True)
    stamps = [fetched_at] * len(chunks) if isinstance(fetched_at, str) else fetched_at
    records = []
    for number, (chunk, stamp) in enumerate(zip(chunks, stamps, strict=True)):
        data = chunk if isinstance(chunk, bytes) else json.dumps(chunk).encode("utf-8")
        count = 0 if isinstance(chunk, bytes) else len(chunk)
        dates = [e["date"] for e in chunk if isinstance(e, dict) and isinstance(e.get("date"), str)]
        start, end = (min(dates), max(dates)) if count and dates else (f"c{number}", f"c{number}")
        name = f"{start}_{end}.json"
        (raw / name).write_bytes(data)
        records.append(
            Chunk(
                file=name,
                start=_day(start),
                end=_day(end),
                entries=count,
                bytes=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
                fetched_at=stamp,
            )
        )
    path = layout.manifest_path(data_dir, run_id)
    written = Manifest(
        run_id=run_id,
        start=dt.date.fromisoformat(span[0]),
        end=dt.date.fromisoformat(span[1]),
        api_url="http://127.0.0.1:8000/planetary/apod",
        chunk_days=31,
        chunks=tuple(records),
    )
    manifest.write(path, written)
    return path


def edit_manifest(path: Path, edit) -> None:
    """Change the JSON of a manifest in place, as a hand or a bug would."""
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))


def expect_bad_input(data_dir: Path, run_id: str, *fragments: str) -> str:
    with pytest.raises(StepError) as caught:
        read_raw(data_dir, run_id)
    assert caught.value.code == exit_codes.BAD_INPUT
    assert "\n" not in caught.value.reason
    for fragment in fragments:
        assert fragment in caught.value.reason
    return caught.value.reason


def test_reads_chunks_in_manifest_order_with_their_fetched_at(tmp_path):
    write_raw(
        tmp_path,
        "run-1",
        [[entry("2024-01-01"), entry("2024-01-02")], [entry("2024-02-01")]],
        fetched_at=["2026-11-22T08:00:00+00:00", "2026-11-22T08:00:05+00:00"],
    )
    batch = read_raw(tmp_path, "run-1")
    assert [e["date"] for e in batch.entries] == ["2024-01-01", "2024-01-02", "2024-02-01"]
    assert batch.extracted_at == [
        "2026-11-22T08:00:00+00:00",
        "2026-11-22T08:00:00+00:00",
        "2026-11-22T08:00:05+00:00",
    ]
    assert batch.manifest == layout.manifest_path(tmp_path, "run-1")


def test_run_id_is_made_safe_for_the_path_like_extract_does(tmp_path):
    run_id = "manual__2024-01-01T00:00:00+00:00"
    write_raw(tmp_path, run_id, [[entry("2024-01-01")]])
    assert (tmp_path / "raw" / layout.batch_name(run_id) / "manifest.json").is_file()
    assert len(read_raw(tmp_path, run_id).entries) == 1


def test_missing_manifest(tmp_path):
    expect_bad_input(tmp_path, "nope", "no manifest at", "nope")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (b"{not json", "is not valid JSON"),
        (b"\xff\xfe{}", "is not UTF-8"),
        (b"[]", "has no list of chunks"),
        (b'{"chunks": {}}', "has no list of chunks"),
        (b'{"chunks": []}', "has no range object"),
        (b'{"chunks": [], "range": {"start": "x"}}', "has no totals object"),
    ],
)
def test_unusable_manifest(tmp_path, text, fragment):
    path = layout.manifest_path(tmp_path, "r")
    path.parent.mkdir(parents=True)
    path.write_bytes(text)
    expect_bad_input(tmp_path, "r", fragment)


def test_missing_chunk_file(tmp_path):
    write_raw(tmp_path, "r", [[entry("2024-01-01")]])
    next(layout.raw_dir(tmp_path, "r").glob("2024-*.json")).unlink()
    expect_bad_input(tmp_path, "r", "chunk file 2024-01-01_2024-01-01.json is missing")


def test_altered_chunk_fails_its_sha256(tmp_path):
    write_raw(tmp_path, "r", [[entry("2024-01-01")]])
    chunk = next(layout.raw_dir(tmp_path, "r").glob("2024-*.json"))
    chunk.write_bytes(chunk.read_bytes().replace(b"Title", b"Tit1e"))
    expect_bad_input(tmp_path, "r", "does not match its sha256")


def test_sha256_is_compared_case_insensitively(tmp_path):
    path = write_raw(tmp_path, "r", [[entry("2024-01-01")]])
    edit_manifest(
        path, lambda doc: doc["chunks"][0].update(sha256=doc["chunks"][0]["sha256"].upper())
    )
    assert len(read_raw(tmp_path, "r").entries) == 1


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b'[{"date": "2024-01-01"', "is not valid JSON"),
        (b"", "is not valid JSON"),
        (b'[{"date": NaN}]', "non-standard JSON constant NaN"),
        (b"\xef\xbb\xbf[]", "is not valid JSON"),  # a BOM is not JSON
        (b"\xc3\x28[]", "is not UTF-8"),
        (b'{"code": 500, "msg": "Internal Service Error"}', "is not a JSON array"),
    ],
)
def test_corrupt_chunk_with_matching_sha256(tmp_path, data, fragment):
    write_raw(tmp_path, "r", [[entry("2024-01-01")], data])
    expect_bad_input(tmp_path, "r", "chunk file c1_c1.json", fragment)


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"file": "../../etc/passwd"}, "has no usable file name"),
        ({"file": "sub/x.json"}, "has no usable file name"),
        ({"file": ".."}, "has no usable file name"),
        ({"file": None}, "has no usable file name"),
        ({"sha256": ""}, "has no sha256"),
        ({"fetched_at": None}, "no valid fetched_at"),
        ({"fetched_at": "yesterday"}, "no valid fetched_at"),
        ({"entries": None}, "bad entries count"),
        ({"entries": "1"}, "bad entries count"),
        ({"entries": True}, "bad entries count"),
        ({"bytes": -1}, "bad bytes count"),
        ({"start": "2024-02-30"}, "no valid start date"),
    ],
)
def test_bad_chunk_record(tmp_path, change, fragment):
    path = write_raw(tmp_path, "r", [[entry("2024-01-01")]])
    edit_manifest(path, lambda doc: doc["chunks"][0].update(change))
    expect_bad_input(tmp_path, "r", fragment)


def test_chunk_record_not_an_object(tmp_path):
    path = write_raw(tmp_path, "r", [[entry("2024-01-01")]])
    edit_manifest(path, lambda doc: doc["chunks"].append("2024-01-02_2024-01-02.json"))
    expect_bad_input(tmp_path, "r", "chunk #2 is not an object")


def test_chunk_count_must_match_its_file(tmp_path):
    path = write_raw(tmp_path, "r", [[entry("2024-01-01")]])

    def claim_five(doc):
        doc["chunks"][0]["entries"] = 5
        doc["totals"]["entries"] = 5

    edit_manifest(path, claim_five)
    expect_bad_input(tmp_path, "r", "holds 1 entries, the manifest says 5")


@pytest.mark.parametrize(
    ("total", "fragment"),
    [(2, "says 2 entries, its chunks list 1"), (-1, "bad entries count"), (None, "bad entries")],
)
def test_manifest_total_must_match_the_chunks(tmp_path, total, fragment):
    path = write_raw(tmp_path, "r", [[entry("2024-01-01")]])
    edit_manifest(path, lambda doc: doc["totals"].update(entries=total))
    expect_bad_input(tmp_path, "r", fragment)


def test_zero_entries_is_nothing_to_do(tmp_path):
    write_raw(tmp_path, "r", [], span=("2020-06-10", "2020-06-10"))
    with pytest.raises(NothingToDo) as caught:
        read_raw(tmp_path, "r")
    assert caught.value.code == exit_codes.NOTHING_TO_DO
    assert "2020-06-10..2020-06-10" in caught.value.reason


def test_empty_chunks_are_nothing_to_do(tmp_path):
    # A range of missing days comes back as `200 []`: extract still writes the chunk.
    write_raw(tmp_path, "r", [[], []])
    with pytest.raises(NothingToDo):
        read_raw(tmp_path, "r")


def test_manifest_without_a_total_is_refused(tmp_path):
    path = write_raw(tmp_path, "r", [[entry("2024-01-01")]])
    edit_manifest(path, lambda doc: doc.pop("totals"))
    expect_bad_input(tmp_path, "r", "has no totals object")
