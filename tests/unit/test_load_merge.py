"""The CSV side of the load: merge rules, the dialect, and byte stability on rerun."""

import csv
import io
import os

import pandas as pd
import pytest

from apod_common import layout
from apod_common.csvfile import read_csv_bytes, to_csv_bytes
from apod_common.schema import CONTENT_COLUMNS, STAGED_COLUMNS
from apod_load.main import main
from apod_load.merge import merge

pytestmark = pytest.mark.unit

HOSTILE = [
    "Robert'); DROP TABLE apod.apod_entries; --",
    "'; COPY apod.apod_entries TO PROGRAM 'rm -rf /'; --",
    'say "hello", "world"',
    'a lone " quote',
    ",,,",
    '""',
    "line one\nline two\n\nline four",
    "windows\r\nline ends\r\n",
    "old mac\rline ends\r",
    "\n\\.\n",  # Postgres COPY's end-of-data marker alone on a line
    "\\.",
    "\\N",
    "NULL",
    "nan",
    "None",
    "NA",
    " padded both ends ",
    "\ttab\tseparated\t",
    "ünïcödé ✓ 星空 🚀 ﷽ \u200b zero-width",
    "replacement \ufffd char",
    "#not a comment",
]
BIG = "A" * 1_000_000


def entry(day: int, title: str = "", **fields) -> dict:
    row = dict.fromkeys(STAGED_COLUMNS, "")
    row.update(
        date=f"2024-01-{day:02d}",
        title=title or f"Title {day}",
        explanation=f"Explanation {day}",
        media_type="image",
        url=f"https://apod.nasa.gov/apod/image/2401/{day}.jpg",
        service_version="v1",
        run_id="manual__test",
        extracted_at="2024-02-01T00:00:00+00:00",
    )
    row.update(fields)
    return row


def frame(rows: list[dict], columns=CONTENT_COLUMNS) -> pd.DataFrame:
    return pd.DataFrame([{c: r[c] for c in columns} for r in rows], columns=list(columns))


def hostile_rows() -> list[dict]:
    rows = []
    for i, text in enumerate(HOSTILE, start=1):
        fields = {c: text for c in CONTENT_COLUMNS if c not in ("date", "media_type")}
        rows.append(entry(i, **{**fields, "run_id": text}))
    rows.append(entry(len(HOSTILE) + 1, explanation=BIG))
    return rows


def write_staged(data_dir, run_id: str, rows: list[dict]) -> None:
    path = layout.staged_batch(data_dir, run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(to_csv_bytes(frame(rows, STAGED_COLUMNS), STAGED_COLUMNS))


# --- merge rules ------------------------------------------------------------------------


def test_first_batch_is_sorted_and_counted_as_added():
    merged = merge(None, frame([entry(3), entry(1), entry(2)]))
    assert merged.frame["date"].tolist() == ["2024-01-01", "2024-01-02", "2024-01-03"]
    assert (merged.added, merged.updated, merged.unchanged) == (3, 0, 0)
    assert list(merged.frame.columns) == list(CONTENT_COLUMNS)


def test_batch_wins_and_counts_updated_unchanged_added():
    existing = frame([entry(1), entry(2), entry(5)])
    batch = frame([entry(2, title="New title 2"), entry(1), entry(4)])
    merged = merge(existing, batch)
    out = merged.frame.set_index("date")
    assert out.index.tolist() == ["2024-01-01", "2024-01-02", "2024-01-04", "2024-01-05"]
    assert out.loc["2024-01-02", "title"] == "New title 2"
    assert out.loc["2024-01-05", "title"] == "Title 5"  # untouched rows stay
    assert (merged.added, merged.updated, merged.unchanged) == (1, 1, 1)


def test_one_row_per_date_last_in_batch_wins():
    batch = frame([entry(1, title="first"), entry(2), entry(1, title="second")])
    merged = merge(None, batch)
    assert merged.frame["date"].tolist() == ["2024-01-01", "2024-01-02"]
    assert merged.frame.loc[0, "title"] == "second"
    assert merged.added == 2


def test_empty_string_and_missing_are_one_value():
    existing = frame([entry(1, copyright="")])
    merged = merge(existing, frame([entry(1, copyright="")]))
    assert (merged.updated, merged.unchanged) == (0, 1)
    merged = merge(existing, frame([entry(1, copyright="Someone")]))
    assert (merged.updated, merged.unchanged) == (1, 0)


def test_only_content_columns_reach_the_dataset(tmp_path):
    write_staged(tmp_path, "r1", [entry(1)])
    main(["csv", "--run-id", "r1", "--data-dir", str(tmp_path)])
    header = (tmp_path / "apod_data.csv").read_text().splitlines()[0]
    assert header == ",".join(CONTENT_COLUMNS)


# --- dialect ----------------------------------------------------------------------------


def test_hostile_text_round_trips_through_pandas_and_the_csv_module():
    original = frame(hostile_rows())
    data = to_csv_bytes(original, CONTENT_COLUMNS)
    back = read_csv_bytes(data)
    pd.testing.assert_frame_equal(back, original, check_dtype=False)
    # Any other reader of the dataset (the version step uses the csv module) agrees.
    csv.field_size_limit(16 * 1024 * 1024)
    records = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    assert records[0] == list(CONTENT_COLUMNS)
    assert records[1:] == original.values.tolist()


def test_writer_matches_the_csv_module_except_for_bare_carriage_returns():
    safe = frame([r for r in hostile_rows() if "\r" not in r["title"]])
    expected = safe.to_csv(index=False, lineterminator="\n").encode()
    assert to_csv_bytes(safe, CONTENT_COLUMNS) == expected


def test_bare_carriage_return_is_quoted():
    data = to_csv_bytes(frame([entry(1, title="a\rb")]), CONTENT_COLUMNS)
    assert b'"a\rb"' in data


def test_empty_frame_is_just_the_header():
    empty = frame([])
    assert to_csv_bytes(empty, CONTENT_COLUMNS) == (",".join(CONTENT_COLUMNS) + "\n").encode()


# --- the csv command on files ----------------------------------------------------------


def test_rerun_keeps_bytes_and_does_not_rewrite(tmp_path):
    write_staged(tmp_path, "r1", hostile_rows())
    first = main(["csv", "--run-id", "r1", "--data-dir", str(tmp_path)])
    output = tmp_path / "apod_data.csv"
    data, inode, mtime = output.read_bytes(), output.stat().st_ino, output.stat().st_mtime_ns
    assert first["changed"] is True
    assert first["rows"] == first["added"] == len(HOSTILE) + 1

    second = main(["csv", "--run-id", "r1", "--data-dir", str(tmp_path)])
    assert second["changed"] is False
    assert (second["added"], second["updated"], second["unchanged"]) == (0, 0, len(HOSTILE) + 1)
    assert second["sha256"] == first["sha256"]
    assert output.read_bytes() == data
    assert (output.stat().st_ino, output.stat().st_mtime_ns) == (inode, mtime)

    back = read_csv_bytes(data)
    expected = frame(hostile_rows()).sort_values("date").reset_index(drop=True)
    pd.testing.assert_frame_equal(back, expected, check_dtype=False)
    assert back.loc[back["date"] == "2024-01-22", "explanation"].item() == BIG


def test_provenance_changes_alone_leave_the_dataset_untouched(tmp_path):
    write_staged(tmp_path, "r1", [entry(1), entry(2)])
    first = main(["csv", "--run-id", "r1", "--data-dir", str(tmp_path)])
    later = [entry(1, run_id="r2", extracted_at="2025-01-01T00:00:00+00:00"), entry(2)]
    write_staged(tmp_path, "r2", later)
    second = main(["csv", "--run-id", "r2", "--data-dir", str(tmp_path)])
    assert second["changed"] is False
    assert second["sha256"] == first["sha256"]


def test_update_rewrites_atomically_and_keeps_the_mode(tmp_path):
    write_staged(tmp_path, "r1", [entry(1), entry(2)])
    main(["csv", "--run-id", "r1", "--data-dir", str(tmp_path)])
    output = tmp_path / "apod_data.csv"
    os.chmod(output, 0o640)
    write_staged(tmp_path, "r2", [entry(2, title="Changed"), entry(3)])
    summary = main(["csv", "--run-id", "r2", "--data-dir", str(tmp_path)])
    assert summary["changed"] is True
    assert (summary["rows"], summary["added"], summary["updated"]) == (3, 1, 1)
    assert output.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    assert read_csv_bytes(output.read_bytes())["title"].tolist() == [
        "Title 1",
        "Changed",
        "Title 3",
    ]


def test_output_option_and_new_file_mode(tmp_path):
    write_staged(tmp_path, "r1", [entry(1)])
    target = tmp_path / "elsewhere" / "set.csv"
    summary = main(["csv", "--run-id", "r1", "--data-dir", str(tmp_path), "--output", str(target)])
    assert summary["output"] == str(target)
    assert target.stat().st_mode & 0o777 == 0o664  # apod_common.files.FILE_MODE
    assert not (tmp_path / "apod_data.csv").exists()
