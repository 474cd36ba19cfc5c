"""Normalisation of every field and every reject reason, through the pure transform."""

import json
from pathlib import Path
from typing import Any

import pytest
from test_transform_rawinput import FETCHED_AT, entry

from apod_common.schema import REJECTED_COLUMNS, STAGED_COLUMNS
from apod_transform.batch import Result, transform
from apod_transform.rawinput import RawBatch

pytestmark = pytest.mark.unit


def run(*entries: Any, run_id: str = "run-1") -> Result:
    batch = RawBatch(manifest=Path("manifest.json"))
    batch.entries.extend(entries)
    batch.extracted_at.extend([FETCHED_AT] * len(entries))
    return transform(batch, run_id)


def staged_row(result: Result) -> dict[str, Any]:
    assert len(result.staged) == 1, result.rejected.to_dict("records")
    row = result.staged.iloc[0].to_dict()
    return {k: (None if v is None or v != v else v) for k, v in row.items()}  # NaN -> None


def only_reason(result: Result) -> str:
    assert len(result.rejected) == 1, result.rejected.to_dict("records")
    assert result.staged.empty
    return result.rejected.iloc[0]["reason"]


def test_clean_entry_passes_through_with_provenance():
    result = run(entry("2024-01-01", copyright="Jane Doe"))
    assert list(result.staged.columns) == list(STAGED_COLUMNS)
    assert list(result.rejected.columns) == list(REJECTED_COLUMNS)
    assert staged_row(result) == {
        "date": "2024-01-01",
        "title": "Title of 2024-01-01",
        "explanation": "Explanation of 2024-01-01.",
        "media_type": "image",
        "url": "https://apod.nasa.gov/apod/image/2024-01-01.jpg",
        "hdurl": "https://apod.nasa.gov/apod/image/2024-01-01_big.jpg",
        "thumbnail_url": None,
        "copyright": "Jane Doe",
        "service_version": "v1",
        "run_id": "run-1",
        "extracted_at": FETCHED_AT,
    }
    assert result.rejected.empty
    assert result.total == 1


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("Comet\r\nNEOWISE", "Comet NEOWISE"),
        ("  Comet \r NEOWISE\n", "Comet NEOWISE"),
        ("Comet\t\t  NEOWISE", "Comet NEOWISE"),
        ("M31:  The\u00a0Andromeda", "M31: The Andromeda"),
        ("Ang\ufffdstr\u00f6m \u2014 \u661f", "Ang\ufffdstr\u00f6m \u2014 \u661f"),
    ],
)
def test_title_whitespace_collapses_and_text_is_kept(given, expected):
    assert staged_row(run(entry("2024-01-01", title=given)))["title"] == expected


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("\nJane\n Doe\n", "Jane Doe"),
        ("  Jane  \r\n Doe,\n  NASA ", "Jane Doe, NASA"),
        ("J\ufffdrg Smith", "J\ufffdrg Smith"),
    ],
)
def test_copyright_is_one_trimmed_line(given, expected):
    assert staged_row(run(entry("2024-01-01", copyright=given)))["copyright"] == expected


@pytest.mark.parametrize("copyright", [None, ""])
def test_public_domain_copyright_is_missing(copyright):
    fields = {} if copyright is None else {"copyright": copyright}
    assert staged_row(run(entry("2024-01-01", **fields)))["copyright"] in (None, "")


def test_explanation_is_verbatim_but_outer_whitespace_and_cr_line_breaks():
    html = '<b> Explanation: </b>\nA <a href="ap240101.html">link</a> &amp; more.\n\n  Indented.'
    row = staged_row(run(entry("2024-01-01", explanation="  \n" + html + " \n")))
    assert row["explanation"] == html
    row = staged_row(run(entry("2024-01-01", explanation="\r One\r two\r\nthree\r")))
    assert row["explanation"] == "One\n two\nthree"


@pytest.mark.parametrize("explanation", ["", "   ", None])
def test_empty_explanation_is_allowed(explanation):
    row = staged_row(run(entry("2024-01-01", explanation=explanation)))
    assert row["explanation"] in ("", None)


@pytest.mark.parametrize(
    ("given", "expected"),
    [(" Image ", "image"), ("VIDEO", "video"), ("other", "other")],
)
def test_media_type_is_trimmed_and_lowercased(given, expected):
    assert staged_row(run(entry("2024-01-01", media_type=given)))["media_type"] == expected


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (
            "//www.youtube.com/embed/DmYK479EpQc?vq=hd720&rel=0",
            "https://www.youtube.com/embed/DmYK479EpQc?vq=hd720&rel=0",
        ),
        ("  //player.vimeo.com/video/108650530\n", "https://player.vimeo.com/video/108650530"),
        (
            "https://apod.nasa.gov/apod/image/2404/NGC3372_ETA CARINA_LOP.jpg",
            "https://apod.nasa.gov/apod/image/2404/NGC3372_ETA%20CARINA_LOP.jpg",
        ),
        ("https://x.org/a b\tc\nd", "https://x.org/a%20b%09c%0Ad"),
        ("https://apod.nasa.gov/apod/image/2107/spacex.mp4", None),
        ("http://apod.nasa.gov/apod/image/9506/orionfull_jcc_big.gif", None),
    ],
)
def test_urls(given, expected):
    expected = expected or given
    row = staged_row(
        run(entry("2024-01-01", url=given, hdurl=given, thumbnail_url=given, media_type="video"))
    )
    assert row["url"] == row["hdurl"] == row["thumbnail_url"] == expected


@pytest.mark.parametrize("empty", ["", "   ", None])
def test_empty_optional_urls_are_missing(empty):
    row = staged_row(run(entry("2024-01-01", hdurl=empty, thumbnail_url=empty)))
    assert row["hdurl"] is None
    assert row["thumbnail_url"] is None


@pytest.mark.parametrize("url", ["", None, "  "])
def test_other_media_may_lack_a_url(url):
    fields = entry("2024-01-01", media_type="other", url=url)
    del fields["hdurl"]
    row = staged_row(run(fields))
    assert row["media_type"] == "other"
    assert row["url"] is None


def test_service_version_is_kept_and_defaults_to_v1():
    assert staged_row(run(entry("2024-01-01", service_version="v2")))["service_version"] == "v2"
    missing = entry("2024-01-01")
    del missing["service_version"]
    assert staged_row(run(missing))["service_version"] == "v1"
    assert staged_row(run(entry("2024-01-01", service_version=None)))["service_version"] == "v1"


def test_unknown_keys_are_ignored():
    row = staged_row(run(entry("2024-01-01", credit="ESO", no_data=False, extra=[1, {"a": 2}])))
    assert "credit" not in row


@pytest.mark.parametrize("date", ["1995-06-16", "2000-02-29", "2024-02-29", "2099-12-31"])
def test_valid_dates(date):
    assert staged_row(run(entry(date)))["date"] == date


REJECTS = [
    # (entry, reason)
    ([entry("2024-01-01")], "entry is not a JSON object (array)"),
    ("2024-01-01", "entry is not a JSON object (string)"),
    (None, "entry is not a JSON object (null)"),
    (20240101, "entry is not a JSON object (number)"),
    (True, "entry is not a JSON object (boolean)"),
    (entry(20240101), "date is not a string (number)"),
    (entry("2024-01-01", title=42), "title is not a string (number)"),
    (entry("2024-01-01", title=["a"]), "title is not a string (array)"),
    (entry("2024-01-01", explanation={"html": "x"}), "explanation is not a string (object)"),
    (entry("2024-01-01", media_type=1.5), "media_type is not a string (number)"),
    (entry("2024-01-01", url=False), "url is not a string (boolean)"),
    (entry("2024-01-01", hdurl=["x"]), "hdurl is not a string (array)"),
    (entry("2024-01-01", thumbnail_url=7), "thumbnail_url is not a string (number)"),
    (entry("2024-01-01", copyright=["A", "B"]), "copyright is not a string (array)"),
    (entry("2024-01-01", service_version=1), "service_version is not a string (number)"),
    (entry(None), "missing date"),
    (entry(""), "missing date"),
    (entry("2024/01/01"), "invalid date '2024/01/01'"),
    (entry("2024-1-5"), "invalid date '2024-1-5'"),
    (entry(" 2024-01-01"), "invalid date ' 2024-01-01'"),
    (entry("2024-01-01T00:00:00"), "invalid date '2024-01-01T00:00:00'"),
    (entry("2023-02-29"), "invalid date '2023-02-29'"),
    (entry("2100-02-29"), "invalid date '2100-02-29'"),
    (entry("2024-13-01"), "invalid date '2024-13-01'"),
    (entry("2024-00-10"), "invalid date '2024-00-10'"),
    (entry("2024-04-31"), "invalid date '2024-04-31'"),
    (entry("0000-01-01"), "invalid date '0000-01-01'"),
    (entry("\uff12\uff10\uff12\uff14-01-01"), "invalid date '\uff12\uff10\uff12\uff14-01-01'"),
    (entry("2024-01-01\n"), "invalid date '2024-01-01\\n'"),
    (entry("x" * 100), "invalid date '" + "x" * 40 + "'"),
    (entry("1995-06-15"), "date before 1995-06-16"),
    (entry("1900-01-01"), "date before 1995-06-16"),
    (entry("2024-01-01", title=None), "missing title"),
    (entry("2024-01-01", title=""), "missing title"),
    (entry("2024-01-01", title=" \r\n\t "), "missing title"),
    (entry("2024-01-01", media_type=None), "missing media_type"),
    (entry("2024-01-01", media_type=" "), "missing media_type"),
    (entry("2024-01-01", media_type="gif"), "unknown media_type 'gif'"),
    (entry("2024-01-01", media_type=" Audio "), "unknown media_type 'Audio'"),
    (entry("2024-01-01", url=None), "missing url for image"),
    (entry("2024-01-01", url=" "), "missing url for image"),
    (entry("2024-01-01", media_type="video", url=""), "missing url for video"),
    (entry("2024-01-01\x00"), "NUL byte in date"),
    (entry("2024-01-01", title="a\x00b"), "NUL byte in title"),
    (entry("2024-01-01", explanation="x\x00"), "NUL byte in explanation"),
    (entry("2024-01-01", media_type="image\x00"), "NUL byte in media_type"),
    (entry("2024-01-01", url="https://x/\x00"), "NUL byte in url"),
    (entry("2024-01-01", hdurl="\x00"), "NUL byte in hdurl"),
    (entry("2024-01-01", thumbnail_url="\x00"), "NUL byte in thumbnail_url"),
    (entry("2024-01-01", copyright="\x00"), "NUL byte in copyright"),
    (entry("2024-01-01", service_version="v1\x00"), "NUL byte in service_version"),
    (entry("2024-01-01", title="bad \ud83d decode"), "invalid unicode (lone surrogate) in title"),
    (entry("2024-01-01", copyright="\udc80"), "invalid unicode (lone surrogate) in copyright"),
]


@pytest.mark.parametrize(("given", "reason"), REJECTS)
def test_reject_reason(given, reason):
    result = run(given)
    assert only_reason(result) == reason
    row = result.rejected.iloc[0]
    assert json.loads(row["record"]) == given
    assert result.reason_counts == {reason.split(" '")[0]: 1}


def test_first_failed_check_wins_and_others_still_pass():
    result = run(
        entry("2024-01-01", title=None, media_type="gif"),
        entry("2024-01-02"),
        entry("2024/01/03", title=5),
    )
    assert result.rejected["reason"].tolist() == ["missing title", "title is not a string (number)"]
    assert result.staged["date"].tolist() == ["2024-01-02"]


def test_rejected_columns_date_as_given_and_compact_record():
    odd = entry("2024-01-01", title=None, credit="ESO \u661f")
    result = run(odd, entry(20240102), entry("bad\r\ndate"), [1], entry("x\ud800y"))
    assert result.rejected["date"].tolist() == [
        "2024-01-01",
        "20240102",
        "bad\\r\\ndate",
        "",
        "x\\ud800y",
    ]
    record = result.rejected["record"].iloc[0]
    assert record == json.dumps(odd, ensure_ascii=False, separators=(",", ":"))
    assert "\u661f" in record  # ensure_ascii=False
    assert result.rejected["record"].iloc[3] == "[1]"
    # A lone surrogate cannot be written as UTF-8: that record alone is ASCII-escaped.
    assert "\\ud800" in result.rejected["record"].iloc[4]
    for text in result.rejected.to_numpy().ravel():
        text.encode("utf-8")


def test_non_string_date_as_given_is_its_json():
    result = run(entry({"y": 2024}), entry(["2024-01-01"]))
    assert result.rejected["date"].tolist() == ['{"y":2024}', '["2024-01-01"]']
    assert result.rejected["reason"].tolist() == [
        "date is not a string (object)",
        "date is not a string (array)",
    ]


def test_staged_rows_are_sorted_by_date():
    result = run(entry("2024-03-01"), entry("1995-06-16"), entry("2024-01-01"))
    assert result.staged["date"].tolist() == ["1995-06-16", "2024-01-01", "2024-03-01"]


def test_all_rejected_leaves_an_empty_staged_frame_with_columns():
    result = run("junk", entry("2024-01-01", media_type="gif"))
    assert result.staged.empty
    assert list(result.staged.columns) == list(STAGED_COLUMNS)
    assert result.reject_ratio == 1.0
    assert result.reason_counts == {
        "entry is not a JSON object (string)": 1,
        "unknown media_type": 1,
    }
