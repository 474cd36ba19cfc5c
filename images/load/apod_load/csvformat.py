"""Writing and reading the dataset CSV in the pipeline's one dialect (apod_common.schema).

The writer is vectorised and written out here rather than DataFrame.to_csv because
Python 3.11's csv module, with "\\n" line ends, leaves a field holding a bare "\\r"
unquoted; pandas and Postgres then read that "\\r" as the end of the record.
"""

import io

from apod_common.schema import CSV_ENCODING, CSV_LINE_TERMINATOR

# Minimal quoting: only fields holding a delimiter, a quote or a line break are quoted.
_NEEDS_QUOTES = r'[",\r\n]'


def quote(values):
    """One column of text as CSV fields (str Series in, str Series out)."""
    text = values.fillna("").astype(str)
    needs = text.str.contains(_NEEDS_QUOTES, regex=True)
    quoted = '"' + text.str.replace('"', '""', regex=False) + '"'
    return text.where(~needs, quoted)


def to_csv_bytes(frame, columns) -> bytes:
    """`frame[columns]` as UTF-8 CSV: header, one record per row, "\\n" after each."""
    columns = list(columns)
    lines = [",".join(columns)]
    if len(frame):
        records = quote(frame[columns[0]])
        for column in columns[1:]:
            records = records + "," + quote(frame[column])
        lines.extend(records.tolist())
    return (CSV_LINE_TERMINATOR.join(lines) + CSV_LINE_TERMINATOR).encode(CSV_ENCODING)


def read_csv_bytes(data: bytes, usecols=None):
    """Every field as text, missing as "" (never NaN), so values compare byte for byte."""
    import pandas as pd

    return pd.read_csv(
        io.BytesIO(data),
        dtype=str,
        keep_default_na=False,
        na_filter=False,
        encoding=CSV_ENCODING,
        usecols=usecols,
    )
