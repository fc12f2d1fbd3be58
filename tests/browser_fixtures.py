"""The browser tests' shared fixtures (a pytest plugin, see conftest.py): one fixture project
(logs with math, a draft, a hostile title, a recent one citing a paper; a lab with a plot, a metric and a history of two
runs; an author's nav that leaves out the labs) run, built and served on 127.0.0.1 once per session, and one chromium."""

from __future__ import annotations

import datetime as dt
import functools
import os
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlparse

import pytest

from conftest import ProjectMaker, lab_source
from studylog.labs.runner import run_labs
from studylog.logs.check import check_project
from studylog.site.build import build

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("STUDYLOG_TEST_ARTIFACTS", Path(__file__).resolve().parent.parent / ".studylog" / "test-artifacts"))
HOSTILE = "<img src=x onerror=alert(1)>"

# Three cells: prints (one block on the page), a captioned figure, and folded harness code.
LAB = """from studylog import record
record("answer", 40 + n, "units", "the answer")
print("zebrafinch appears only in this lab")
for row in range(3):
    print(f"row {row}")

# %% fig-cap="A curve, captioned"
import matplotlib.pyplot as plt
plt.plot([1, 2, 3], [n, 1, n])
plt.title("a curve")
plt.show()

# %% tags=["hide-input"]
harness = "okapi harness"
print(harness, "ran")"""


BIB = """@inproceedings{liang2018,
  title = {{RLlib}: Abstractions for Distributed Reinforcement Learning},
  author = {Liang, Eric and Liaw, Richard and Nishihara, Robert},
  booktitle = {Proceedings of the 35th International Conference on Machine Learning},
  year = {2018},
  eprint = {1712.09381},
  archivePrefix = {arXiv},
  abstract = {An abstract about abstractions.}
}
"""
RECENT = dt.date.today() - dt.timedelta(days=2)


def follow(page, link) -> str:
    """Click `link` and return the path of the page it leads to."""
    with page.expect_navigation():
        link.click()
    return page.evaluate("location.pathname")


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="session")
def site(tmp_path_factory):
    maker = ProjectMaker(tmp_path_factory.mktemp("browser") / "proj")
    # An author's nav without the labs index, as the project's own mkdocs.yml has: studylog adds it.
    (maker.root / "mkdocs.yml").write_text("site_name: Fixture\nnav:\n  - Log: index.md\n  - Tags: tags/index.md\n",
                                           encoding="utf-8")
    maker.lab("plotter", lab_source(title="Plotter lab", summary="Draws a curve <b>bold</b>", body=LAB,
                                    parameters="n = 2  # height", profiles="quick:\n  n: 1\nfull:\n  n: 2"))
    maker.log("2026-03-01-first.md", "title: First entry\ndate: 2026-03-01\ntags: [alpha]\nlabs: [plotter]",
              "Quokka appears only in this log.\n")
    maker.log("2026-03-02-math.md", "title: Math entry\ndate: 2026-03-02\ntags: [beta]\nmath: true",
              "Inline $a^2+b^2$ and\n\n$$\nT = 2(n-1)\\alpha\n$$\n")
    maker.log("2026-03-03-hostile.md", f"title: '{HOSTILE}'\ndate: 2026-03-03\ntags: ['<script>alert(2)</script>']\n"
              "description: '<img src=y onerror=alert(3)>'", "Body of the hostile entry.\n")
    maker.log("2026-03-04-draft.md", "title: Hidden draft\ndate: 2026-03-04\ndraft: true", "Draft.\n")
    # Papers and the calendar: a bibliography, an entry citing it two days ago, the home page's calendar.
    (maker.root / "references.bib").write_text(BIB, encoding="utf-8")
    (maker.root / "site_src" / "index.md").write_text('# Fixture log\n\nWelcome.\n\n--8<-- "calendar.html"\n', encoding="utf-8")
    maker.log(f"{RECENT}-cites.md", f"title: Cites a paper\ndate: {RECENT}", "As @liang2018 argue [see also -@liang2018, p. 2].\n")
    project = maker.project
    (lab,) = check_project(project).labs
    for _ in range(2):  # two full runs: the lab page then draws its metric's history
        (outcome,) = run_labs(project, [lab], profile="full", force=True)
        assert outcome.status == "ok", outcome.error
    build(project)
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(maker.root / "site")))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


@pytest.fixture(scope="session")
def browser():
    playwright = pytest.importorskip("playwright.sync_api")
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} missing: `make test` installs Debian's chromium"
    with playwright.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


class Watched:
    """A page whose outside requests are blocked and recorded, with console errors and dialogs."""

    def __init__(self, browser, width=1280, height=800):
        self.context = browser.new_context(viewport={"width": width, "height": height})
        self.outside, self.errors, self.dialogs = [], [], []
        self.pending = set()  # requests started and not yet answered
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("request", lambda r: self.pending.add(r))
        self.page.on("requestfinished", lambda r: self.pending.discard(r))
        self.page.on("requestfailed", lambda r: self.pending.discard(r))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))

    def _route(self, route):
        if urlparse(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            self.outside.append(route.request.url)
            route.abort()

    def open(self, url):
        # Loaded, and every request made so far answered: what networkidle waits for, without
        # its fixed half second of quiet (about 60 pages open in the browser tests).
        response = self.page.goto(url, wait_until="load")
        assert response.status == 200, url
        for _ in range(500):
            if not self.pending:
                break
            self.page.wait_for_timeout(20)
        assert not self.pending, f"requests still unanswered 10 s after load: {[r.url for r in self.pending]}"
        return self.page

    def close(self):
        self.context.close()
        assert self.outside == [], f"requests outside 127.0.0.1: {self.outside}"
        assert self.errors == [], f"console errors: {self.errors}"
        assert self.dialogs == [], f"dialogs opened: {self.dialogs}"


@pytest.fixture
def watched(browser):
    w = Watched(browser)
    yield w
    w.close()
