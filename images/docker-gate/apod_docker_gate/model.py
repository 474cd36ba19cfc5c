"""What the gate passes around: the request it read, the request it forwards, a refusal,
the facts it asks the engine for; and the query string rules every endpoint shares."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import parse_qsl, urlencode

PREFIX = "refused by the APOD Docker gate: "


class Refused(Exception):
    """Not forwarded: `reason` goes back as {"message": ...} with `status`."""

    def __init__(self, reason: str, status: int = 403) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status

    @property
    def message(self) -> str:
        return PREFIX + self.reason


class Facts(Protocol):
    """What the engine says, asked only for the request being checked."""

    def container_labels(self, container_id: str) -> Mapping[str, str] | None:
        """None: no such container."""

    def image_user(self, image: str) -> str | None:
        """The image's USER ("" when it sets none); None: no such image."""


@dataclass(frozen=True)
class Request:
    method: str
    target: str  # as sent: path and query
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-case names
    body: bytes = b""

    @property
    def path(self) -> str:
        return self.target.partition("?")[0]

    @property
    def query(self) -> str:
        return self.target.partition("?")[2]

    @property
    def upgrade(self) -> bool:
        """The client asks for the raw stream (attach): `Upgrade: tcp`."""
        return self.headers.get("upgrade", "").lower() == "tcp"


@dataclass(frozen=True)
class Forward:
    """The request the engine gets: built from what was checked, nothing else."""

    method: str
    target: str
    body: bytes = b""
    content_type: str | None = None
    upgrade: bool = False


def query(request: Request, allowed: Mapping[str, re.Pattern[str]]) -> dict[str, str]:
    """The query's parameters, each at most once, each allowed with a value it accepts."""
    try:
        pairs = parse_qsl(request.query, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        if request.query:
            raise Refused("the query string does not parse", 400) from None
        pairs = []
    params: dict[str, str] = {}
    for name, value in pairs:
        if name in params:
            raise Refused(f"query parameter {name!r} is given twice", 400)
        if name not in allowed:
            raise Refused(f"query parameter {name!r} is not allowed here")
        if not allowed[name].fullmatch(value):
            raise Refused(f"query parameter {name}={value[:100]!r} is not allowed here")
        params[name] = value
    return params


def target(request: Request, params: Mapping[str, str]) -> str:
    return request.path + (f"?{urlencode(params)}" if params else "")
