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
import math
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nbformat
from nbconvert import MarkdownExporter
from nbconvert.filters import path2url
from traitlets.config import Config

from studylog.labs.lab import Lab, read_notebook
from studylog.logs.entry import LogEntry
from studylog.site import metric_text

if TYPE_CHECKING:  # paperpages imports this module
    from studylog.site.paperpages import Citer

LABS_DIR = "labs"
TEMPLATES = Path(__file__).parent / "templates"
IMAGE_TYPES = ("image/png", "image/jpeg", "image/svg+xml")
# Jupyter Book's cell tags, which nbconvert's TagRemovePreprocessor applies.
REMOVE_TAGS = {"remove_cell_tags": {"remove-cell"}, "remove_input_tags": {"remove-input"},
               "remove_all_outputs_tags": {"remove-output"}}


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


def lab_files(state: LabState, source: Path, plot_cache: Path, citer: Citer | None = None) -> dict[str, str | bytes | Path]:
    """The lab's page and the files it links to, keyed by path under site_src; with a
    `citer`, the citations in its prose are links and its bibliography follows the narrative."""
    name = state.lab.name
    files: dict[str, str | bytes | Path] = {f"{LABS_DIR}/{name}/{name}.py": source}
    shown = state.good_notebook or state.failure_notebook
    # A lab never run still shows its narrative and code, from the source.
    notebook = nbformat.read(shown, as_version=4) if shown else read_notebook(source)
    for cell in notebook.cells if citer else ():
        if cell.cell_type == "markdown":
            cell.source = citer(cell.source)
    body, resources = notebook_markdown(notebook, state.lab.code_fold, name)
    body = _drop_first_heading(body)
    files.update({f"{LABS_DIR}/{path}": data for path, data in resources.get("outputs", {}).items()})
    if shown:
        files[f"{LABS_DIR}/{name}/{name}.ipynb"] = shown
    history = _history_figure(state, plot_cache)
    if history:
        files[f"{LABS_DIR}/{name}/{HISTORY_FIGURE}"] = history
    references = citer.references() if citer else ""
    files[f"{LABS_DIR}/{name}.md"] = _page(state, body + references, history is not None, shown is not None)
    return files


def _page(state: LabState, body: str, has_history: bool, has_notebook: bool) -> str:
    """The answer first (banner, the figures at a glance), then the lab's own narrative."""
    lab, name = state.lab, state.lab.name
    parts = [f"---\ntitle: {json.dumps(escape(lab.title))}\n---\n", f"# {escape(lab.title)}\n", f"*{escape(lab.summary)}*\n"]
    parts.append(_banner(state))
    if state.good and state.good.get("metrics"):
        parts.append(_at_a_glance(state.good))
    downloads = [f"[lab source ({name}.py)]({name}/{name}.py)"]
    if has_notebook:
        downloads.insert(0, f"[executed notebook ({name}.ipynb)]({name}/{name}.ipynb)")
    parts.append("Download: " + " · ".join(downloads) + "\n")
    parts.append(body)
    if has_history:
        parts.append('??? abstract "These figures over the lab\'s runs"\n\n'
                     f"    ![Each figure of this lab, one panel each, over its recorded runs]({name}/{HISTORY_FIGURE})\n")
    parts.append(_citing(state.citing))
    return "\n".join(parts)


def notebook_markdown(notebook: nbformat.NotebookNode, code_fold: bool | str, name: str) -> tuple[str, dict[str, Any]]:
    """The notebook as the Markdown of a page, with its figures as files under `name/`:
    printed output as printed (each cell's consecutive prints one block, stderr left out),
    Jupyter Book's remove-* tags applied, code folded and figures captioned as the lab asks."""
    _drop_stderr(notebook)
    _mark_cells(notebook, code_fold)
    config = Config({"TagRemovePreprocessor": {"enabled": True, **REMOVE_TAGS},
                     "CoalesceStreamsPreprocessor": {"enabled": True}})
    exporter = MarkdownExporter(config=config, template_file="lab.md.j2", extra_template_paths=[str(TEMPLATES)])
    exporter.register_filter("code_input", code_input)
    exporter.register_filter("figure", figure)
    exporter.register_filter("output_block", output_block)
    return exporter.from_notebook_node(notebook, resources={"output_files_dir": name})


def _mark_cells(notebook: nbformat.NotebookNode, code_fold: bool | str) -> None:
    """Decide, for the template, whether each code cell's input folds and what each shown
    figure's number and caption are (`fig-cap`: one caption, or a list, one per figure)."""
    number = 0
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        tags = set(cell.metadata.get("tags", []))
        fold = cell.metadata.get("code-fold", True if "hide-input" in tags else code_fold)
        cell.metadata["studylog"] = {"fold": fold}
        if tags & (REMOVE_TAGS["remove_cell_tags"] | REMOVE_TAGS["remove_all_outputs_tags"]):
            continue
        captions = cell.metadata.get("fig-cap", [])
        captions = [captions] if isinstance(captions, str) else list(captions)
        figures = [o for o in cell.get("outputs", []) if any(m in o.get("data", {}) for m in IMAGE_TYPES)]
        for i, output in enumerate(figures):
            number += 1
            output.setdefault("metadata", {})["studylog"] = {"number": number, "caption": captions[i] if i < len(captions) else ""}


def _fenced(text: str, language: str) -> str:
    fence = "`" * max(3, max((len(r) + 1 for r in re.findall(r"`{3,}", text)), default=3))
    return f"{fence}{language}\n{text.rstrip(chr(10))}\n{fence}"


def output_block(text: str) -> str:
    """Printed output exactly as printed, as a fenced plain-text block."""
    return _fenced(text, "text")


def code_input(cell: nbformat.NotebookNode) -> str:
    """A code cell's source as a fenced block; folded (pymdownx.details) if marked so."""
    block = _fenced(cell.source, "python")
    fold = cell.metadata.get("studylog", {}).get("fold")
    if not fold:
        return block
    head = '???+ note "Code"' if fold == "show" else '??? note "Code"'
    return f"{head}\n\n" + textwrap.indent(block, "    ", lambda line: True)


def figure(output: nbformat.NotebookNode, mime: str) -> str:
    """An extracted figure as a Markdown image with its number and caption; the engine's
    lightbox (glightbox) opens it full size on a click."""
    meta = output.get("metadata", {})
    info = meta.get("studylog", {})
    label = f"Figure {info.get('number', '')}".strip()
    caption = " ".join(info.get("caption", "").split())
    alt = f"{label}: {caption}" if caption else label
    image = f"![{_alt_text(alt)}]({path2url(meta['filenames'][mime])})"
    if not caption:
        return image
    return f"{image}\n\n/// caption\n{label}: {caption}\n///"


def _alt_text(text: str) -> str:
    """Text safe inside a Markdown image's brackets: no markup, brackets escaped."""
    return re.sub(r"([\\\[\]*_`])", r"\\\1", text)


def _banner(state: LabState) -> str:
    lines = []
    if state.good:
        r = state.good
        kind, head = "success", f"ok · profile {r['profile']} · run {_when(r['started'])} · {r['duration_s']:.1f} s"
        nodes = run_nodes(r)
        if nodes > 1:  # never to be read as one machine's result
            head += f" · cluster of {nodes} nodes"
        lines.append(_environment(r.get("environment", {})))
        lines += [shown_as_written(" ".join(f"{name}: {facts['summary']}".split()))
                  for name, facts in r.get("environment", {}).get("reported", {}).items()]
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


def run_nodes(record: dict[str, Any]) -> int:
    """How many machines (or nodes) a run ran on, as its lab reported them: 1 unless it said more."""
    reported = record.get("environment", {}).get("reported", {})
    return max((facts.get("nodes", 1) for facts in reported.values()), default=1)


def _environment(env: dict[str, Any]) -> str:
    machine = env.get("machine", {})
    packages = ", ".join(f"{k} {v}" for k, v in sorted(env.get("packages", {}).items()))
    gpu = f", {machine['gpu']}" if machine.get("gpu") else ""
    return escape(
        f"{machine.get('cpu')}, {machine.get('cores')} cores, {machine.get('memory_gib')} GiB{gpu}; "
        f"Python {env.get('python')}; {packages}; commit {env.get('commit')}"
    )


def _at_a_glance(record: dict[str, Any]) -> str:
    """The run's figures in the lab's words: description, value with unit and spread, and
    a marker where one moved beyond its usual noise since the previous run. Raw HTML (its
    text escaped here, once), so it can carry its own compact style and no Markdown or math
    reads the lab's descriptions."""
    moved = {m["name"]: m["before"] for m in record.get("moved", [])}
    rows = []
    for name, m in record["metrics"].items():
        value = f"<strong>{escape(metric_text.with_unit(m['value'], m.get('unit', '')))}</strong>"
        if metric_text.spread(m):
            value += f" <span class=\"studylog-spread\">({escape(metric_text.spread(m))})</span>"
        change = metric_text.moved(m, moved.get(name))
        change = f'<td class="studylog-moved">{escape(change)}</td>' if moved else ""
        rows.append(f'<tr><td title="{escape(name)}">{escape(metric_text.label(name, m))}</td>'
                    f'<td class="studylog-value">{value}</td>{change}</tr>')
    head = "<th>since the previous run</th>" if moved else ""
    # The wrapper scrolls sideways on a narrow screen rather than the page.
    return ("## At a glance\n\n<div class=\"studylog-glance-wrap\"><table class=\"studylog-glance\">\n"
            f"<thead><tr><th>figure</th><th>value</th>{head}</tr></thead>\n<tbody>\n" + "\n".join(rows)
            + "\n</tbody>\n</table></div>\n")


HISTORY_FIGURE = "history.png"
PLOT_STYLE = 4  # part of the cached figure's key: bump it when _plot draws differently


def _history_figure(state: LabState, cache: Path) -> bytes | None:
    """One small-multiples PNG, a panel per figure with more than one recorded value, or None;
    cached by content."""
    series: dict[str, list[float]] = {}
    for run in state.history:
        for metric, m in (run.get("metrics") or {}).items():
            series.setdefault(metric, []).append(m["value"])
    series = {metric: values for metric, values in series.items() if len(values) >= 2}
    if not series:
        return None
    metrics = (state.good or {}).get("metrics", {})
    panels = [(metric_text.label(name, metrics.get(name, {})), metrics.get(name, {}).get("unit", ""), values)
              for name, values in series.items()]
    key = hashlib.sha256(json.dumps([PLOT_STYLE, panels]).encode()).hexdigest()[:16]
    cached = cache / f"{key}.png"
    if not cached.exists():
        cache.mkdir(parents=True, exist_ok=True)
        cached.write_bytes(_plot(panels))
    return cached.read_bytes()


def _plot(panels: list[tuple[str, str, list[float]]]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    columns = min(4, len(panels))
    rows = math.ceil(len(panels) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.3 * rows), dpi=100, squeeze=False)
    for ax, (label, unit, values) in zip(axes.flat, panels):
        ax.plot(range(1, len(values) + 1), values, marker="o", markersize=3)
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))  # runs are counted, not measured
        ax.yaxis.get_major_formatter().set_useOffset(False)  # values as recorded, not as offsets from one
        ax.set_title("\n".join(textwrap.wrap(label, 38)[:3]), fontsize=7)
        ax.set_ylabel(unit, fontsize=7)
        ax.tick_params(labelsize=7)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    fig.supxlabel("run", fontsize=8)
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png", metadata={"Software": None})
    plt.close(fig)
    return out.getvalue()


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


# What Markdown (links, emphasis, code) or math would read inside a line of text shown as written;
# none of them is in what html.escape writes, so the two compose without escaping twice.
MARKDOWN_SIGNIFICANT = str.maketrans({c: f"&#{ord(c)};" for c in "\\`*_[]$"})


def shown_as_written(text: str) -> str:
    """A line of a lab's own text placed in Markdown, to be shown exactly as written."""
    return escape(text).translate(MARKDOWN_SIGNIFICANT)
