"""Fault injection for the recorder's tests: a disk that fills up (see the ``disk`` fixture in conftest.py)."""

from __future__ import annotations

import errno
import os


class Disk:
    """A fault-injecting ``os.write`` (and ``posix_fallocate``) for :class:`~chanlog.record.journal.JournalWriter`:
    ``full`` makes every write fail with ENOSPC after writing ``partial`` bytes (a short write, as a filling disk
    does), and every reservation fail."""

    def __init__(self) -> None:
        self.full = False
        self.partial = 0
        self.calls = 0

    def __call__(self, fd: int, data) -> int:
        self.calls += 1
        if self.full:
            if self.partial and len(data) > self.partial:
                done = os.write(fd, bytes(data[:self.partial]))
                self.partial = 0
                return done
            raise OSError(errno.ENOSPC, "No space left on device")
        return os.write(fd, data)

    def fallocate(self, fd: int, offset: int, length: int) -> None:
        """``os.posix_fallocate``, failing with ENOSPC while ``full`` (a reservation for mapped appends)."""
        self.calls += 1
        if self.full:
            raise OSError(errno.ENOSPC, "No space left on device")
        os.posix_fallocate(fd, offset, length)


def threads_then_fork() -> tuple[int, int]:
    """In a worker process: the threads it has (from /proc), then fork a child as a transcript written in
    parts does; ``(threads, the child's exit status)`` (tests/test_capture.py: forking with one thread is
    safe, and Python 3.12+ warns of a fork with more)."""
    threads = len(os.listdir("/proc/self/task"))
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os._exit(0)
    return threads, os.waitpid(pid, 0)[1]
