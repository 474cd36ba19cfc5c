"""JSON bodies, parsed as the engine would read them and checked field by field.

The engine (Go) matches a field name in any case and keeps the last of duplicate keys:
a second `privileged` would override a checked `Privileged`. So duplicate keys (in any
case) are refused, a known field written in another case is refused, and what is
forwarded is the checked object re-serialised, never the bytes as they came.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from apod_docker_gate.model import Refused


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: set[str] = set()
    for key, _ in pairs:
        folded = key.casefold()
        if folded in seen:
            raise Refused(f"key {key[:100]!r} appears twice in one JSON object", 400)
        seen.add(folded)
    return dict(pairs)


def _no_constant(name: str) -> Any:
    raise Refused(f"{name} is not JSON", 400)


def parse_json(body: bytes, what: str) -> Any:
    try:
        return json.loads(
            body.decode("utf-8"), object_pairs_hook=_unique_keys, parse_constant=_no_constant
        )
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        detail = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise Refused(f"the {what} is not valid JSON ({detail})", 400) from None


def dump_json(value: Any) -> bytes:
    try:
        return json.dumps(value, ensure_ascii=True, allow_nan=False).encode("ascii")
    except ValueError:
        raise Refused("the body holds a number JSON cannot carry", 400) from None


Rule = Callable[[str, Any], None]  # (where, value) -> None, or raises Refused


def fields(where: str, obj: Any, rules: Mapping[str, Rule]) -> None:
    """Check every key of a Docker API object: known ones by their rule; one written in
    another case (the engine would take it for the known one) or in non-ASCII letters
    refused; any other only when null (the engine ignores it, or takes it as zero)."""
    if not isinstance(obj, dict):
        raise Refused(f"{where or 'the body'} must be a JSON object", 400)
    known = {name.casefold(): name for name in rules}
    for key, value in obj.items():
        name = json.dumps(key)[1:-1]  # a reason is one line, whatever the key holds
        at = f"{where}.{name}" if where else name
        if key in rules:
            rules[key](at, value)
        elif not key.isascii() or key.casefold() in known:
            raise Refused(f"{at[:100]!r}: write the field as the Docker API names it")
        elif value is not None:
            raise Refused(f"{at} is not allowed")


def anything(where: str, value: Any) -> None:
    """Harmless whatever it holds (a name, a limit that only restricts)."""


def of_type(*types: type) -> Rule:
    def rule(where: str, value: Any) -> None:
        if value is None:
            return
        if bool in types:
            right = isinstance(value, bool)
        else:  # in Python a bool is an int too; not for the engine
            right = isinstance(value, types) and not isinstance(value, bool)
        if not right:
            raise Refused(f"{where} has the wrong type", 400)

    return rule


BOOLEAN = of_type(bool)
NUMBER_VALUE = of_type(int, float)
TEXT = of_type(str)


def strings(where: str, value: Any) -> None:
    if value is not None and not (
        isinstance(value, list) and all(isinstance(v, str) for v in value)
    ):
        raise Refused(f"{where} must be a list of strings", 400)


def command(where: str, value: Any) -> None:
    if not isinstance(value, str):
        strings(where, value)


def is_empty(value: Any) -> bool:
    """null, false, 0, "", [] or {}."""
    return value in (None, False, "", [], {}) or (type(value) is int and value == 0)


def empty(reason: str) -> Rule:
    """Allowed only empty."""

    def rule(where: str, value: Any) -> None:
        if not is_empty(value):
            raise Refused(f"{reason}: {where}={show(value)}")

    return rule


def null(reason: str) -> Rule:
    """Allowed only absent or null (where an empty value means something)."""

    def rule(where: str, value: Any) -> None:
        if value is not None:
            raise Refused(f"{reason}: {where}={show(value)}")

    return rule


def one_of(reason: str, *values: Any) -> Rule:
    def rule(where: str, value: Any) -> None:
        if value is not None and not any(value == v and type(value) is type(v) for v in values):
            raise Refused(f"{reason}: {where}={show(value)}")

    return rule


def show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=True)
    return text if len(text) <= 120 else text[:117] + "..."
