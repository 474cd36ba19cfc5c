"""Hostile text in every field survives the staged CSV verbatim (after the documented
normalisation), as read back by pandas and by the csv module; rejected records round-trip."""

import csv
import json
import re

import pandas as pd
import pytest
from test_transform_rawinput import FETCHED_AT, entry, write_raw

from apod_common import layout, runner
from apod_common.schema import STAGED_COLUMNS
from apod_transform.main import main

pytestmark = pytest.mark.unit

HOSTILE = [
    "Robert'); DROP TABLE apod.apod_entries; --",
    "1; SELECT pg_sleep(10); COPY apod_entries TO PROGRAM 'rm -rf /'",
    'He said "hi", it\'s ""fine"" "',
    'a,b,,c,"',
    "line1\nline2\r\nline3\rline4\n\n",
    "\\N",
    "before\n\\.\nafter",
    "C:\\path\\to\\ \\\\ \\",
    '=HYPERLINK("http://evil.example/","x")',
    "+1-1@SUM(A1)",
    "\ttabbed\x0bvertical\x0cfeed\x1funit\x7fdel",
    "\ufeffBOM at start",
    "LS\u2028PS\u2029NEL\x85",
    "rocket \U0001f680 \u661f\u7a7a \u202eRTL\u202c caf\u00e9 \ufffd",
    "NA",
    "null",
    "NaN",
    "None",
    "  padded  ",
    "<script>alert('x')</script> &amp; <a href=\"x\">",
    "${jndi:ldap://x} {{7*7}} %s %n %x",
    "'",
    '"',
    ",",
]


def one_line(text: str) -> str:
    return " ".join(text.split())


def prose(text: str) -> str:
    return re.sub(r"\r\n?", "\n", text.strip())


def url(text: str) -> str:
    text = text.strip()
    if text.startswith("//"):
        text = "https:" + text
    for char, escape in ((" ", "%20"), ("\t", "%09"), ("\n", "%0A"), ("\r", "%0D")):
        text = text.replace(char, escape)
    return text


def expected_row(raw: dict, run_id: str) -> dict[str, str]:
    return {
        "date": raw["date"],
        "title": one_line(raw["title"]),
        "explanation": prose(raw["explanation"]),
        "media_type": raw["media_type"].strip().lower(),
        "url": url(raw["url"]),
        "hdurl": url(raw["hdurl"]),
        "thumbnail_url": url(raw.get("thumbnail_url", "")),
        "copyright": one_line(raw.get("copyright", "")),
        "service_version": re.sub(r"\r\n?", "\n", raw["service_version"]) or "v1",
        "run_id": run_id,
        "extracted_at": FETCHED_AT,
    }


def hostile_entries() -> list[dict]:
    entries = []
    for number, text in enumerate(HOSTILE, start=1):
        entries.append(
            entry(
                f"2024-01-{number:02d}",
                title=f"{text} {number}",
                explanation=text,
                media_type=" Video\r\n",
                url="https://x.example/" + text,
                hdurl="//cdn.x.example/" + text,
                thumbnail_url=text,
                copyright=text,
                service_version=text,
                credit=text,
            )
        )
    big = ('ab,"c"\r\nd\u00e9\'; DROP TABLE x; --\n' * 40_000)[:1_048_576]
    entries.append(entry("2024-02-01", explanation=big, title=big[:5000], copyright=big[:3000]))
    return entries


@pytest.fixture(scope="module")
def staged(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("hostile")
    run_id = 'manual__2024-01-01 "quoted", with; DROP'
    entries = hostile_entries()
    rejects = [
        entry("2024-03-01", title="x\x00y", explanation="'\"\n,;--"),
        entry("2024-03-02", media_type="'); DROP TABLE x; --"),
        entry("2024-03-03", title="lone \ud800 surrogate", explanation="\r\n\u2028"),
    ]
    write_raw(data_dir, run_id, [entries[:10], entries[10:], rejects])
    args = ["--run-id", run_id, "--data-dir", str(data_dir), "--max-reject-ratio", "0.2"]
    assert runner.run("transform", main, args) == 0
    return data_dir, run_id, entries, rejects


def test_pandas_reads_back_every_field_verbatim(staged):
    data_dir, run_id, entries, _ = staged
    frame = pd.read_csv(
        layout.staged_batch(data_dir, run_id), dtype=str, keep_default_na=False, encoding="utf-8"
    )
    assert list(frame.columns) == list(STAGED_COLUMNS)
    expected = [expected_row(e, run_id) for e in entries]
    assert frame.to_dict("records") == expected
    assert len(frame.loc[frame["date"] == "2024-02-01", "explanation"].iloc[0]) > 1_000_000


def test_csv_module_reads_back_the_same(staged):
    data_dir, run_id, entries, _ = staged
    # The csv module's default field limit (128 KiB) is below a 1 MB explanation.
    previous = csv.field_size_limit(4 * 1024 * 1024)
    try:
        with layout.staged_batch(data_dir, run_id).open(encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
    finally:
        csv.field_size_limit(previous)
    assert rows == [expected_row(e, run_id) for e in entries]


def test_no_bare_carriage_return_and_lf_line_ends(staged):
    data_dir, run_id, _, _ = staged
    data = layout.staged_batch(data_dir, run_id).read_bytes()
    assert b"\r" not in data  # an unquoted CR would split rows in Postgres COPY
    assert b"\x00" not in data
    data.decode("utf-8")


def test_rejected_records_round_trip(staged):
    data_dir, run_id, _, rejects = staged
    frame = pd.read_csv(
        layout.rejected_rows(data_dir, run_id), dtype=str, keep_default_na=False, encoding="utf-8"
    )
    assert frame["reason"].tolist() == [
        "NUL byte in title",
        "unknown media_type ''); DROP TABLE x; --'",
        "invalid unicode (lone surrogate) in title",
    ]
    assert frame["date"].tolist() == ["2024-03-01", "2024-03-02", "2024-03-03"]
    assert [json.loads(r) for r in frame["record"]] == rejects
