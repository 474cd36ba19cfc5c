"""The pipeline's one CSV dialect, for the staged batch, the rejected rows and the dataset.

UTF-8, comma, a header line, minimal quoting (a field is quoted only when it holds a comma,
a quote or a line break), "\n" after every record, a missing value as an empty field.
Postgres COPY reads it with FORMAT csv, HEADER true. The encoding and line end are
schema's (CSV_ENCODING, CSV_LINE_TERMINATOR), for the readers that need no pandas.

Written here rather than by DataFrame.to_csv: Python 3.11's csv module (under to_csv),
with "\n" line ends, leaves a field holding a bare "\r" unquoted, and pandas and Postgres
then read that "\r" as the end of the record. The writer is vectorised: the dataset is
rewritten whole on every load.
"""

import io
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from apod_common import files
from apod_common.schema import CSV_ENCODING, CSV_LINE_TERMINATOR

_NEEDS_QUOTES = r'[",\r\n]'


def quote(values: pd.Series) -> pd.Series:
    """One column of text as CSV fields (missing -> empty field)."""
    text = values.fillna("").astype(str)
    needs = text.str.contains(_NEEDS_QUOTES, regex=True)
    quoted = '"' + text.str.replace('"', '""', regex=False) + '"'
    return text.where(~needs, quoted)


def to_csv_bytes(frame: pd.DataFrame, columns: Sequence[str]) -> bytes:
    """`frame[columns]` in the dialect: header, then one record per row."""
    columns = list(columns)
    lines = [",".join(columns)]
    if len(frame):
        records = quote(frame[columns[0]])
        for column in columns[1:]:
            records = records + "," + quote(frame[column])
        lines.extend(records.tolist())
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
