"""The run lock: exclusive, waits, gives up with a retryable exit code."""

import threading
import time
from pathlib import Path

import pytest

from apod_common.errors import StepError
from apod_version.lock import exclusive

pytestmark = pytest.mark.unit


def test_a_held_lock_times_out_with_exit_5(tmp_path: Path):
    path = tmp_path / "apod-version.lock"
    with exclusive(path, timeout=1):
        started = time.monotonic()
        with pytest.raises(StepError) as err, exclusive(path, timeout=0.5):
            pass
        assert time.monotonic() - started >= 0.5
    assert err.value.code == 5
    assert str(path) in err.value.reason


def test_a_waiter_gets_the_lock_when_it_is_released(tmp_path: Path):
    path = tmp_path / "apod-version.lock"
    order: list[str] = []
    held = threading.Event()

    def holder():
        with exclusive(path, timeout=1):
            held.set()
            time.sleep(0.5)
            order.append("first done")

    thread = threading.Thread(target=holder)
    thread.start()
    held.wait(5)
    with exclusive(path, timeout=10):
        order.append("second in")
    thread.join()
    assert order == ["first done", "second in"]


def test_a_directory_can_be_locked(tmp_path: Path):
    with exclusive(tmp_path, timeout=1), pytest.raises(StepError), exclusive(tmp_path, timeout=0):
        pass
