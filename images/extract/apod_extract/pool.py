"""How many requests may be in flight: the pool opens when the API keeps up, and closes
when it pushes back (no I/O; the caller passes the time in)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Pool:
    """An adaptive bound on requests in flight, never above `ceiling`.

    - The first request goes alone: its X-RateLimit-Remaining says whether the quota has
      room for more at once. Then the pool opens to the ceiling.
    - A 5xx, a time-out or a cut halves it; each run of `width` answers in a row then adds
      one back (additive increase, multiplicative decrease, as TCP does with a network).
    - A 429 halves it too, and holds every new request until its Retry-After has passed:
      the quota is the key's, so the other requests would be refused as well.
    - While X-RateLimit-Remaining is below twice the ceiling, one request at a time, so the
      run sees the quota reach 0 and stops cleanly instead of spending requests on 429s.
    """

    ceiling: int
    width: int = 1
    paused_until: float = 0.0
    _opened: bool = False
    _streak: int = 0

    def __post_init__(self) -> None:
        if self.ceiling < 1:
            raise ValueError("the pool needs room for at least one request")

    @property
    def low_water(self) -> int:
        return 2 * self.ceiling

    def room(self, now: float) -> int:
        """Requests that may be in flight at `now`."""
        return 0 if now < self.paused_until else self.width

    def answered(self, remaining: int | None) -> None:
        """A request got its answer; `remaining` is its X-RateLimit-Remaining."""
        if remaining is not None and remaining < self.low_water:
            self.width, self._streak = 1, 0
        elif not self._opened:
            self.width, self._opened = self.ceiling, True
        else:
            self._streak += 1
            if self._streak >= self.width and self.width < self.ceiling:
                self.width, self._streak = self.width + 1, 0

    def troubled(self) -> None:
        """A 5xx, a time-out, a cut or a broken answer."""
        self.width, self._streak, self._opened = max(1, self.width // 2), 0, True

    def rate_limited(self, now: float, wait: float) -> None:
        self.troubled()
        self.paused_until = max(self.paused_until, now + wait)
