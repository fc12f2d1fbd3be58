"""One writer at a time: `run` and `build` hold an exclusive lock on the project.

A second `studylog run` or `build` in the same project refuses at once with a clear
message rather than interleaving writes to results/ or site/. The lock is an flock on a
file in .studylog/, so the kernel releases it when the holder exits, even by SIGKILL.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator

from .errors import StudylogError
from .project import Project


@contextlib.contextmanager
def project_lock(project: Project, what: str) -> Iterator[None]:
    project.work_dir.mkdir(parents=True, exist_ok=True)
    path = project.work_dir / "lock"
    with open(path, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another studylog"
            raise StudylogError(f"{holder} is running in this project; try again when it ends") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"studylog {what} (pid {os.getpid()})")
        handle.flush()
        yield
