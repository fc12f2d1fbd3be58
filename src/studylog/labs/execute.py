"""Executing one lab: a fresh Jupyter kernel of this interpreter, run by nbclient.

The profile's values go in a cell tagged `injected-parameters` right after the lab's
`parameters` cell (papermill's convention). The kernel, and every Python process it starts,
records what it reads (`tracking`). Metrics arrive through the file that `studylog.record`
appends to.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_core.utils import ensure_event_loop, run_sync
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

from studylog.labs.lab import PARAMETERS_TAG, Lab, read_notebook
from studylog.project import Project
from studylog.record import METRICS_ENV
from studylog.labs.tracking import child_environment, read_record

INJECTED_TAG = "injected-parameters"
DEFAULT_CELL_TIMEOUT_S = 600
KERNEL = "studylog-python"
KERNEL_STOP_WAIT_S = 1.0  # how long a kernel asked to stop may take before it is killed
LOG_TAIL_LINES = 40  # of a kernel's own output, kept with a run whose kernel died


@dataclass(frozen=True)
class Execution:
    """What running a lab produced."""

    status: str  # ok, failed, timeout, died
    notebook: nbformat.NotebookNode
    duration_s: float
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Where it ran, as the lab reported it (`record_environment`): {name: facts}
    reported: dict[str, dict[str, Any]] = field(default_factory=dict)
    # What its processes read: {"data"|"module"|"listing": {path relative to the root: digest}}
    reads: dict[str, dict[str, str]] = field(default_factory=dict)
    error: dict[str, Any] | None = None


def prepare(lab: Lab, notebook: nbformat.NotebookNode, profile: str) -> nbformat.NotebookNode:
    """The notebook to execute: the profile's values right after the parameters cell."""
    cells = list(notebook.cells)
    at = next(i for i, c in enumerate(cells) if c.cell_type == "code" and PARAMETERS_TAG in c.metadata.get("tags", []))
    overrides = lab.overrides(profile)
    lines = [f"# profile: {profile}"] + [f"{name} = {value!r}" for name, value in overrides.items()]
    injected = nbformat.v4.new_code_cell("\n".join(lines), metadata={"tags": [INJECTED_TAG]})
    notebook.cells = [*cells[: at + 1], injected, *cells[at + 1 :]]
    return notebook


def kernel_manager(folder: Path) -> AsyncKernelManager:
    """A kernel of this very interpreter (the project's), whatever kernels Jupyter has
    installed elsewhere: a kernelspec written for it in `folder`."""
    spec = folder / "kernels" / KERNEL
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "studylog", "language": "python"}),
                                      encoding="utf-8")
    manager = AsyncKernelManager(kernel_name=KERNEL, kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(spec.parent)]))
    # Asked to stop, ipykernel SIGTERMs its children and waits until none is left, counting
    # the ones that died but were never reaped: a kernel that started Ray and did not stop it
    # took 18 s to exit, and jupyter_client killed its process group after its 5 s default.
    # Every cell has run and reported by then, so the kill comes after one second.
    manager.shutdown_wait_time = KERNEL_STOP_WAIT_S
    return manager


def execute(project: Project, lab: Lab, profile: str, cell_timeout_s: int = DEFAULT_CELL_TIMEOUT_S, on_cell=None) -> Execution:
    """Run `lab` under `profile` and return what happened; never raises for a lab's failure."""
    with tempfile.TemporaryDirectory(prefix=f"studylog-{lab.name}-") as tmp:
        metrics_file, reads_file = Path(tmp) / "metrics.jsonl", Path(tmp) / "reads.txt"
        notebook = prepare(lab, read_notebook(project.root / lab.path), profile)
        # The kernel listens on 127.0.0.1 (jupyter_client's default). IPC sockets would avoid
        # the port, but with them nbclient did not notice a kernel that exits mid-cell.
        running = [None]  # index of the cell executing now

        def started(cell, cell_index: int) -> None:
            running[0] = cell_index
            if on_cell:
                on_cell(cell_index)

        def timeout_of(cell) -> int:  # a cell meant to run long says so: `# %% timeout_s=1800`
            return max(cell_timeout_s, int(cell.metadata.get("timeout_s", 0)))

        client = NotebookClient(
            notebook,
            km=kernel_manager(Path(tmp)),
            timeout=cell_timeout_s,
            timeout_func=timeout_of,
            record_timing=False,  # stored notebooks change only when results do
            resources={"metadata": {"path": str(project.root)}},
            on_cell_start=started,
        )
        env = {**os.environ, **child_environment(project.root, reads_file), METRICS_ENV: str(metrics_file),
               "PYTHONHASHSEED": "0"}
        start = time.perf_counter()
        status, error = "ok", None
        kernel_log = open(Path(tmp) / "kernel.log", "w", encoding="utf-8")  # its stderr, not our terminal
        try:
            client.execute(env=env, stderr=kernel_log, stdout=kernel_log)
        except CellTimeoutError as err:
            status, error = "timeout", _error(notebook, running[0], "timeout", f"a cell ran longer than {timeout_of(notebook.cells[running[0]])} s", err)
        except DeadKernelError as err:
            status, error = "died", _error(notebook, running[0], "died", "the kernel died", err)
            error["log_tail"] = _tail(Path(tmp) / "kernel.log", LOG_TAIL_LINES)
        except CellExecutionError as err:
            status, error = "failed", _error(notebook, running[0], "failed", "a cell raised", err)
        finally:
            # nbclient shuts down only a kernel manager it created itself, and this one is
            # ours: left running, each lab's kernel (and any Ray it started) would hold its
            # memory and processes until studylog exits, while the next labs run. For the
            # same reason it leaves the client's channels open: 13 descriptors a lab.
            if client.km.has_kernel:
                group = getattr(client.km.provisioner, "pgid", None)  # the kernel's session and process group
                run_sync(client.km.shutdown_kernel)()
                # jupyter_client kills the group only when the kernel outlives its SIGTERM; a
                # kernel that exits on it leaves behind children that ignore SIGTERM (Ray's
                # take seconds), so whatever is left of the group is killed here.
                _kill_group(group)
            if client.kc is not None:
                client.kc.stop_channels()
            # run_sync gave this thread an event loop that nothing closes: 3 more a thread.
            loop = ensure_event_loop()
            if not loop.is_running():
                loop.close()
            kernel_log.close()
        duration = time.perf_counter() - start
        metrics, reported = _reported(metrics_file)
        return Execution(status, notebook, duration, metrics, reported, read_record(reads_file), error)


def _kill_group(group: int | None) -> None:
    if group:
        try:
            os.killpg(group, signal.SIGKILL)
        except ProcessLookupError:
            pass  # nothing of it is left


def _error(notebook: nbformat.NotebookNode, cell: int | None, status: str, summary: str, err: Exception) -> dict[str, Any]:
    """Where and why a run stopped: the cell and its traceback."""
    raised = next((o for o in notebook.cells[cell].get("outputs", []) if o.get("output_type") == "error"), None) if cell is not None else None
    if raised:
        return {"status": status, "summary": summary, "cell": cell, "ename": raised.get("ename"),
                "evalue": raised.get("evalue"), "traceback": raised.get("traceback", [])}
    first_line = str(err).splitlines()[0] if str(err) else ""
    return {"status": status, "summary": summary, "cell": cell, "ename": type(err).__name__, "evalue": first_line, "traceback": []}


def _reported(path: Path) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """The metrics and the environment facts the lab recorded, in the order it recorded them."""
    metrics: dict[str, dict[str, Any]] = {}
    environment: dict[str, dict[str, Any]] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                item = json.loads(line)
            except ValueError:
                continue  # a line cut short by a killed kernel
            if "environment" in item:
                environment[item["environment"]] = item["facts"]
                continue
            metric = {"value": item["value"], "unit": item["unit"], "description": item.get("description", "")}
            if item.get("spread"):
                metric["spread"] = list(item["spread"])
            metrics[item["name"]] = metric
    return metrics, environment


def _tail(path: Path, lines: int) -> list[str]:
    """The last lines the kernel wrote to its own stdout and stderr (why it died, often)."""
    try:
        return path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
    except OSError:
        return []
