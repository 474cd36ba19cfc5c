"""The staging files as pandas frames: transform writes them, load reads the batch back,
checked against the rules the stores enforce (apod_common.rules)."""

from pathlib import Path

import pandas as pd

from apod_common import csvfile, exit_codes, rules
from apod_common.errors import NothingToDo, StepError
from apod_common.schema import CONTENT_COLUMNS, REJECTED_COLUMNS, STAGED_COLUMNS
from apod_common.staging import StagedBatch

_SHOWN_CHARS = 40


def write_batch(path: Path, frame: pd.DataFrame) -> str:
    """The validated batch, atomically; returns its sha256."""
    return csvfile.write(path, frame, STAGED_COLUMNS)


def write_rejected(path: Path, frame: pd.DataFrame) -> str:
    return csvfile.write(path, frame, REJECTED_COLUMNS)


def read_batch(batch: StagedBatch) -> pd.DataFrame:
    """The batch's content columns, checked against the rules the stores enforce, so that
    the CSV never takes a batch that the Postgres load would refuse."""
    try:
        frame = csvfile.read_csv_bytes(batch.path.read_bytes(), usecols=CONTENT_COLUMNS)
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        reason = " ".join(str(exc).split())[:300]
        raise StepError(
            f"{batch.path} is not a readable CSV: {reason}", exit_codes.BAD_INPUT
        ) from None
    if frame.empty:
        raise NothingToDo(f"staged batch {batch.path} has no rows")
    problems = []
    for rule in rules.STORED_RULES:
        broken = rule.broken(frame)
        if broken.any():
            problem = f"{int(broken.sum())} row(s) with {rule.kind}"
            if rule.shows:
                problem += f", e.g. {frame.loc[broken, rule.shows].iloc[0][:_SHOWN_CHARS]!r}"
            problems.append(problem)
    if problems:
        raise StepError(f"{batch.path}: {'; '.join(problems)}", exit_codes.BAD_INPUT)
    return frame
