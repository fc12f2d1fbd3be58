"""Lab pages in the built site: banner, metrics, plots, downloads, backlinks, failures."""

from __future__ import annotations

import base64
import html as html_module
import json
import re

import nbformat
import pytest
from click.testing import CliRunner

from studylog.cli import main
from studylog.errors import StudylogError
from studylog.site.build import build
from studylog.site.labpages import _at_a_glance, notebook_markdown
from conftest import lab_source
from test_labs_run import PLOTS


def cli(maker, *args):
    return CliRunner().invoke(main, ["--root", str(maker.root), *args])


# Where the lab says it ran, as a lab connected to a cluster reports it.
ON_NODES = ("\nfrom studylog import record_environment\n"
            "record_environment('cluster', {'summary': 'a <test> cluster_of_3 nodes', 'nodes': 3, 'per_node': [2, 2, 4]})")


def built_lab_site(maker):
    maker.lab("plots", body=PLOTS + ON_NODES, title="Plots <b>lab</b>", summary="Draws a line.")
    maker.log("2026-03-01-cites.md", "title: Cites the lab\ndate: 2026-03-01\nlabs: [plots]")
    maker.log("2026-03-02-other.md", "title: Does not cite\ndate: 2026-03-02")
    first = cli(maker, "build")  # runs the stale lab (full profile) first
    assert first.exit_code == 0, first.output
    assert "executing 1 stale lab(s) first: plots" in first.output
    return maker


@pytest.fixture
def site(maker):
    """A built site the test may change."""
    return built_lab_site(maker)


@pytest.fixture(scope="module")
def shown(tmp_path_factory):
    """One built site for the tests that only read it."""
    from conftest import ProjectMaker

    return built_lab_site(ProjectMaker(tmp_path_factory.mktemp("lab-pages") / "proj"))


def page(maker, path):
    return (maker.root / "site" / path).read_text(encoding="utf-8")


def test_lab_page_shows_banner_metrics_code_plot_and_backlinks(shown):
    html = page(shown, "labs/plots/index.html")
    assert "ok · profile full" in html
    assert '<td title="total">total</td>' in html and "<strong>10 things</strong>" in html  # n = 5 in the full profile
    article = html[html.index("<article"):html.index("</article>")]
    text = re.sub(r"<[^>]+>", "", article)  # the code is highlighted: its tokens in spans
    assert text.index("ok · profile full") < text.index("At a glance") < text.index("plt.plot(range(n))")
    images = re.findall(r'<img[^>]+src="([^"]+)"', html)
    assert any(src.endswith(".png") for src in images)
    for src in images:
        assert (shown.root / "site" / "labs" / "plots" / src).is_file(), src
    assert "Cites the lab" in html and "Does not cite" not in html
    assert "Plots &lt;b&gt;lab&lt;/b&gt;" in html and "<b>lab</b>" not in html


def test_a_run_on_several_nodes_says_so_on_its_page_and_card(shown):
    html = page(shown, "labs/plots/index.html")
    start = html.index("ok · profile full")
    banner = html[start:html.index("At a glance", start)]
    assert "· cluster of 3 nodes" in banner and "&lt;test&gt;" in banner and "<em>" not in banner  # shown as written
    assert "cluster: a <test> cluster_of_3 nodes" in html_module.unescape(banner)
    assert "status: ok · cluster of 3 nodes" in page(shown, "labs/index.html")
    record = json.loads((shown.root / "results/plots/run.json").read_text(encoding="utf-8"))
    assert record["environment"]["reported"] == {"cluster": {"summary": "a <test> cluster_of_3 nodes", "nodes": 3,
                                                             "per_node": [2, 2, 4]}}
    assert record["environment"]["machine"]["cores"]  # beside what studylog saw of the machine itself
    history = (shown.root / "results/plots/history.jsonl").read_text(encoding="utf-8").splitlines()
    assert json.loads(history[-1])["reported"] == {"cluster": "a <test> cluster_of_3 nodes"}


def test_downloads_are_published(shown):
    assert (shown.root / "site/labs/plots/plots.ipynb").stat().st_size > 0
    assert (shown.root / "site/labs/plots/plots.py").read_text(encoding="utf-8").startswith("# ---")
    html = page(shown, "labs/plots/index.html")
    assert 'href="plots.ipynb"' in html and 'href="plots.py"' in html


def test_labs_index_shows_a_card_per_lab(shown):
    html = page(shown, "labs/index.html")
    assert '<div class="grid cards">' in html and 'href="plots/"><strong>Plots &lt;b&gt;lab&lt;/b&gt;</strong>' in html
    assert "Draws a line." in html and "total: 10 things" in html and "status: ok" in html


def test_history_plot_after_a_second_run_and_flag_on_a_move(site):
    path = site.root / "labs" / "plots.py"
    path.write_text(path.read_text(encoding="utf-8").replace("n: 5", "n: 9"), encoding="utf-8")
    second = cli(site, "build")
    assert second.exit_code == 0, second.output
    assert "total: 10 -> 36 things" in second.output
    html = page(site, "labs/plots/index.html")
    assert 'src="history.png"' in html and (site.root / "site/labs/plots/history.png").stat().st_size > 0
    assert "▲ from 10 things" in html


def test_no_execute_marks_stale_and_failed_run_keeps_good_outputs(site):
    path = site.root / "labs" / "plots.py"
    path.write_text(path.read_text(encoding="utf-8") + "\n# %%\nraise RuntimeError(\"it's a <late> failure & `more`\")\n",
                    encoding="utf-8")
    stale = cli(site, "build", "--no-execute")
    assert stale.exit_code == 0, stale.output
    assert "Stale: labs/plots.py changed" in page(site, "labs/plots/index.html")
    failing = cli(site, "build")
    assert failing.exit_code == 0, failing.output
    html = page(site, "labs/plots/index.html")
    assert "failed: the run of" in html and "showing the last good run" in html
    # The error, as the lab raised it, escaped once (by the code span) and on one line.
    assert "RuntimeError: it's a &lt;late&gt; failure &amp; `more`" in html and ">10 things<" in html
    strict = cli(site, "build", "--strict", "--no-execute")
    assert strict.exit_code == 1 and "latest full run failed for: plots" in strict.output


def test_lab_without_any_run_gets_a_page(maker):
    maker.lab("never")
    build(maker.project)
    assert "not run yet" in page(maker, "labs/never/index.html")


def test_bad_lab_metadata_is_reported(maker):
    maker.lab("bad", profiles="quick:\n  m: 1")
    result = cli(maker, "check")
    assert result.exit_code == 1
    assert "labs/bad.py:" in result.output
    assert "profile 'full' is missing" in result.output
    assert "profile 'quick' sets 'm', which is not a parameter" in result.output
    with pytest.raises(StudylogError):
        build(maker.project)


@pytest.mark.parametrize("header, message", [
    ('# %% timeout_s="2h"', "timeout_s='2h': a cell's timeout is a positive whole number of seconds"),
    ("# %% timeout_s=2h", "cell option 'timeout_s=2h' cannot be read"),
    ("# %% timeout_s=0", "timeout_s=0: a cell's timeout is a positive whole number"),
])
def test_a_cell_timeout_is_checked(maker, header, message):
    path = maker.lab("slow")
    path.write_text(path.read_text(encoding="utf-8") + f"\n{header}\nprint('late')\n", encoding="utf-8")
    line = path.read_text(encoding="utf-8").splitlines().index(header) + 1
    result = cli(maker, "check")
    assert result.exit_code == 1
    assert f"labs/slow.py:{line}: {message}" in result.output


def test_a_lab_named_index_is_refused(maker):
    maker.lab("index")
    result = cli(maker, "check")
    assert result.exit_code == 1 and "labs/index.py:1: a lab cannot be named 'index'" in result.output


def notebook(*cells) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = list(cells)
    return nb


def code(source: str, outputs=(), **metadata) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source, metadata=metadata)
    cell.outputs = [nbformat.from_dict(o) for o in outputs]
    return cell


def stream(text: str, name: str = "stdout") -> dict:
    return {"output_type": "stream", "name": name, "text": text}


PNG = {"output_type": "display_data", "metadata": {},
       "data": {"image/png": base64.b64encode(b"\x89PNG fake").decode(), "text/plain": "<Figure>"}}


def test_printed_output_is_one_block_as_printed():
    # Three prints with a library's log line (stderr, left out) between them: one block.
    cell = code("for row in rows: print(row)", [stream("a 1\n"), stream("b 2\n"), stream("INFO noise\n", "stderr"),
                                                 stream("c 3\n")])
    body, _ = notebook_markdown(notebook(cell), False, "lab")
    assert "```text\na 1\nb 2\nc 3\n```" in body and "noise" not in body


def test_code_folds_as_the_lab_and_its_cells_ask():
    cells = [code("shown = 1"), code("folded = 2", [stream("its output\n")], tags=["hide-input"]),
             code("opened = 3", **{"code-fold": "show"})]
    body, _ = notebook_markdown(notebook(*cells), False, "lab")
    assert "```python\nshown = 1\n```" in body
    # The output stays outside the fold, unindented.
    assert '??? note "Code"\n\n    ```python\n    folded = 2\n    ```\n\n```text\nits output\n```' in body
    assert '???+ note "Code"\n\n    ```python\n    opened = 3\n    ```' in body
    # A lab that folds by default; a cell says code-fold=false to stay open.
    body, _ = notebook_markdown(notebook(code("a = 1"), code("b = 2", **{"code-fold": False})), True, "lab")
    assert '??? note "Code"\n\n    ```python\n    a = 1' in body and "\n```python\nb = 2\n```" in body


def test_remove_tags_leave_parts_out():
    cells = [code("gone_cell = 1", [stream("gone cell output\n")], tags=["remove-cell"]),
             code("gone_input = 2", [stream("kept output\n")], tags=["remove-input"]),
             code("kept_input = 3", [stream("gone output\n")], tags=["remove-output"])]
    body, _ = notebook_markdown(notebook(*cells), False, "lab")
    assert "gone" not in body and "kept output" in body and "kept_input = 3" in body


def test_figures_are_numbered_and_captioned_from_fig_cap():
    cells = [code("plot()", [PNG], **{"fig-cap": "Throughput *grows* [nearly] linearly"}),
             code("plot(); plot()", [PNG, PNG], **{"fig-cap": ["Left panel"]}),
             code("hidden()", [PNG], tags=["remove-output"])]
    body, resources = notebook_markdown(notebook(*cells), False, "lab")
    assert r"![Figure 1: Throughput \*grows\* \[nearly\] linearly](lab/output_0_0.png)" in body
    assert "/// caption\nFigure 1: Throughput *grows* [nearly] linearly\n///" in body
    assert "/// caption\nFigure 2: Left panel\n///" in body
    assert "![Figure 3](lab/output_1_1.png)" in body and "Figure 4" not in body
    assert set(resources["outputs"]) == {"lab/output_0_0.png", "lab/output_1_0.png", "lab/output_1_1.png"}


def test_at_a_glance_in_the_labs_words_with_spread_and_moves():
    record = {"metrics": {"ratio": {"value": 0.7746, "unit": "x", "description": "ours / theirs | lower is <better>"},
                          "time_s": {"value": 3.2812, "unit": "ms", "description": "", "spread": [2.11, 3.87]}},
              "moved": [{"name": "ratio", "before": 0.418}]}
    html = _at_a_glance(record)
    assert '<td title="ratio">ours / theirs | lower is &lt;better&gt;</td>' in html and "<strong>0.775×</strong>" in html
    assert '<td title="time_s">time_s</td>' in html and "(range 2.11–3.87 ms)" in html
    assert "▲ from 0.418×" in html and html.count("<tr>") == 3
    # Every repeat gave the value as shown (a deterministic count): no range that repeats it.
    same = {"metrics": {"mean": {"value": 0.96875, "unit": "versions", "spread": [0.96875, 0.96875]}}}
    assert "range" not in _at_a_glance(same)


def test_bad_code_fold_in_the_header_is_reported_with_its_line(maker):
    maker.lab("folds", lab_source().replace("#     profiles:", "#     code-fold: maybe\n#     profiles:"))
    result = cli(maker, "check")
    assert result.exit_code == 1 and "labs/folds.py:10: code-fold: 'maybe': false, true or show" in result.output


@pytest.mark.parametrize("option, message", [
    ('code-fold="sometimes"', "code-fold='sometimes': false, true or \"show\""),
    ("fig-cap=3", "fig-cap: a quoted caption, or a list of them (one per figure)"),
])
def test_bad_cell_options_are_reported_with_their_line(maker, option, message):
    maker.lab("opts", lab_source(body="print(1)").replace("# %%\nprint(1)", f"# %% {option}\nprint(1)"))
    result = cli(maker, "check")
    assert result.exit_code == 1 and message in result.output and "labs/opts.py:" in result.output
