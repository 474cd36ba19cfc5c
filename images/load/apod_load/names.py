"""The names the load step takes as arguments, the target table and the loader role,
checked without a database driver, so that `--help` and usage errors stay fast."""

import argparse
import re
from dataclasses import dataclass

DEFAULT_TABLE = "apod.apod_entries"
DEFAULT_LOADER_ROLE = "apod_loader"
# Lower-case unquoted identifiers only: the name then means the same thing in SQL, in
# to_regclass() and in a human's psql session, and never needs quoting rules.
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


@dataclass(frozen=True)
class TableName:
    schema: str
    name: str

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}"


def parse_table(text: str) -> TableName:
    """argparse type for --table: `schema.table`, both plain lower-case identifiers."""
    schema, dot, name = text.partition(".")
    if not dot or not _IDENTIFIER.match(schema) or not _IDENTIFIER.match(name):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not schema.table with lower-case identifiers (e.g. {DEFAULT_TABLE})"
        )
    return TableName(schema, name)


def parse_role(text: str) -> str:
    """argparse type for --loader-role: a plain lower-case identifier."""
    if not _IDENTIFIER.match(text) or text.startswith("pg_"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a plain lower-case role name")
    return text
