"""What one `studylog serve` process remembers between regenerations.

A regeneration after an edit would otherwise re-read, re-validate and re-render every log
(half a second at 3650 logs). The steps it repeats are pure functions of a file's bytes,
so their results are kept per file and reused while the file's stamp (mtime, ctime, size,
inode) is unchanged; a file whose stamp moved is read again in full. `build` and `check` start
from an empty memo, that is from the files alone.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def stamp(path: Path) -> tuple[int, ...] | None:
    """What changes whenever the file's bytes can have: the ctime too, which no one can set
    back (a copy that keeps mtime and size still moves it), and the inode (a replaced file)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino


class Memo:
    """Values keyed by (step, path), each valid while its guard is the same."""

    def __init__(self) -> None:
        self._values: dict[tuple[str, Path], tuple[Any, Any]] = {}

    def get(self, step: str, path: Path, guard: Any, compute: Callable[[], T]) -> T:
        """The value `compute()` gave when `guard` was last the same, else a fresh one."""
        kept = self._values.get((step, path))
        if kept is not None and kept[0] == guard:
            return kept[1]
        value = compute()
        self.put(step, path, guard, value)
        return value

    def put(self, step: str, path: Path, guard: Any, value: Any) -> None:
        self._values[step, path] = (guard, value)

    def holds(self, step: str, path: Path, guard: Any, value: Any) -> bool:
        """Whether `value` was put for (step, path) under this same guard."""
        kept = self._values.get((step, path))
        return kept is not None and kept[0] == guard and kept[1] == value

    def per_file(self, step: str, path: Path, compute: Callable[[], T]) -> T:
        """`compute()`, a pure function of the file at `path`, reused while its stamp holds."""
        guard = stamp(path)
        return compute() if guard is None else self.get(step, path, guard, compute)
