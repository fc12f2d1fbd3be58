"""Terminal output of `run`, `build` and `results` with rich: live progress lines and summary tables."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich import progress as bars
from rich.table import Table
from rich.text import Text

from studylog.labs.runner import Outcome, Progress

console = Console()


@contextlib.contextmanager
def live_progress() -> Iterator[Progress]:
    """A line per running lab with its elapsed time and current cell, kept live."""
    running: dict[str, tuple[float, str]] = {}
    lock = threading.Lock()

    def render() -> Group:
        now = time.monotonic()
        with lock:
            lines = [Text(f"running {lab}: {now - start:5.1f} s, {where}") for lab, (start, where) in running.items()]
        return Group(*lines)

    def progress(lab: str, event: str) -> None:
        with lock:
            if event == "done":
                running.pop(lab, None)
            elif event == "start":
                running[lab] = (time.monotonic(), "starting kernel")
            else:
                running[lab] = (running.get(lab, (time.monotonic(), ""))[0], event)

    with Live(render(), console=console, refresh_per_second=4, get_renderable=render, transient=True):
        yield progress


@contextlib.contextmanager
def elapsed_status(what: str) -> Iterator[None]:
    """A status line with `what` and the time elapsed, while the block runs, on a terminal only:
    piped output (a log file, CI) gets nothing animated, and the line goes when the block ends."""
    columns = (bars.SpinnerColumn(), bars.TextColumn("{task.description}"), bars.TimeElapsedColumn())
    with bars.Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as status:
        status.add_task(what, total=None)
        yield


def print_outcomes(outcomes: list[Outcome]) -> None:
    table = Table(title="studylog run")
    for column in ("lab", "status", "duration", "why it ran / what moved"):
        table.add_column(column)
    for o in outcomes:
        style = {"ok": "green", "cached": "dim", "failed": "red", "timeout": "red", "died": "red"}[o.status]
        notes = list(o.reasons)
        notes += [f"{m['name']}: {m['before']:.4g} -> {m['after']:.4g} {m['unit']}" for m in o.moved]
        if o.error:
            notes.append(f"cell {o.error.get('cell')}: {o.error.get('ename')}: {o.error.get('evalue')}")
        duration = "" if o.status == "cached" else f"{o.duration_s:.1f} s"
        table.add_row(o.lab, Text(o.status, style=style), duration, "\n".join(notes))
    console.print(table)


def print_results(record: dict[str, Any], as_json: bool) -> None:
    metrics = {name: {key: m[key] for key in ("value", "unit", "spread") if key in m}
               for name, m in record.get("metrics", {}).items()}
    if as_json:
        print(json.dumps({"lab": record["lab"], "profile": record["profile"], "metrics": metrics}, indent=1))
        return
    table = Table(title=f"{record['lab']} ({record['profile']}, {record['started']}, {record['status']})")
    for column in ("metric", "value", "range", "unit"):
        table.add_column(column)
    for name, m in metrics.items():
        low_high = f"{m['spread'][0]:.4g}–{m['spread'][1]:.4g}" if "spread" in m else ""
        table.add_row(name, f"{m['value']:.6g}", low_high, m["unit"])
    console.print(table)
