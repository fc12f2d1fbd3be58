"""Lab pages in the built site: banner, metrics, plots, downloads, backlinks, failures."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from studylog.cli import main
from studylog.errors import StudylogError
from studylog.site.build import build
from test_labs_run import PLOTS


def cli(maker, *args):
    return CliRunner().invoke(main, ["--root", str(maker.root), *args])


def built_lab_site(maker):
    maker.lab("plots", body=PLOTS, title="Plots <b>lab</b>", summary="Draws a line.")
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
    assert "<code>total</code>" in html and ">10<" in html  # n = 5 in the full profile
    assert "plt.plot(range(n))" in re.sub(r"<[^>]+>", "", html)  # code, highlighted
    images = re.findall(r'<img[^>]+src="([^"]+)"', html)
    assert any(src.endswith(".png") for src in images)
    for src in images:
        assert (shown.root / "site" / "labs" / "plots" / src).is_file(), src
    assert "Cites the lab" in html and "Does not cite" not in html
    assert "Plots &lt;b&gt;lab&lt;/b&gt;" in html and "<b>lab</b>" not in html


def test_downloads_are_published(shown):
    assert (shown.root / "site/labs/plots/plots.ipynb").stat().st_size > 0
    assert (shown.root / "site/labs/plots/plots.py").read_text(encoding="utf-8").startswith("# ---")
    html = page(shown, "labs/plots/index.html")
    assert 'href="plots.ipynb"' in html and 'href="plots.py"' in html


def test_labs_index_lists_status_and_headline(shown):
    html = page(shown, "labs/index.html")
    assert "Draws a line." in html and "total = 10 things" in html


def test_history_plot_after_a_second_run_and_flag_on_a_move(site):
    path = site.root / "labs" / "plots.py"
    path.write_text(path.read_text(encoding="utf-8").replace("n: 5", "n: 9"), encoding="utf-8")
    second = cli(site, "build")
    assert second.exit_code == 0, second.output
    assert "total: 10 -> 36 things" in second.output
    html = page(site, "labs/plots/index.html")
    assert "history-total.png" in html and (site.root / "site/labs/plots/history-total.png").stat().st_size > 0
    assert "moved from 10 to 36" in html


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
    assert "RuntimeError: it's a &lt;late&gt; failure &amp; `more`" in html and ">10<" in html
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


def test_labs_index_headline_is_the_first_two_metrics_the_lab_recorded(maker):
    body = 'from studylog import record\nrecord("zeta", 1.0, "x")\nrecord("alpha", 2.0, "x")\nrecord("beta", 3.0, "x")'
    maker.lab("order", body=body)
    assert cli(maker, "build").exit_code == 0
    html = page(maker, "labs/index.html")
    assert "zeta = 1 x; alpha = 2 x" in html and "beta" not in html


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
