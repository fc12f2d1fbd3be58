"""Recording which files a lab reads while it runs, so a changed data file re-runs it.

Installed in the lab's kernel before its first cell (the runner injects the call): a
`sys.addaudithook` hook sees every `open`, and each file opened for reading inside the
project (outside the folders studylog itself owns) is appended to a list file at once, so
the list survives a cell that kills the kernel.
"""

from __future__ import annotations

import os
import sys

IGNORED = (".git", ".venv", ".studylog", "results", "site", "site_src", "src", "__pycache__")
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT


def watch_reads(root: str, out: str) -> None:
    """Append to `out` the path of each file under `root` that this process reads."""
    root = os.path.abspath(root) + os.sep
    seen: set[str] = set()
    busy = False

    def hook(event: str, args: tuple) -> None:
        nonlocal busy
        if event != "open" or busy:
            return
        path, mode, flags = args
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        if not isinstance(path, str) or _writes(mode, flags):
            return
        full = os.path.abspath(path)
        if full in seen or not full.startswith(root) or not os.path.isfile(full):
            return
        relative = full[len(root):]
        if relative.split(os.sep, 1)[0] in IGNORED or relative.endswith((".py", ".pyc")):
            return
        seen.add(full)
        busy = True  # our own write below is an `open` too
        try:
            with open(out, "a", encoding="utf-8") as handle:
                handle.write(relative + "\n")
        finally:
            busy = False

    sys.addaudithook(hook)


def _writes(mode: object, flags: object) -> bool:
    if isinstance(mode, str):
        return any(c in mode for c in "wax+")
    return isinstance(flags, int) and bool(flags & WRITE_FLAGS)
