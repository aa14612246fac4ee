"""One owner per state_dir: an exclusive lock on a file in it, holding the owner's pid.

The daemon, the executors, the reconciliation job and `orderd paper-venue --state`
each take it before they open anything there; a second owner gets `StateDirInUse`
and touches nothing. The lock is `flock`: the kernel drops it when its owner exits,
however it exits, so a kill -9 never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

LOCK_FILE = "orderd.lock"


class StateDirInUse(RuntimeError):
    """Another process (or another owner in this one) holds the state_dir."""

    def __init__(self, state_dir: Path, pid: int | None) -> None:
        super().__init__(f"state_dir {state_dir} is in use by pid "
                         f"{pid if pid is not None else '(unknown)'}")
        self.state_dir = state_dir
        self.pid = pid


class StateDirLock:
    """The lock of one state_dir; `acquire` once, `release` when done."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.path = state_dir / LOCK_FILE
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock (creating state_dir if missing), or raise StateDirInUse."""
        if self._fd is not None:
            return
        self.state_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            raise StateDirInUse(self.state_dir, pid) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Let go (the file stays: removing it would race with the next owner)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the only descriptor drops the flock


def in_use(state_dir: Path) -> StateDirInUse | None:
    """Whether another owner holds state_dir now, without taking it or creating anything."""
    try:
        fd = os.open(state_dir / LOCK_FILE, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return StateDirInUse(state_dir, _read_pid(fd))
    finally:
        os.close(fd)  # drops the lock if it was taken
    return None


def _read_pid(fd: int) -> int | None:
    text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    return int(text) if text.isdigit() else None
