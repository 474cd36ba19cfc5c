"""How long the real service takes, and when its gateway gives up.

nasa/apod-api answers a range by scraping one apod.nasa.gov page per day, one after
another, so an answer costs days x page time; the api.data.gov gateway in front of it
cuts an answer that takes too long with a 504 page. An instant local server hides both,
so this model puts them back: a cost per day answered, a gateway time-out, and now and
then a request the service never answers.
"""

from __future__ import annotations

import math
import random
import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class Timing:
    """What happens to one request: wait `seconds`, then answer, or 504 when `cut`."""

    seconds: float
    cut: bool


class LatencyModel:
    def __init__(
        self,
        day_cost: float = 0.0,
        gateway_timeout: float | None = None,
        hang_rate: float = 0.0,
        rng: random.Random | None = None,
    ):
        if day_cost < 0:
            raise ValueError("day_cost must be >= 0")
        if gateway_timeout is not None and gateway_timeout <= 0:
            raise ValueError("gateway_timeout must be > 0 (None: no gateway time-out)")
        if not 0.0 <= hang_rate <= 1.0:
            raise ValueError("hang_rate must be between 0 and 1")
        self.day_cost = day_cost
        self.gateway_timeout = gateway_timeout
        self.hang_rate = hang_rate
        self.rng = rng or random.Random()  # noqa: S311 - picks test answers, not secrets
        self._lock = threading.Lock()  # one rng shared by the handler threads

    def timing(self, days: int, extra: float = 0.0, hang: bool = False) -> Timing:
        """The fate of a request that makes the service scrape `days` pages.

        `extra` is added time (a delay fault); `hang` forces a request that never ends.
        """
        if not hang and self.hang_rate:
            with self._lock:
                hang = self.rng.random() < self.hang_rate
        seconds = math.inf if hang else extra + days * self.day_cost
        if self.gateway_timeout is not None and seconds > self.gateway_timeout:
            return Timing(self.gateway_timeout, cut=True)
        return Timing(seconds, cut=False)
