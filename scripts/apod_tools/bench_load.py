"""How loaded the machine was while the bench measured: the 1-minute load average
(/proc/loadavg), sampled by a thread all through each measuring window.

A window whose load went above the core count was measured while something else (or the
bench itself) wanted more CPU than there was: its figures say how contended the machine
was, not how fast the code is, so it is marked noisy and its figures get no verdict. The
1-minute average trails what happens by about a minute, so the bench can wait before a
window for the load to fall (settle). Standard library only.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

LOADAVG = Path("/proc/loadavg")
# The kernel recomputes the load average every 5 s: sampling faster reads the same value.
INTERVAL = 5.0


def read_loadavg(path: Path = LOADAVG) -> float:
    """The 1-minute load average: the first field of /proc/loadavg."""
    return float(path.read_text(encoding="ascii").split()[0])


def cores() -> int:
    return os.cpu_count() or 1


@dataclass(frozen=True)
class Load:
    """The load average samples of one window, against the machine's cores."""

    samples: tuple[float, ...]
    cores: int

    @property
    def peak(self) -> float:
        return max(self.samples)

    @property
    def mean(self) -> float:
        return sum(self.samples) / len(self.samples)

    @property
    def noisy(self) -> bool:
        return self.peak > self.cores

    def text(self) -> str:
        verdict = (
            f"above the {self.cores} cores: **noisy, no verdict**"
            if self.noisy
            else f"on {self.cores} cores: quiet"
        )
        return (
            f"1-minute load average peak {self.peak:.2f}, mean {self.mean:.2f} "
            f"({len(self.samples)} samples) {verdict}"
        )

    def to_json(self) -> dict:
        return {
            "peak": self.peak,
            "mean": round(self.mean, 3),
            "samples": list(self.samples),
            "cores": self.cores,
            "noisy": self.noisy,
        }


class LoadSampler:
    """Samples the load when entered, every `interval` seconds in a thread, and when left."""

    def __init__(
        self,
        read: Callable[[], float] = read_loadavg,
        interval: float = INTERVAL,
        machine_cores: int | None = None,
    ) -> None:
        self.read = read
        self.interval = interval
        self.cores = machine_cores or cores()
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-load", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.samples.append(self.read())

    def __enter__(self) -> LoadSampler:
        self.samples.append(self.read())
        self._thread.start()
        return self

    def __exit__(self, *_) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append(self.read())

    def load(self) -> Load:
        return Load(tuple(self.samples), self.cores)


def settle(
    limit: float,
    read: Callable[[], float] = read_loadavg,
    wait: Callable[[float], object] = time.sleep,
    machine_cores: int | None = None,
    interval: float = INTERVAL,
) -> list[float]:
    """Wait until the load is at most the core count, for at most `limit` seconds (a
    setting: counted in `interval` steps, not read from a clock). The readings taken."""
    machine_cores = machine_cores or cores()
    readings = [read()]
    waited = 0.0
    while readings[-1] > machine_cores and waited < limit:
        wait(interval)
        waited += interval
        readings.append(read())
    return readings
