"""One writer at a time, for each of the two things studylog writes.

- the store (results/ and the run cache): `run` and `build` (which runs stale labs);
- the site (the generated pages in site_src/, the engine config, site/): `build` and `serve`.

A second command that needs a lock held elsewhere refuses at once with a clear message
rather than interleaving writes: a `build` while `serve --drafts` runs would otherwise
rewrite the pages it serves without their drafts. `run` during `serve` is fine, and the
served lab pages follow the new results. Each lock is an flock on a file in .studylog/, so
the kernel releases it when the holder exits, even by SIGKILL.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator

from studylog.errors import StudylogError
from studylog.project import Project


STORE, SITE = "lock", "site.lock"


@contextlib.contextmanager
def project_lock(project: Project, what: str, name: str = STORE) -> Iterator[None]:
    """Hold the lock file `name` (STORE or SITE) while `what` (a command) runs."""
    project.work_dir.mkdir(parents=True, exist_ok=True)
    path = project.work_dir / name
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
