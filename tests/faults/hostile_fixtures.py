"""Hostile APOD entries for the fault tier, in the test server's fixture layout.

`write_fixtures(folder)` writes `folder/2024.json` (one object keyed by `YYYY-MM-DD`, as
images/testserver reads it) holding one March 2024 day per hostile case. The served
entry's own `date` may differ from its key: that is how a date that does not parse and a
date repeated inside one payload reach the pipeline through the real API path.

`STORED` is what each kept day must hold in Postgres and in the CSV: the served value
after transform's documented normalisation (images/transform/README.md, "What happens to
each field"), spelled out here by hand, not recomputed with the step's own code.
`REJECTED` is what must land in rejected.csv instead, with its reason.
"""

from __future__ import annotations

import json
from pathlib import Path

MONTH = ("2024-03-01", "2024-03-31")
IMG = "https://apod.nasa.gov/apod/image/2403/"

SQL = "Robert'); DROP TABLE apod.apod_entries; --"
SQL_2 = (
    "x'; TRUNCATE apod.apod_entries; SELECT pg_sleep(30); "
    "COPY apod.apod_entries TO PROGRAM 'rm -rf /'; --"
)
SQL_3 = "'); DELETE FROM apod.apod_entries WHERE ''='"

NON_ASCII = (
    "Rocket \U0001f680, galaxy \U0001f30c, \u661f\u7a7a\u306e\u5199\u771f \u94f6\u6cb3 "
    "\uc740\ud558\uc218, caf\u00e9 \u00d1and\u00fa \u00c5ngstr\u00f6m, "
    "e\u0301 (combining), \u202eRTL override\u202c, \u0645\u062c\u0631\u0629, "
    "replacement \ufffd char, \ufeffBOM, LS\u2028PS\u2029end"
)


def megabyte_explanation() -> str:
    """About 1 MB of prose with quotes, commas, newlines, non-ASCII and SQL in it."""
    paragraph = (
        'Paragraph {i:05d}: the "Pillars", seen at 6,500 light-years \u2014 '
        "it's a star\u2010forming region; \u661f\u96f2 \U0001f52d. x'); DROP TABLE t; --\n"
    )
    text, i = [], 0
    while sum(map(len, text)) < 1_000_000:
        text.append(paragraph.format(i=i))
        i += 1
    return "".join(text).strip()


BIG = megabyte_explanation()


def _image(key: str, /, **fields) -> dict:
    """An ordinary image entry for day `key`; `fields` override (the date too)."""
    return {
        "date": key,
        "title": f"Entry {key}",
        "explanation": f"Explanation {key}",
        "media_type": "image",
        "url": f"{IMG}{key}.jpg",
        "hdurl": f"{IMG}{key}_hd.jpg",
        "copyright": "Jo Doe",
        "service_version": "v1",
    } | fields


# key in 2024.json -> the entry served for it
ENTRIES: dict[str, dict] = {
    # 1. SQL injection in title / explanation / copyright / URLs
    "2024-03-01": _image(
        "2024-03-01",
        title=SQL,
        explanation=SQL_2 + "\n" + SQL,
        copyright=SQL_3,
        url=f"{IMG}a.jpg?q=');DROP TABLE apod.apod_entries;--",
        hdurl=f"{IMG}b.jpg?id=1 OR 1=1",
    ),
    # 2. quotes, commas, CR/LF in every text field
    "2024-03-02": _image(
        "2024-03-02",
        title='  He said "hi", it\'s ""fine"",\r\nnext\rline\n ',
        explanation='a,b,,c,"\r\nline 2\rline 3\nline 4, "quoted, with comma"\n\n',
        copyright=" \"Ann, Bob\"\r\n& 'Cy', ",
        url="https://example.org/a,b\"c'd.jpg?x=1,2\r\n",
        hdurl='https://example.org/with space,"q"\r\nand\tmore.jpg',
        thumbnail_url='//example.org/thumb,"1".jpg',
    ),
    # 3. non-ASCII everywhere, U+FFFD included
    "2024-03-03": _image(
        "2024-03-03",
        title="\u00c9toile \u2605 \u661f\u7a7a \U0001f680 \ufffd",
        explanation=NON_ASCII,
        copyright="Jos\u00e9 M\u00fcller, \u738b\u5c0f\u660e \u00a9",
        url="https://\u4f8b\u3048.jp/\u661f\u7a7a.jpg",
        hdurl="https://example.org/caf\u00e9_\ufffd.jpg",
    ),
    # Text that CSV readers and COPY like to turn into NULL: stored as text.
    "2024-03-04": _image(
        "2024-03-04",
        title="NA",
        explanation="\\N",
        copyright="NULL",
        hdurl="NaN",
    ),
    # 5. a 1 MB explanation
    "2024-03-05": _image("2024-03-05", title="A very long explanation", explanation=BIG),
    # 4. NUL bytes: Postgres text cannot hold them, so transform rejects the entry
    "2024-03-06": _image("2024-03-06", title="Null\x00byte title"),
    "2024-03-07": _image("2024-03-07", explanation="before NUL\x00after NUL"),
    "2024-03-08": _image("2024-03-08", copyright="Nul\x00l"),
    # 6. unknown media types
    "2024-03-09": _image("2024-03-09", media_type="hologram"),
    "2024-03-10": _image("2024-03-10", media_type="image'); DROP TABLE apod.apod_entries; --"),
    # a video keeps its thumbnail_url from the server (thumbs=true)
    "2024-03-11": _image(
        "2024-03-11",
        media_type="video",
        url="https://www.youtube.com/embed/abc123?rel=0",
        hdurl=None,
    ),
    # 7. dates that do not parse (served under a valid key, with their own bad date)
    "2024-03-12": _image("2024-03-12", date="2024-02-30"),
    "2024-03-13": _image("2024-03-13", date="13/03/2024"),
    "2024-03-14": _image("2024-03-14", date="2024-03-14'); DROP TABLE apod.apod_entries; --"),
    "2024-03-15": _image("2024-03-15", date="2024-03-1\n5"),
    # 8. one date twice in the payload, different content: the later copy wins
    "2024-03-20": _image("2024-03-20", title="First copy of the 20th"),
    "2024-03-21": _image("2024-03-20", title="Second copy of the 20th"),
    # ... and identical copies collapse silently
    "2024-03-22": _image("2024-03-23", title="Same twice"),
    "2024-03-23": _image("2024-03-23", title="Same twice"),
}

# A None above means "no such key" (JSON null would be served as null).
for _entry in ENTRIES.values():
    for _key in [k for k, v in _entry.items() if v is None]:
        del _entry[_key]


def _row(key: str, /, **fields) -> dict:
    """The stored row of the entry under `key` (nine CSV columns; "" = missing / NULL)."""
    entry = ENTRIES[key]
    return {
        "date": entry["date"],
        "title": entry["title"],
        "explanation": entry["explanation"],
        "media_type": entry["media_type"],
        "url": entry.get("url", ""),
        "hdurl": entry.get("hdurl", ""),
        "thumbnail_url": entry.get("thumbnail_url", ""),
        "copyright": entry["copyright"],
        "service_version": "v1",
    } | fields


STORED: dict[str, dict] = {
    "2024-03-01": _row(
        "2024-03-01",  # text verbatim; inner spaces of URLs percent-encoded
        url=f"{IMG}a.jpg?q=');DROP%20TABLE%20apod.apod_entries;--",
        hdurl=f"{IMG}b.jpg?id=1%20OR%201=1",
    ),
    "2024-03-02": _row(
        "2024-03-02",
        # titles and credits: trimmed, every whitespace run -> one space
        title='He said "hi", it\'s ""fine"", next line',
        # explanations: outer whitespace trimmed, \r\n and lone \r -> \n
        explanation='a,b,,c,"\nline 2\nline 3\nline 4, "quoted, with comma"',
        copyright="\"Ann, Bob\" & 'Cy',",
        # URLs: trimmed, inner whitespace percent-encoded, // -> https://
        url="https://example.org/a,b\"c'd.jpg?x=1,2",
        hdurl='https://example.org/with%20space,"q"%0D%0Aand%09more.jpg',
        thumbnail_url='https://example.org/thumb,"1".jpg',
    ),
    "2024-03-03": _row("2024-03-03"),  # verbatim, U+FFFD, BOM and LS/PS included
    "2024-03-04": _row("2024-03-04"),  # "NA", "\\N", "NULL", "NaN" stay text
    "2024-03-05": _row("2024-03-05"),  # 1 MB, verbatim
    "2024-03-11": _row(
        "2024-03-11",
        # the server's thumbnail for a YouTube video (images/testserver README, thumbs)
        thumbnail_url="https://img.youtube.com/vi/abc123/0.jpg",
    ),
    "2024-03-20": _row("2024-03-21"),  # the later copy
    "2024-03-23": _row("2024-03-23"),
}

# (date as given in rejected.csv, reason, key of the entry whose record is kept)
REJECTED: list[tuple[str, str, str]] = [
    ("2024-03-06", "NUL byte in title", "2024-03-06"),
    ("2024-03-07", "NUL byte in explanation", "2024-03-07"),
    ("2024-03-08", "NUL byte in copyright", "2024-03-08"),
    ("2024-03-09", "unknown media_type 'hologram'", "2024-03-09"),
    (
        "2024-03-10",
        "unknown media_type 'image'); DROP TABLE apod.apod_entries; -'",  # cut at 40 chars
        "2024-03-10",
    ),
    ("2024-02-30", "invalid date '2024-02-30'", "2024-03-12"),
    ("13/03/2024", "invalid date '13/03/2024'", "2024-03-13"),
    (
        "2024-03-14'); DROP TABLE apod.apod_entries; --",
        "invalid date '2024-03-14'); DROP TABLE apod.apod_entri'",
        "2024-03-14",
    ),
    ("2024-03-1\\n5", "invalid date '2024-03-1\\n5'", "2024-03-15"),
    ("2024-03-20", "duplicate date in batch", "2024-03-20"),
]


def served(key: str) -> dict:
    """The entry as the test server hands it out (service_version set, thumbnail for videos)."""
    entry = dict(ENTRIES[key])
    entry["service_version"] = "v1"
    if entry["media_type"] == "video":
        entry["thumbnail_url"] = "https://img.youtube.com/vi/abc123/0.jpg"
    return entry


def write_fixtures(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "2024.json").write_text(json.dumps(ENTRIES, ensure_ascii=False), encoding="utf-8")
    return folder
