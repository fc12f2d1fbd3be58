"""Labs: `labs/NAME.py`, Jupytext percent format, the source of truth for an executable lab.

The Jupytext header carries the lab's metadata under `jupyter: studylog:`:

    # ---
    # jupyter:
    #   studylog:
    #     title: Ring all-reduce
    #     summary: Naive, tree and ring all-reduce over Ray actors, measured.
    #     code-fold: true
    #     profiles:
    #       quick: {size: 1000}
    #       full: {size: 100000000}
    # ---

`code-fold` (optional, Quarto's option and values: false, true, or show for folded but open)
folds the code of every cell on the lab's page; a cell's own `code-fold=` option, or Jupyter
Book's `hide-input` tag, decides for that cell. One code cell is tagged `parameters` (papermill's convention) and holds plain assignments
`name = value`; a profile overrides some of them, and only those.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jupytext
from nbformat import NotebookNode

from studylog.errors import Problem
from studylog.labs.imports import PARSING
from studylog.papers.citations import find_citations

REQUIRED_PROFILES = ("quick", "full")
PARAMETERS_TAG = "parameters"
MARKDOWN_MARKER = re.compile(r"^# %%.*\[(markdown|md)\]")
RESERVED_NAMES = ("index",)  # the site's labs/index.md lists the labs


@dataclass(frozen=True)
class Lab:
    """A lab's metadata, read from its source."""

    name: str
    path: Path  # relative to the project root
    title: str
    summary: str
    parameters: dict[str, str]  # name -> the expression in the parameters cell
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)
    code_fold: bool | str = False  # the page's default for code cells: False, True or "show"
    citations: tuple[tuple[str, int], ...] = ()  # (key, line in the .py file) of each citation in its prose

    def overrides(self, profile: str) -> dict[str, Any]:
        """The parameter values `profile` sets (empty for a profile the lab does not declare)."""
        return dict(self.profiles.get(profile, {}))


def read_notebook(path: Path) -> NotebookNode:
    """The lab as a notebook, as Jupytext reads it."""
    return jupytext.read(path, fmt="py:percent")


def read_lab(path: Path, shown_as: Path) -> tuple[Lab | None, list[Problem]]:
    """Read and validate one lab; return it, or None and every problem found."""
    if path.stem in RESERVED_NAMES:
        return None, [Problem(shown_as, 1, f"a lab cannot be named {path.stem!r}: the site's labs/{path.stem}.md is "
                                           "the labs index; rename the file")]
    try:
        text = path.read_text(encoding="utf-8")
        notebook = jupytext.reads(text, fmt="py:percent")
    except UnicodeDecodeError:
        return None, [Problem(shown_as, 1, "not UTF-8")]
    except Exception as err:  # Jupytext raises many kinds on malformed headers
        return None, [Problem(shown_as, 1, f"not a Jupytext percent-format notebook: {err}")]
    lines = text.splitlines()
    header_line = _line_of(lines, r"^#\s+studylog:") or 1
    meta = notebook.metadata.get("studylog")
    problems: list[Problem] = []
    if not isinstance(meta, dict):
        return None, [Problem(shown_as, 1, "no `studylog:` block under `jupyter:` in the header (title, summary, profiles)")]
    for key in ("title", "summary"):
        value = meta.get(key)
        if not isinstance(value, str) or not value.strip():
            problems.append(Problem(shown_as, header_line, f"lab {key} is missing or empty"))
        elif key == "summary" and "\n" in value.strip():
            problems.append(Problem(shown_as, header_line, "lab summary must be one line"))
    if not _is_fold(meta.get("code-fold", False)):
        problems.append(Problem(shown_as, _line_of(lines, r"^#\s+code-fold:") or header_line,
                                f"code-fold: {meta.get('code-fold')!r}: false, true or show"))
    parameters, found = _parameters(notebook, lines, shown_as)
    problems += found + _cell_options(notebook, lines, shown_as)
    profiles = meta.get("profiles")
    profile_line = _line_of(lines, r"^#\s+profiles:") or header_line
    if not isinstance(profiles, dict):
        problems.append(Problem(shown_as, profile_line, "profiles must map quick and full to parameter values"))
        profiles = {}
    for name in REQUIRED_PROFILES:
        if name not in profiles:
            problems.append(Problem(shown_as, profile_line, f"profile {name!r} is missing"))
    for name, values in profiles.items():
        if not isinstance(values, dict):
            problems.append(Problem(shown_as, profile_line, f"profile {name!r} must map parameter names to values"))
            continue
        for key in values:
            if parameters is not None and key not in parameters:
                problems.append(Problem(shown_as, profile_line, f"profile {name!r} sets {key!r}, which is not a parameter"))
    if problems:
        return None, problems
    lab = Lab(path.stem, shown_as, meta["title"].strip(), meta["summary"].strip(), parameters, profiles,
              meta.get("code-fold", False), _citations(notebook, lines))
    return lab, []


def _citations(notebook: NotebookNode, lines: list[str]) -> tuple[tuple[str, int], ...]:
    """Each citation in the lab's Markdown cells with its line in the file: a cell's text
    starts on the line after its `# %% [markdown]` marker, one source line per line."""
    markers = [number for number, line in enumerate(lines, 1) if MARKDOWN_MARKER.match(line)]
    cells = [cell for cell in notebook.cells if cell.cell_type == "markdown"]
    return tuple((cite.key, marker + citation.line)
                 for marker, cell in zip(markers, cells)
                 for citation in find_citations(cell.source)
                 for cite in citation.cites)


def _parameters(notebook: NotebookNode, lines: list[str], shown_as: Path) -> tuple[dict[str, str] | None, list[Problem]]:
    cells = [c for c in notebook.cells if c.cell_type == "code" and PARAMETERS_TAG in c.metadata.get("tags", [])]
    line = _line_of(lines, r"^# %%.*parameters") or 1
    if len(cells) != 1:
        what = "no cell" if not cells else f"{len(cells)} cells"
        return None, [Problem(shown_as, line, f"{what} tagged 'parameters'; a lab has exactly one")]
    try:
        with PARSING:
            tree = ast.parse(cells[0].source)
    except SyntaxError as err:
        return None, [Problem(shown_as, line + (err.lineno or 1), f"parameters cell: {err.msg}")]
    parameters: dict[str, str] = {}
    for statement in tree.body:
        target = statement.targets[0] if isinstance(statement, ast.Assign) and len(statement.targets) == 1 else None
        if isinstance(statement, ast.AnnAssign):
            target = statement.target
        if not isinstance(target, ast.Name) or statement.value is None:
            return None, [Problem(shown_as, line + statement.lineno, "the parameters cell holds only `name = value` lines")]
        parameters[target.id] = ast.get_source_segment(cells[0].source, statement.value) or ""
    return parameters, []


def _cell_options(notebook: NotebookNode, lines: list[str], shown_as: Path) -> list[Problem]:
    """A cell's `timeout_s` (`# %% timeout_s=7200`) must be a positive whole number of
    seconds, its `code-fold` false, true or "show", its `fig-cap` a caption or a list of them;
    a header option Jupytext could not read (`timeout_s=2h`) is reported, not ignored."""
    headers = [i for i, line in enumerate(lines, start=1) if line.startswith("# %%")]
    unmarked = max(0, len(notebook.cells) - len(headers))  # cells before the first `# %%` have no header
    problems = []
    for line, cell in zip(headers, notebook.cells[unmarked:]):
        garbled = cell.metadata.get("incorrectly_encoded_metadata")
        if garbled is not None:
            problems.append(Problem(shown_as, line, f"cell option {garbled!r} cannot be read: write name=value "
                                                    "with a number, true/false or a quoted string"))
        if not _is_fold(cell.metadata.get("code-fold", False)):
            problems.append(Problem(shown_as, line, f"code-fold={cell.metadata['code-fold']!r}: false, true or \"show\""))
        caption = cell.metadata.get("fig-cap", "")
        if not (isinstance(caption, str) or (isinstance(caption, list) and all(isinstance(c, str) for c in caption))):
            problems.append(Problem(shown_as, line, "fig-cap: a quoted caption, or a list of them (one per figure)"))
        timeout = cell.metadata.get("timeout_s")
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int) or timeout <= 0):
            problems.append(Problem(shown_as, line, f"timeout_s={timeout!r}: a cell's timeout is a positive whole "
                                                    "number of seconds, e.g. timeout_s=7200"))
    return problems


def _is_fold(value: object) -> bool:
    return isinstance(value, bool) or value == "show"


def _line_of(lines: list[str], pattern: str) -> int | None:
    regex = re.compile(pattern)
    return next((i for i, line in enumerate(lines, start=1) if regex.search(line)), None)
