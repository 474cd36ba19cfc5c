"""The steps' file runtime: atomic writes under one mode policy, and the one lock."""

import datetime as dt
import os
import stat
import threading
from pathlib import Path

import pytest
from support.clock import ManualClock

from apod_common import files
from apod_common.errors import StepError
from apod_common.locks import exclusive

pytestmark = pytest.mark.unit


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def strict_umask():
    # The policy must hold whatever the umask: try it under the strictest usual one.
    old = os.umask(0o077)
    yield
    os.umask(old)


def test_a_new_file_is_group_writable_whatever_the_umask(tmp_path, strict_umask):
    target = tmp_path / "a" / "b" / "file.csv"
    files.atomic_write(target, b"data")
    assert target.read_bytes() == b"data"
    assert mode(target) == files.FILE_MODE == 0o664
    assert mode(tmp_path / "a") == mode(tmp_path / "a" / "b") == files.DIR_MODE == 0o775
    assert [p.name for p in target.parent.iterdir()] == ["file.csv"]


def test_a_replaced_file_keeps_its_mode(tmp_path):
    target = tmp_path / "file.csv"
    target.write_bytes(b"old")
    os.chmod(target, 0o640)
    files.atomic_write(target, b"new")
    assert (target.read_bytes(), mode(target)) == (b"new", 0o640)


def test_an_existing_directory_is_left_as_it_is(tmp_path):
    os.chmod(tmp_path, 0o700)
    files.make_dirs(tmp_path / "new")
    assert (mode(tmp_path), mode(tmp_path / "new")) == (0o700, 0o775)


def test_mtime_stamps_the_new_file(tmp_path):
    moment = dt.datetime(2024, 2, 1, 8, 30, 5, tzinfo=dt.UTC)
    target = tmp_path / "chunk.json"
    files.atomic_write(target, b"[]", mtime=moment)
    assert target.stat().st_mtime == moment.timestamp()


def test_a_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path, monkeypatch):
    target = tmp_path / "file.csv"
    target.write_bytes(b"old")

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="No space"):
        files.atomic_write(target, b"new")
    assert target.read_bytes() == b"old"
    assert files.temp_files(tmp_path) == []


def test_temp_files_are_found_per_target_or_all(tmp_path):
    for name in (".a.csv.x1.tmp", ".b.json.x2.tmp", "a.csv", ".hidden", "x.tmp"):
        (tmp_path / name).write_text("")
    assert [p.name for p in files.temp_files(tmp_path, tmp_path / "a.csv")] == [".a.csv.x1.tmp"]
    assert [p.name for p in files.temp_files(tmp_path)] == [".a.csv.x1.tmp", ".b.json.x2.tmp"]


def test_remove_says_whether_there_was_a_file(tmp_path):
    target = tmp_path / "stale.csv"
    target.write_text("x")
    assert files.remove(target) is True
    assert files.remove(target) is False


# --- the lock ---------------------------------------------------------------------------


def test_a_held_lock_times_out_with_exit_5(tmp_path: Path):
    path = tmp_path / "apod-version.lock"
    clock = ManualClock()
    with (
        exclusive(path, timeout=1, what="the repository"),
        pytest.raises(StepError) as err,
        exclusive(path, timeout=0.5, what="the repository", clock=clock),
    ):
        pass
    # It polled until the timeout had passed on its clock, then gave up.
    assert sum(clock.sleeps[:-1]) < 0.5 <= sum(clock.sleeps)
    assert err.value.code == 5
    assert str(path) in err.value.reason
    assert "the repository" in err.value.reason


def test_a_waiter_gets_the_lock_when_it_is_released(tmp_path: Path):
    path = tmp_path / "apod-version.lock"
    order: list[str] = []
    held, waiting, released = threading.Event(), threading.Event(), threading.Event()

    def holder():
        with exclusive(path, timeout=1, what="x"):
            held.set()
            waiting.wait(10)  # the other run is waiting for the lock now
            order.append("first done")
        released.set()

    def next_poll(_: float) -> None:
        waiting.set()
        released.wait(10)

    thread = threading.Thread(target=holder)
    thread.start()
    held.wait(10)
    with exclusive(path, timeout=10, what="x", clock=ManualClock(on_sleep=next_poll)):
        order.append("second in")
    thread.join()
    assert order == ["first done", "second in"]


def test_a_directory_can_be_locked_and_no_file_is_left(tmp_path: Path):
    with (
        exclusive(tmp_path, timeout=1, what="x"),
        pytest.raises(StepError),
        exclusive(tmp_path, timeout=0, what="x"),
    ):
        pass
    assert list(tmp_path.iterdir()) == []


def test_a_lock_file_is_made_under_the_mode_policy(tmp_path: Path, strict_umask):
    path = tmp_path / "run.lock"
    with exclusive(path, timeout=1, what="x"):
        pass
    assert mode(path) == files.FILE_MODE
    os.chmod(path, 0o444)  # read access is all another uid needs to take it
    with exclusive(path, timeout=1, what="x"):
        pass
