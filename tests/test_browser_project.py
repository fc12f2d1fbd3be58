"""The project's own site in a browser: built from the committed results as a fresh clone
would (nothing runs), every lab page fresh (its published run is of its current source),
and the pages a reader starts from, screenshot at desktop and phone width, with nothing
scrolling sideways, nothing loaded from elsewhere and no console errors."""

from __future__ import annotations

import functools
import shutil
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from browser_fixtures import ARTIFACTS, QuietHandler, Watched
from studylog.cli import main

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
# What a clone holds that the site is built from; site_src's generated folders are left behind.
SOURCES = ("labs", "logs", "results", "src", "site_src", "bench", "mkdocs.yml", "jupytext.toml", "pyproject.toml",
           "references.bib")  # bench/results holds data a lab reads (the Podracer lab's GPU figures)
GENERATED = shutil.ignore_patterns("posts", "tags", "papers", "studylog", ".studylog", "calendar.md",
                                   ".studylog-generated.json", "__pycache__")
LABS = sorted(p.stem for p in (ROOT / "labs").glob("*.py"))
PAGES = [("home", ""), ("labs-index", "labs/"), ("log-with-a-lab-card", "2026/11/25/four-policy-optimizers-one-race/"),
         ("reading-list", "papers/"), ("paper", "papers/liang2018/"),
         *[(f"lab-{name}", f"labs/{name}/") for name in LABS]]


@pytest.fixture(scope="module")
def project_site(tmp_path_factory):
    root = tmp_path_factory.mktemp("project") / "proj"
    root.mkdir()
    for name in SOURCES:
        source = ROOT / name
        if source.is_dir():
            ignore = GENERATED if name == "site_src" else shutil.ignore_patterns("__pycache__")
            shutil.copytree(source, root / name, ignore=ignore)
        else:
            shutil.copy2(source, root / name)
    shutil.rmtree(root / "site_src" / "labs", ignore_errors=True)  # generated, as the clone's .gitignore says
    built = CliRunner().invoke(main, ["--root", str(root), "build", "--no-execute"])
    assert built.exit_code == 0, built.output
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(root / "site")))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def assert_a_fresh_published_run(page) -> None:
    banner = page.locator("article .admonition").first
    assert banner.inner_text().startswith("ok · profile full"), banner.inner_text()[:300]
    assert "Stale" not in banner.inner_text(), banner.inner_text()[:300]  # every input as the run read it
    assert page.locator("table.studylog-glance tbody tr").count() >= 2
    assert page.locator("article figure figcaption").count() >= 1  # the lab's figures are captioned
    assert page.locator("article details").count() >= 1  # its harness code is folded


@pytest.mark.parametrize("name, path", PAGES)
@pytest.mark.parametrize("device, width, height", [("desktop", 1280, 800), ("phone", 390, 844)])
def test_screenshots_of_the_project_site_and_every_lab_page_fresh(browser, project_site, name, path, device, width, height):
    # A lab page is checked where its desktop screenshot opens it: a page costs chromium
    # about two seconds.
    watched = Watched(browser, width, height)
    page = watched.open(project_site + path)
    if name.startswith("lab-") and device == "desktop":
        assert_a_fresh_published_run(page)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"project-{name}-{device}.png"))
    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    watched.close()
    assert overflow <= 0, f"{name} scrolls sideways by {overflow}px at {width}px"
