"""Executing one lab: a fresh Jupyter kernel of this interpreter, run by nbclient.

The profile's values go in a cell tagged `injected-parameters` right after the lab's
`parameters` cell (papermill's convention). A setup cell, removed before the notebook is
stored, starts recording the data files the lab reads. Metrics arrive through the file
that `studylog.record` appends to.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

from .labs import PARAMETERS_TAG, Lab, read_notebook
from .project import Project
from .record import METRICS_ENV

SETUP_TAG = "studylog-setup"
INJECTED_TAG = "injected-parameters"
DEFAULT_CELL_TIMEOUT_S = 600


@dataclass(frozen=True)
class Execution:
    """What running a lab produced."""

    status: str  # ok, failed, timeout, died
    notebook: nbformat.NotebookNode
    duration_s: float
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    reads: tuple[str, ...] = ()  # data files read, relative to the project root
    error: dict[str, Any] | None = None


def prepare(lab: Lab, notebook: nbformat.NotebookNode, profile: str, root: Path, reads_file: Path) -> nbformat.NotebookNode:
    """The notebook to execute: setup cell first, profile values after the parameters cell."""
    cells = list(notebook.cells)
    at = next(i for i, c in enumerate(cells) if c.cell_type == "code" and PARAMETERS_TAG in c.metadata.get("tags", []))
    overrides = lab.overrides(profile)
    lines = [f"# profile: {profile}"] + [f"{name} = {value!r}" for name, value in overrides.items()]
    injected = nbformat.v4.new_code_cell("\n".join(lines), metadata={"tags": [INJECTED_TAG]})
    setup = nbformat.v4.new_code_cell(
        f"import studylog.tracking\nstudylog.tracking.watch_reads({str(root)!r}, {str(reads_file)!r})",
        metadata={"tags": [SETUP_TAG]},
    )
    notebook.cells = [setup, *cells[: at + 1], injected, *cells[at + 1 :]]
    return notebook


def execute(project: Project, lab: Lab, profile: str, cell_timeout_s: int = DEFAULT_CELL_TIMEOUT_S, on_cell=None) -> Execution:
    """Run `lab` under `profile` and return what happened; never raises for a lab's failure."""
    with tempfile.TemporaryDirectory(prefix=f"studylog-{lab.name}-") as tmp:
        metrics_file, reads_file = Path(tmp) / "metrics.jsonl", Path(tmp) / "reads.txt"
        notebook = prepare(lab, read_notebook(project.root / lab.path), profile, project.root, reads_file)
        # The kernel listens on 127.0.0.1 (jupyter_client's default). IPC sockets would avoid
        # the port, but with them nbclient did not notice a kernel that exits mid-cell.
        running = [None]  # index of the cell executing now, counted without the setup cell

        def started(cell, cell_index: int) -> None:
            running[0] = cell_index - 1
            if on_cell:
                on_cell(cell_index - 1)

        def timeout_of(cell) -> int:  # a cell meant to run long says so: `# %% timeout_s=1800`
            return max(cell_timeout_s, int(cell.metadata.get("timeout_s", 0)))

        client = NotebookClient(
            notebook,
            timeout=cell_timeout_s,
            timeout_func=timeout_of,
            kernel_name="python3",
            record_timing=False,  # stored notebooks change only when results do
            resources={"metadata": {"path": str(project.root)}},
            on_cell_start=started,
        )
        env = {**os.environ, METRICS_ENV: str(metrics_file), "PYTHONHASHSEED": "0"}
        start = time.perf_counter()
        status, error = "ok", None
        kernel_log = open(Path(tmp) / "kernel.log", "w", encoding="utf-8")  # its stderr, not our terminal
        try:
            client.execute(env=env, stderr=kernel_log, stdout=kernel_log)
        except CellTimeoutError as err:
            status, error = "timeout", _error(notebook, running[0], "timeout", f"a cell ran longer than {timeout_of(notebook.cells[running[0] + 1])} s", err)
        except DeadKernelError as err:
            status, error = "died", _error(notebook, running[0], "died", "the kernel died", err)
        except CellExecutionError as err:
            status, error = "failed", _error(notebook, running[0], "failed", "a cell raised", err)
        finally:
            kernel_log.close()
        duration = time.perf_counter() - start
        notebook.cells = [c for c in notebook.cells if SETUP_TAG not in c.metadata.get("tags", [])]
        return Execution(status, notebook, duration, _metrics(metrics_file), _reads(reads_file), error)


def _error(notebook: nbformat.NotebookNode, cell: int | None, status: str, summary: str, err: Exception) -> dict[str, Any]:
    """Where and why a run stopped: the cell (counted without the setup cell) and traceback."""
    shown = [c for c in notebook.cells if SETUP_TAG not in c.metadata.get("tags", [])]
    raised = next((o for o in shown[cell].get("outputs", []) if o.get("output_type") == "error"), None) if cell is not None else None
    if raised:
        return {"status": status, "summary": summary, "cell": cell, "ename": raised.get("ename"),
                "evalue": raised.get("evalue"), "traceback": raised.get("traceback", [])}
    first_line = str(err).splitlines()[0] if str(err) else ""
    return {"status": status, "summary": summary, "cell": cell, "ename": type(err).__name__, "evalue": first_line, "traceback": []}


def _metrics(path: Path) -> dict[str, dict[str, Any]]:
    metrics: dict[str, dict[str, Any]] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                item = json.loads(line)
            except ValueError:
                continue
            metrics[item["name"]] = {"value": item["value"], "unit": item["unit"], "description": item.get("description", "")}
    return metrics


def _reads(path: Path) -> tuple[str, ...]:
    if not path.exists():
        return ()
    return tuple(sorted(set(path.read_text(encoding="utf-8").splitlines())))
