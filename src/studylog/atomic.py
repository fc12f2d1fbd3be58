"""Writing files that another run will read: temp file in the same folder, then rename."""

from __future__ import annotations

import ctypes
import os
import shutil
import tempfile
from pathlib import Path

_RENAME_EXCHANGE = 2  # linux/fs.h


def write_atomic(path: Path, data: bytes | str, durable: bool = True) -> None:
    """Replace `path` with `data` so that a reader sees the old or the new file, never half.

    `durable` also flushes the data to disk before the rename, so a power cut cannot leave
    an empty file; pages that every build regenerates can skip that cost.
    """
    payload = data.encode("utf-8") if isinstance(data, str) else data
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def sync_dir(folder: Path) -> None:
    """Make the folder's entries (a rename, a new file) durable: fsync the folder itself."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_dir(new: Path, target: Path) -> None:
    """Make `new` the folder at `target`. On Linux the two are swapped in one step (renameat2
    with RENAME_EXCHANGE; the standard library has no call for it), so `target` is complete
    at every instant. Elsewhere, or on a file system without it, the old folder is moved
    aside first; a crash between the two renames leaves `target` missing and the old folder
    aside, which `recover_dir` (called first here and by every build) puts back.
    """
    recover_dir(target)
    if not target.exists():
        os.replace(new, target)
        return
    if _exchange(new, target):
        shutil.rmtree(new)  # now holds the old folder
        return
    old = _aside(target)
    shutil.rmtree(old, ignore_errors=True)
    os.replace(target, old)
    os.replace(new, target)
    shutil.rmtree(old)


def recover_dir(target: Path) -> None:
    """Undo a `replace_dir` that stopped between its two renames."""
    old = _aside(target)
    if old.exists() and not target.exists():
        os.replace(old, target)


def _aside(target: Path) -> Path:
    return target.with_name(f".{target.name}.old")


def _exchange(a: Path, b: Path) -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd = -100
    result = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE)
    return result == 0
