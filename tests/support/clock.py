"""A clock for the code under test that moves only when it is slept on: waits take no
time, and a test reads what was waited, in order, instead of timing it."""

from __future__ import annotations

from collections.abc import Callable


class ManualClock:
    def __init__(self, start: float = 1000.0, on_sleep: Callable[[float], None] | None = None):
        self.now = start
        self.sleeps: list[float] = []
        self.on_sleep = on_sleep  # called after each sleep: a test's hook into the wait

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        if self.on_sleep is not None:
            self.on_sleep(seconds)
