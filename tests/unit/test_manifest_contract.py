"""The raw manifest as a contract: written by extract's code, read by transform's code.

Before the manifest was one type in apod_common, extract wrote `range.start/end` and
`totals.entries` while transform read top-level `start/end/entries`: the declared count was
never checked and an empty range was reported as "None..None". These tests go through both
steps' real code, against the APOD test server.
"""

import datetime as dt
import json
from pathlib import Path

import pytest

from apod_common import exit_codes, files, layout, manifest, runner
from apod_common.errors import NothingToDo, StepError
from apod_extract.main import main as extract_main
from apod_testserver.server import Config, serving
from apod_transform.rawinput import read_raw

pytestmark = pytest.mark.unit

SAMPLE = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "apod"
RUN = "contract"


@pytest.fixture
def extract(monkeypatch, tmp_path):
    for name in ("NASA_API_KEY_FILE", "APOD_RUN_ID", "APOD_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    with serving(Config(SAMPLE, port=0, today=dt.date(2024, 3, 31))) as server:
        monkeypatch.setenv("APOD_API_URL", server.apod_url)

        def run(start: str, end: str) -> int:
            argv = ["--run-id", RUN, "--data-dir", str(tmp_path), "--start", start, "--end", end]
            return runner.run("extract", extract_main, argv)

        yield run


def test_what_extract_writes_transform_reads_whole(extract, tmp_path):
    assert extract("2024-01-01", "2024-02-10") == exit_codes.OK
    path = layout.manifest_path(tmp_path, RUN)
    written = manifest.read(path)
    assert (written.start, written.end) == (dt.date(2024, 1, 1), dt.date(2024, 2, 10))
    assert written.entries == 31
    assert [c.file for c in written.chunks] == [
        "2024-01-01_2024-01-31.json",
        "2024-02-01_2024-02-10.json",
    ]
    assert written.to_bytes() == path.read_bytes()  # the type says everything the file says

    raw = read_raw(tmp_path, RUN)
    assert len(raw.entries) == written.entries
    assert raw.extracted_at == [written.chunks[0].fetched_at] * 31


def test_a_declared_total_that_disagrees_with_the_files_fails(extract, tmp_path):
    assert extract("2024-01-01", "2024-01-31") == exit_codes.OK
    path = layout.manifest_path(tmp_path, RUN)
    doc = json.loads(path.read_bytes())
    doc["totals"]["entries"] += 1
    path.write_text(json.dumps(doc))
    with pytest.raises(StepError) as caught:
        read_raw(tmp_path, RUN)
    assert caught.value.code == exit_codes.BAD_INPUT
    assert "says 32 entries, its chunks list 31" in caught.value.reason


def test_a_chunk_count_that_disagrees_with_its_file_fails(extract, tmp_path):
    """A chunk replaced by one with an entry less, sha256 updated: only the count can tell."""
    assert extract("2024-01-01", "2024-01-31") == exit_codes.OK
    raw_dir = layout.raw_dir(tmp_path, RUN)
    chunk = raw_dir / "2024-01-01_2024-01-31.json"
    shorter = json.dumps(json.loads(chunk.read_bytes())[1:]).encode()
    chunk.write_bytes(shorter)
    path = layout.manifest_path(tmp_path, RUN)
    doc = json.loads(path.read_bytes())
    doc["chunks"][0]["sha256"] = files.sha256(shorter)
    path.write_text(json.dumps(doc))
    with pytest.raises(StepError) as caught:
        read_raw(tmp_path, RUN)
    assert caught.value.code == exit_codes.BAD_INPUT
    assert "holds 30 entries, the manifest says 31" in caught.value.reason


def test_an_empty_range_names_its_dates(extract, tmp_path):
    assert extract("1995-06-17", "1995-06-19") == exit_codes.NOTHING_TO_DO
    with pytest.raises(NothingToDo) as caught:
        read_raw(tmp_path, RUN)
    assert "lists no entries for 1995-06-17..1995-06-19" in caught.value.reason
