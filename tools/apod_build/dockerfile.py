"""Reading a Dockerfile as docker does, as far as the graph and the content tags need it:
instructions, variable substitution, the images a build reads FROM."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

from apod_build.errors import InputError


def instructions(text: str) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) per instruction: continuation lines joined, comments dropped."""
    out, pending = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#") or (not line and not pending):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        whole = (pending + line).strip()
        pending = ""
        if whole:
            keyword, _, rest = whole.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    if pending.strip():
        keyword, _, rest = pending.strip().partition(" ")
        out.append((keyword.upper(), rest.strip()))
    return out


_VARIABLE = re.compile(
    r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([-?+])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)"
)


def expand(text: str, variables: Mapping[str, str]) -> str:
    """Dockerfile variable substitution: $X, ${X}, ${X:-default}, ${X:+alt}, ${X:?message}."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(4)
        value = variables.get(name, "")
        operator, word = match.group(2), match.group(3) or ""
        if operator == "-":
            return value or word
        if operator == "+":
            return word if value else ""
        if operator == "?" and not value:
            raise InputError(f"{name}: {word or 'not set'}")
        return value

    return _VARIABLE.sub(replace, text)


def variables_in(text: str) -> set[str]:
    """The variables a line substitutes."""
    return {m.group(1) or m.group(4) for m in _VARIABLE.finditer(text)}


def words(arguments: str) -> tuple[list[str], list[str]]:
    """(--flags, the rest) of a COPY/ADD/FROM line; the JSON form too."""
    flags = []
    rest = arguments
    while rest.startswith("--"):
        flag, _, rest = rest.partition(" ")
        flags.append(flag)
        rest = rest.lstrip()
    if rest.startswith("["):
        return flags, list(json.loads(rest))
    return flags, rest.split()


def copy_from(flags: list[str]) -> str | None:
    """The --from=... of a COPY/ADD, if any."""
    return next((f.partition("=")[2] for f in flags if f.startswith("--from=")), None)


@dataclass(frozen=True)
class References:
    """The images a Dockerfile's build reads, as written (unexpanded): those it builds
    FROM and those COPY --from takes files of, its own stages left out."""

    images: tuple[str, ...]

    @classmethod
    def read(cls, text: str) -> References:
        found: list[str] = []
        stages: set[str] = set()
        for keyword, arguments in instructions(text):
            if keyword == "FROM":
                _, parts = words(arguments)
                if not parts:
                    raise InputError(f"FROM {arguments}: no image")
                if parts[0] not in stages:
                    found.append(parts[0])
                if len(parts) >= 3 and parts[1].upper() == "AS":
                    stages.add(parts[2])
            elif keyword in ("COPY", "ADD"):
                source = copy_from(words(arguments)[0])
                if source is not None and source not in stages and not source.isdigit():
                    found.append(source)
        return cls(tuple(dict.fromkeys(found)))


# `RUN --mount=type=cache,...`: BuildKit's; the plain builder refuses the option.
_RUN_MOUNT = re.compile(r"--mount=\S+[ \t]+")


def without_run_mounts(text: str) -> str:
    """The Dockerfile for a builder without BuildKit: its RUN --mount options removed
    (ONBUILD RUN ones too), everything else as it was."""
    return _RUN_MOUNT.sub("", text)
