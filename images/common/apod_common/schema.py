"""The APOD record as the pipeline stores it, in one place for every step.

CONTENT_COLUMNS are what the CSV holds and what the three ways of running must agree
on byte for byte. PROVENANCE_COLUMNS say where a row came from; they travel in the
staged batch and into Postgres, but not into the CSV, so that re-running the same
input leaves the CSV (and its DVC hash) unchanged.
"""

import datetime as dt

FIRST_APOD_DATE = dt.date(1995, 6, 16)

CONTENT_COLUMNS = (
    "date",
    "title",
    "explanation",
    "media_type",
    "url",
    "hdurl",
    "thumbnail_url",
    "copyright",
    "service_version",
)
PROVENANCE_COLUMNS = ("run_id", "extracted_at")
STAGED_COLUMNS = CONTENT_COLUMNS + PROVENANCE_COLUMNS
REJECTED_COLUMNS = ("date", "reason", "record")

MEDIA_TYPES = ("image", "video", "other")

# The one CSV dialect (written and read by csvfile): UTF-8, "\n" after every record.
CSV_ENCODING = "utf-8"
CSV_LINE_TERMINATOR = "\n"
