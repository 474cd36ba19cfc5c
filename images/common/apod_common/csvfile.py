"""The pipeline's one CSV dialect, for the staged batch, the rejected rows and the dataset.

UTF-8, comma, a header line, minimal quoting (a field is quoted only when it holds a comma,
a quote or a line break), "\n" after every record, a missing value as an empty field.
Postgres COPY reads it with FORMAT csv, HEADER true. The encoding and line end are
schema's (CSV_ENCODING, CSV_LINE_TERMINATOR), for the readers that need no pandas.

Written here rather than by DataFrame.to_csv: Python 3.11's csv module (under to_csv),
with "\n" line ends, leaves a field holding a bare "\r" unquoted, and pandas and Postgres
then read that "\r" as the end of the record. The dataset is rewritten whole on every
load, so the writer joins each record once: adding whole columns of text one after the
other (Series + Series) would copy every record again for each column.
"""

import io
import re
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from apod_common import files
from apod_common.schema import CSV_ENCODING, CSV_LINE_TERMINATOR

_NEEDS_QUOTES = re.compile(r'[",\r\n]')


def quote(values: pd.Series) -> list[str]:
    """One column of text as CSV fields (missing -> empty field)."""
    needs = _NEEDS_QUOTES.search
    return [
        '"' + text.replace('"', '""') + '"' if needs(text) else text
        for text in values.fillna("").astype(str).tolist()
    ]


def to_csv_bytes(frame: pd.DataFrame, columns: Sequence[str]) -> bytes:
    """`frame[columns]` in the dialect: header, then one record per row."""
    columns = list(columns)
    fields = [quote(frame[column]) for column in columns]
    lines = [",".join(columns), *map(",".join, zip(*fields, strict=True))]
    return (CSV_LINE_TERMINATOR.join(lines) + CSV_LINE_TERMINATOR).encode(CSV_ENCODING)


def write(path: Path, frame: pd.DataFrame, columns: Sequence[str]) -> str:
    """Write `frame[columns]` to `path` atomically; return the file's sha256."""
    data = to_csv_bytes(frame, columns)
    files.atomic_write(path, data)
    return files.sha256(data)


def read_csv_bytes(data: bytes, usecols: Sequence[str] | None = None) -> pd.DataFrame:
    """Every field as text, missing as "" (never NaN), so that values compare byte for byte."""
    return pd.read_csv(
        io.BytesIO(data),
        dtype=str,
        keep_default_na=False,
        na_filter=False,
        encoding=CSV_ENCODING,
        usecols=list(usecols) if usecols is not None else None,
    )
