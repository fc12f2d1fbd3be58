"""Lab pages: a stored run rendered as Markdown for the engine, with its files beside it.

Reads only what execution stored (the executed notebook, the run record, the history); it
never executes. A lab whose latest run failed keeps its last good outputs, under a banner
saying where and why the newer run failed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
from nbconvert import MarkdownExporter

from studylog.labs.lab import Lab, read_notebook
from studylog.logs.entry import LogEntry

LABS_DIR = "labs"


@dataclass(frozen=True)
class LabState:
    """Everything the site shows about one lab, gathered from the store."""

    lab: Lab
    good: dict[str, Any] | None  # record of the last good published run
    good_notebook: Path | None
    failure: dict[str, Any] | None  # a newer failed run, if any
    failure_notebook: Path | None
    stale: tuple[str, ...]  # why the stored run is out of date ("" when fresh)
    history: tuple[dict[str, Any], ...]
    citing: tuple[LogEntry, ...]


def lab_files(state: LabState, source: Path, plot_cache: Path) -> dict[str, str | bytes | Path]:
    """The lab's page and the files it links to, keyed by path under site_src."""
    name = state.lab.name
    files: dict[str, str | bytes | Path] = {f"{LABS_DIR}/{name}/{name}.py": source}
    shown = state.good_notebook or state.failure_notebook
    # A lab never run still shows its narrative and code, from the source.
    notebook = nbformat.read(shown, as_version=4) if shown else read_notebook(source)
    _drop_stderr(notebook)
    body, resources = MarkdownExporter().from_notebook_node(notebook, resources={"output_files_dir": name})
    body = _drop_first_heading(body)
    files.update({f"{LABS_DIR}/{path}": data for path, data in resources.get("outputs", {}).items()})
    if shown:
        files[f"{LABS_DIR}/{name}/{name}.ipynb"] = shown
    plots = _history_plots(state, plot_cache)
    files.update({f"{LABS_DIR}/{name}/{file}": data for file, data in plots.items()})
    files[f"{LABS_DIR}/{name}.md"] = _page(state, body, sorted(plots), shown is not None)
    return files


def _page(state: LabState, body: str, plots: list[str], has_notebook: bool) -> str:
    lab, name = state.lab, state.lab.name
    parts = [f"---\ntitle: {json.dumps(escape(lab.title))}\n---\n", f"# {escape(lab.title)}\n", f"*{escape(lab.summary)}*\n"]
    parts.append(_banner(state))
    if state.good and state.good.get("metrics"):
        parts.append(_metrics_table(state.good))
    for plot in plots:
        parts.append(f"![History of {plot[8:-4]}]({name}/{plot})\n")
    downloads = [f"[lab source ({name}.py)]({name}/{name}.py)"]
    if has_notebook:
        downloads.insert(0, f"[executed notebook ({name}.ipynb)]({name}/{name}.ipynb)")
    parts.append("Download: " + " · ".join(downloads) + "\n")
    parts.append(body)
    parts.append(_citing(state.citing))
    return "\n".join(parts)


def _banner(state: LabState) -> str:
    lines = []
    if state.good:
        r = state.good
        kind, head = "success", f"ok · profile {r['profile']} · run {_when(r['started'])} · {r['duration_s']:.1f} s"
        lines.append(_environment(r.get("environment", {})))
    else:
        kind, head = "warning", "not run yet: no stored full-profile run"
    if state.failure:
        f = state.failure
        error = f.get("error") or {}
        kind = "failure"
        head = f"{f['status']}: the run of {_when(f['started'])} failed" + ("; showing the last good run" if state.good else "")
        message = f"{error.get('ename')}: {error.get('evalue')}"
        lines.append(f"Cell {error.get('cell')}: {code_span(message)}")
    if state.stale:
        lines.append("Stale: " + escape("; ".join(state.stale)) + ". Run `studylog run --profile full` to refresh.")
        if kind == "success":
            kind = "warning"
    text = "\n".join(f"    {line}\n" for line in lines)
    return f'!!! {kind} "{head}"\n\n{text}'


def _environment(env: dict[str, Any]) -> str:
    machine = env.get("machine", {})
    packages = ", ".join(f"{k} {v}" for k, v in sorted(env.get("packages", {}).items()))
    gpu = f", {machine['gpu']}" if machine.get("gpu") else ""
    return escape(
        f"{machine.get('cpu')}, {machine.get('cores')} cores, {machine.get('memory_gib')} GiB{gpu}; "
        f"Python {env.get('python')}; {packages}; commit {env.get('commit')}"
    )


def _metrics_table(record: dict[str, Any]) -> str:
    moved = {m["name"]: m for m in record.get("moved", [])}
    rows = ["| metric | value | unit | change from previous run |", "|---|---:|---|---|"]
    for metric, m in record["metrics"].items():
        change = ""
        if metric in moved:
            before = moved[metric]["before"]
            change = f"moved from {before:.4g} to {m['value']:.4g}"
        rows.append(f"| `{metric}` | {m['value']:.4g} | {escape(m['unit'])} | {change} |")
    return "\n".join(rows) + "\n"


PLOT_STYLE = 3  # part of each cached plot's key: bump it when _plot draws differently


def _history_plots(state: LabState, cache: Path) -> dict[str, bytes]:
    """One PNG per metric with more than one recorded value; cached by content."""
    series: dict[str, list[tuple[str, float]]] = {}
    for run in state.history:
        for metric, m in (run.get("metrics") or {}).items():
            series.setdefault(metric, []).append((run.get("started", ""), m["value"]))
    plots = {}
    for metric, points in series.items():
        if len(points) < 2:
            continue
        unit = state.good["metrics"].get(metric, {}).get("unit", "") if state.good else ""
        key = hashlib.sha256(json.dumps([PLOT_STYLE, metric, unit, points]).encode()).hexdigest()[:16]
        cached = cache / f"{key}.png"
        if not cached.exists():
            cache.mkdir(parents=True, exist_ok=True)
            cached.write_bytes(_plot(metric, unit, points))
        plots[f"history-{metric}.png"] = cached.read_bytes()
    return plots


def _plot(metric: str, unit: str, points: list[tuple[str, float]]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, ax = plt.subplots(figsize=(6, 2.4), dpi=100)
    ax.plot(range(1, len(points) + 1), [v for _, v in points], marker="o")
    ax.set_xlabel("run")
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))  # runs are counted, not measured
    ax.yaxis.get_major_formatter().set_useOffset(False)  # values as recorded, not as offsets from one
    ax.set_ylabel(unit)
    ax.set_title(f"{metric} over runs")
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png", metadata={"Software": None})
    plt.close(fig)
    return out.getvalue()


def labs_index(states: list[LabState]) -> str:
    rows = ["| lab | summary | status | last run | headline |", "|---|---|---|---|---|"]
    for s in states:
        status = "failed" if s.failure else ("not run" if not s.good else ("stale" if s.stale else "ok"))
        when = _when(s.good["started"]) if s.good else ""
        metrics = list((s.good or {}).get("metrics", {}).items())[:2]  # the first two the lab recorded
        headline = "; ".join(f"{name} = {m['value']:.4g} {escape(m['unit'])}" for name, m in metrics)
        rows.append(f"| [{escape(s.lab.title)}]({s.lab.name}.md) | {escape(s.lab.summary)} | {status} | {when} | {headline} |")
    return "---\ntitle: Labs\n---\n\n# Labs\n\n" + "\n".join(rows) + "\n"


def _citing(entries: tuple[LogEntry, ...]) -> str:
    if not entries:
        return "\n## Logs that cite this lab\n\nNone yet.\n"
    items = "\n".join(f"- [{escape(e.title)}](../posts/{e.path.name}) ({e.date:%Y-%m-%d})" for e in entries)
    return f"\n## Logs that cite this lab\n\n{items}\n"


def _drop_stderr(notebook: nbformat.NotebookNode) -> None:
    """Libraries' log lines (Ray's, with timestamps) are noise on a page that should change
    only when a result does; they stay in the downloadable notebook. Errors are kept."""
    for cell in notebook.cells:
        if "outputs" in cell:
            cell.outputs = [o for o in cell.outputs if not (o.get("output_type") == "stream" and o.get("name") == "stderr")]


def _drop_first_heading(body: str) -> str:
    """The page has its own title; the notebook's leading `# Title` would repeat it."""
    lines = body.lstrip("\n").splitlines()
    if lines and lines[0].startswith("# "):
        lines = lines[1:]
    return "\n".join(lines) + "\n"


def _when(iso: str) -> str:
    try:
        return dt.datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return iso


def code_span(text: str) -> str:
    """`text` as a Markdown code span, shown exactly as written: a code span escapes its own
    contents (so nothing is HTML-escaped here), its fence is one backtick longer than any
    run inside, and line breaks become spaces (a code span's own rule) so it stays on one line."""
    text = " ".join(text.splitlines())
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def escape(value: str) -> str:
    """HTML-escape a value for the engine's templates, which do not escape front matter."""
    return html.escape(value, quote=True)
