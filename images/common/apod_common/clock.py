"""Time as the steps read it: a monotonic clock and a sleep, together, so that a test can
hand in a clock of its own (the waits then take no time and their order is exact) while
the steps keep the system's."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


SYSTEM = SystemClock()
