"""The one exception type for user errors, and the `path:line: message` problem."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with one input file, reported as `path:line: message`. A warning
    (`path:line: warning: message`) is reported but publishes all the same."""

    path: Path
    line: int
    message: str
    warning: bool = False

    def __str__(self) -> str:
        # A file name may hold control characters (a carriage return, a tab); shown escaped,
        # the report stays one `path:line: message` line.
        path = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in str(self.path))
        return f"{path}:{self.line}: {'warning: ' if self.warning else ''}{self.message}"


class StudylogError(Exception):
    """An error the user can fix; the CLI prints it as one line and exits non-zero."""


class ProblemsFound(StudylogError):
    """Input files have problems; nothing may be published while one stands."""

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(problems)
        noun = "problem" if len(problems) == 1 else "problems"
        super().__init__(f"{len(problems)} {noun} found")
