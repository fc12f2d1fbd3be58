"""Building a fixture project end to end, with MkDocs (default) and Zensical."""

from __future__ import annotations

import datetime as dt
import email.utils
import html
import re
from html.parser import HTMLParser
from xml.etree import ElementTree
from pathlib import Path

import pytest
from click.testing import CliRunner

from studylog.cli import main
from studylog.errors import ProblemsFound, StudylogError
from studylog.site.build import build

EVIL = "<script>alert(1)</script>"
AUTHOR = '"><script>alert(4)</script>'
APOSTROPHE = "I'd rather read & write"


FIXTURE_BIB = """@inproceedings{liang2018,
  title = {{RLlib}: Abstractions for Distributed Reinforcement Learning},
  author = {Liang, Eric and Liaw, Richard},
  booktitle = {Proceedings of ICML},
  year = {2018},
  eprint = {1712.09381},
  archivePrefix = {arXiv}
}
"""


def fixture_project(maker) -> None:
    # The author's nav leaves out the tags and labs indexes: studylog adds them.
    (maker.root / "mkdocs.yml").write_text("site_name: Fixture\nnav:\n  - Log: index.md\n", encoding="utf-8")
    maker.lab("ring")
    maker.log(
        "2026-03-01-reading-rllib.md",
        "title: Reading RLlib\ndate: 2026-03-01\ntags: [rllib, notes]\nlabs: [ring]",
        "The policy evaluator samples.\n\nMore on actors.\n",
    )
    maker.log(
        "2026-03-02-ring-math.md",
        "title: Ring math\ndate: 2026-03-02 21:00:00 +0100\ntags: allreduce notes\nmath: true",
        "Each participant moves $2\\frac{n-1}{n}N$ bytes.\n\n$$\nT = 2(n-1)\\alpha\n$$\n",
    )
    maker.log("2026-03-03-escaped.md", f"title: '{EVIL}'\ndate: 2026-03-03\ntags: [notes]\ndescription: '\"><b>x</b>'\n"
              f"author: '{AUTHOR}'\nextra_links: ['<b>y</b>']")
    maker.log("2026-03-03-apostrophe.md", f'title: "{APOSTROPHE}"\ndate: 2026-03-03')
    maker.log("2026-03-04-secret-draft.md", "title: Secret draft\ndate: 2026-03-04\ndraft: true\ntags: [notes]")
    maker.log("2026-03-05-unpublished.md", "title: Unpublished thing\ndate: 2026-03-05\npublished: false")
    # Papers and the calendar: a bibliography, a citation, and a study day within the calendar's year.
    (maker.root / "references.bib").write_text(FIXTURE_BIB, encoding="utf-8")
    (maker.root / "site_src" / "index.md").write_text('# Fixture log\n\nWelcome.\n\n--8<-- "calendar.html"\n', encoding="utf-8")
    recent = dt.date.today() - dt.timedelta(days=2)
    maker.log(f"{recent}-cites.md", f"title: Cites a paper\ndate: {recent}", "As [@liang2018, p. 2] put it.\n")


class _Scripts(HTMLParser):
    """Collects the text of every <script> element and every remote src/href."""

    def __init__(self):
        super().__init__()
        self.scripts: list[str] = []
        self.remote: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self._in_script = tag == "script"
        if self._in_script:
            self.scripts.append("")
        for name, value in attrs:
            loads = (tag, name) in {("script", "src"), ("img", "src"), ("link", "href"), ("iframe", "src")}
            if loads and value and re.match(r"(https?:)?//", value) and "127.0.0.1" not in value:
                self.remote.append(value)

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.scripts[-1] += data


def all_html(site: Path) -> dict[str, str]:
    return {p.relative_to(site).as_posix(): p.read_text(encoding="utf-8") for p in site.rglob("*.html")}


@pytest.fixture(scope="module", params=["mkdocs", "zensical"])
def built(request, tmp_path_factory):
    from conftest import ProjectMaker

    maker = ProjectMaker(tmp_path_factory.mktemp(request.param) / "proj")
    fixture_project(maker)
    build(maker.project, engine=request.param)
    return request.param, maker.root / "site"


def test_post_pages_with_titles(built):
    _, site = built
    page = (site / "2026/03/01/reading-rllib/index.html").read_text(encoding="utf-8")
    assert "Reading RLlib" in page and "The policy evaluator samples." in page
    assert (site / "2026/03/02/ring-math/index.html").exists()


def test_log_page_links_to_its_lab_and_tags(built):
    _, site = built
    page = (site / "2026/03/01/reading-rllib/index.html").read_text(encoding="utf-8")
    assert re.search(r'href="(\.\./)+labs/ring/"', page)
    assert (site / "labs/ring/index.html").exists()
    assert re.search(r'href="(\.\./)+tags/rllib/#tag:rllib"', page)


def test_nav_palette_toggle_and_the_foot_of_a_log(built):
    _, site = built
    home = (site / "index.html").read_text(encoding="utf-8")
    assert re.search(r'href="(\./)?tags/"[^>]*>\s*<span class="md-ellipsis">\s*Tags', home)
    assert re.search(r'href="(\./)?labs/"[^>]*>\s*<span class="md-ellipsis">\s*Labs', home)
    schemes = re.findall(r'data-md-color-media="([^"]+)" data-md-color-scheme="(\w+)"', home)
    assert schemes == [("(prefers-color-scheme: light)", "default"), ("(prefers-color-scheme: dark)", "slate")]
    assert 'title="Switch to dark mode" for="__palette_1"' in home
    log = site / "2026/03/02/ring-math"
    page = (log / "index.html").read_text(encoding="utf-8")
    previous, following = (re.search(rf'{word}: <a href="([^"]+)">([^<]+)</a>', page).groups()
                           for word in ("Previous", "Next"))
    assert previous[1] == "Reading RLlib" and (log / previous[0] / "index.html").resolve().is_file()
    assert html.unescape(following[1]) == APOSTROPHE and (log / following[0] / "index.html").resolve().is_file()
    for shown in (site / "2026/03/01/reading-rllib", site / "labs"):  # a log citing the lab, the labs index
        card = re.search(r'<div class="grid cards">.*?<a href="([^"]+)"><strong>A lab</strong>.*?</div>',
                         (shown / "index.html").read_text(encoding="utf-8"), re.S)
        assert card and "status: not run" in card.group(), shown
        assert (shown / card.group(1)).resolve() == site / "labs/ring", card.group(1)


def test_citations_paper_pages_and_the_calendar(built):
    _, site = built
    recent = dt.date.today() - dt.timedelta(days=2)
    post = site / recent.strftime("%Y/%m/%d") / "cites"
    page = (post / "index.html").read_text(encoding="utf-8")
    link = re.search(r'\(<a href="([^"]+)" title="RLlib: Abstractions[^"]*">Liang and Liaw, 2018</a>, p\. 2\)', page)
    assert link and (post / link.group(1) / "index.html").resolve() == site / "papers/liang2018/index.html"
    assert "References</h2>" in page
    paper = (site / "papers/liang2018/index.html").read_text(encoding="utf-8")
    back = re.search(r'log: <a href="([^"]+)">Cites a paper</a>', paper)
    assert back and ((site / "papers/liang2018") / back.group(1) / "index.html").resolve() == (post / "index.html").resolve()
    assert 'href="https://arxiv.org/abs/1712.09381"' in paper
    home = (site / "index.html").read_text(encoding="utf-8")
    assert re.search(r'href="(\./)?papers/"[^>]*>\s*<span class="md-ellipsis">\s*Papers', home)
    assert f'href="calendar/#d-{recent}"' in home and 'class="studylog-calendar-year"' in home
    calendar = (site / "calendar/index.html").read_text(encoding="utf-8")
    day = re.search(rf'<a id="d-{recent}"></a>.*?<a href="([^"]+)">Cites a paper</a>', calendar, re.S)
    assert day and (site / "calendar" / day.group(1) / "index.html").resolve() == (post / "index.html").resolve()


def test_tag_page_lists_its_entries(built):
    _, site = built
    page = (site / "tags/allreduce/index.html").read_text(encoding="utf-8")
    assert "Ring math" in page and "Reading RLlib" not in page
    notes = (site / "tags/notes/index.html").read_text(encoding="utf-8")
    assert "Reading RLlib" in notes and "Ring math" in notes


def test_math_markup_and_local_renderer(built):
    _, site = built
    page = (site / "2026/03/02/ring-math/index.html").read_text(encoding="utf-8")
    assert 'class="arithmatex"' in page
    assert "assets/studylog/tex-svg.js" in page
    assert (site / "assets/studylog/tex-svg.js").stat().st_size > 1_000_000


def test_nothing_loaded_from_a_cdn(built):
    _, site = built
    for name, html in all_html(site).items():
        parser = _Scripts()
        parser.feed(html)
        assert parser.remote == [], (name, parser.remote)


def test_title_and_description_are_text(built):
    _, site = built
    for name, html in all_html(site).items():
        parser = _Scripts()
        parser.feed(html)
        assert not any("alert(1)" in script for script in parser.scripts), name
        assert "<b>x</b>" not in html, name
    page = (site / "2026/03/03/escaped/index.html").read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_an_extra_key_reaching_a_template_is_text(built):
    _, site = built
    page = (site / "2026/03/03/escaped/index.html").read_text(encoding="utf-8")
    parser = _Scripts()
    parser.feed(page)
    assert not any("alert(4)" in script for script in parser.scripts)
    if built[0] == "mkdocs":  # mkdocs-material writes page.meta.author into a <meta> tag
        authors = re.findall(r'<meta name="author" content="([^"]*)"', page)
        assert [html.unescape(a) for a in authors] == [AUTHOR]


@pytest.mark.parametrize("built", ["mkdocs"], indirect=True)  # the feed is mkdocs-rss-plugin's
def test_the_feed_shows_titles_as_written(built):
    _, site = built
    items = ElementTree.parse(site / "feed_rss_created.xml").getroot().iter("item")
    titles = [item.findtext("title") for item in items]
    assert EVIL in titles and APOSTROPHE in titles, sorted(titles)


@pytest.mark.parametrize("built", ["mkdocs"], indirect=True)
def test_the_feeds_links_and_image_resolve_outside_the_site(built):
    _, site = built
    channel = ElementTree.parse(site / "feed_rss_created.xml").getroot().find("channel")
    base = channel.findtext("link")
    image = channel.findtext("image/url")
    assert image.startswith(base) and (site / image.removeprefix(base)).is_file(), image
    items = {item.findtext("title"): item for item in channel.iter("item")}
    links = {title: re.findall(r'(?:href|src)="([^"]*)"', item.findtext("description")) for title, item in items.items()}
    assert all(link.startswith(("http://", "https://")) for found in links.values() for link in found), links
    # The lab card and the citation: absolute in the feed, relative on the page, the same target.
    post = items["Reading RLlib"].findtext("link")
    page = (site / post.removeprefix(base) / "index.html").read_text(encoding="utf-8")
    assert f"{base}labs/ring/" in links["Reading RLlib"] and 'href="../../../../labs/ring/"' in page
    assert any(link.startswith(f"{base}papers/liang2018/") for link in links["Cites a paper"]), links["Cites a paper"]


def test_drafts_appear_nowhere(built):
    _, site = built
    for name, html in all_html(site).items():
        assert "Secret draft" not in html and "Unpublished thing" not in html, name
    assert not (site / "2026/03/04").exists()


def test_home_lists_newest_first_and_feed_linked(built):
    engine, site = built
    home = (site / "index.html").read_text(encoding="utf-8")
    assert home.index("Ring math") < home.index("Reading RLlib")
    assert 'type="application/rss+xml"' in home
    feed = (site / "feed_rss_created.xml").read_text(encoding="utf-8")
    assert "Ring math" in feed and "Secret draft" not in feed


def test_archive_page(built):
    _, site = built
    archive = (site / "archive/2026/index.html").read_text(encoding="utf-8")
    assert "Ring math" in archive and "Reading RLlib" in archive


def test_both_engines_publish_the_same_pages(tmp_path):
    from conftest import ProjectMaker

    pages = {}
    for engine in ("mkdocs", "zensical"):
        maker = ProjectMaker(tmp_path / engine)
        fixture_project(maker)
        build(maker.project, engine=engine)
        pages[engine] = {p for p in all_html(maker.root / "site") if not p.startswith("404")}
    wanted = {p for p in pages["mkdocs"] if re.match(r"(\d{4}/\d\d/\d\d/|tags/|labs/)", p)}
    assert len(wanted) >= 3 + 4 + 2
    assert wanted <= pages["zensical"]


def test_drafts_flag_includes_them(maker):
    fixture_project(maker)
    build(maker.project, drafts=True)
    assert (maker.root / "site/2026/03/04/secret-draft/index.html").exists()


def test_problems_publish_nothing(maker):
    fixture_project(maker)
    build(maker.project)
    before = (maker.root / "site/index.html").read_bytes()
    maker.raw_log("2026-03-09-bad.md", "---\ntitle: Bad\ndate: 2026-04-01\n---\n")
    with pytest.raises(ProblemsFound):
        build(maker.project)
    assert (maker.root / "site/index.html").read_bytes() == before
    result = CliRunner().invoke(main, ["--root", str(maker.root), "build"])
    assert result.exit_code == 1
    assert "logs/2026-03-09-bad.md:3: date 2026-04-01 does not match" in result.output


def test_broken_internal_link_fails_strict_build(maker):
    fixture_project(maker)
    (maker.root / "site_src" / "about.md").write_text("# About\n\n[gone](missing.md)\n", encoding="utf-8")
    with pytest.raises(StudylogError, match="missing.md"):
        build(maker.project)


def test_tracked_page_in_a_generated_place_is_never_overwritten(maker):
    fixture_project(maker)
    (maker.root / "site_src" / "tags").mkdir()
    mine = maker.root / "site_src" / "tags" / "index.md"
    mine.write_text("# My tags page\n", encoding="utf-8")
    with pytest.raises(StudylogError, match="was not written by studylog"):
        build(maker.project)
    assert mine.read_text(encoding="utf-8") == "# My tags page\n"


def test_rebuild_swaps_the_site_in_one_step(maker):
    from studylog.atomic import _exchange

    fixture_project(maker)
    build(maker.project)
    first = (maker.root / "site" / "index.html").stat().st_ino
    build(maker.project)
    assert (maker.root / "site" / "index.html").stat().st_ino != first
    assert not (maker.root / ".studylog" / "site.new").exists()
    a, b = maker.root / "a", maker.root / "b"
    a.mkdir(), b.mkdir()
    (a / "x").write_text("a"), (b / "x").write_text("b")
    assert _exchange(a, b)  # this machine's kernel and file system do support the one-step swap
    assert (a / "x").read_text() == "b" and (b / "x").read_text() == "a"


def test_a_second_build_refuses_while_one_runs(maker):
    from studylog.lock import project_lock

    fixture_project(maker)
    with project_lock(maker.project, "build"):
        result = CliRunner().invoke(main, ["--root", str(maker.root), "build"])
    assert result.exit_code == 1
    assert "is running in this project" in result.output
    done = CliRunner().invoke(main, ["--root", str(maker.root), "build"])
    assert done.exit_code == 0
    assert done.output.count("mkdocs.yml:2: note: the nav leaves out Tags, Labs and Papers; studylog adds them at its end") == 1


def test_future_entries_math_per_entry_and_files_beside_an_entry(maker):
    maker.log("2026-03-01-prices.md", "title: Prices", "It cost $5, then $x$ became $y$.\n\nCode `$z$` stays.\n")
    maker.log("2026-03-02-formula.md", "title: Formula\nmath: true", "Inline $a^2$ here.\n")
    maker.log("2099-01-01-later.md", "title: Written ahead")
    maker.log("2026-03-03-figures.md", "title: Figures", "![ring](assets/ring.png) ![own](2026-03-03-figures/own.png)\n")
    for folder, name in (("assets", "ring.png"), ("2026-03-03-figures", "own.png")):
        (maker.root / "logs" / folder).mkdir()
        (maker.root / "logs" / folder / name).write_bytes(b"\x89PNG fake")
    done = build(maker.project)
    site = maker.root / "site"
    assert done.posts == 3 and not (site / "2099").exists()
    prices = (site / "2026/03/01/prices/index.html").read_text(encoding="utf-8")
    assert "arithmatex" not in prices and "$x$ became $y$" in prices and "<code>$z$</code>" in prices
    assert 'class="arithmatex"' in (site / "2026/03/02/formula/index.html").read_text(encoding="utf-8")
    figures = (site / "2026/03/03/figures/index.html").read_text(encoding="utf-8")
    images = re.findall(r'<img[^>]+src="([^"]+)"', figures)
    assert len(images) == 2
    for src in images:
        assert (site / "2026/03/03/figures" / src).resolve().is_file(), src
    assert build(maker.project, future=True).posts == 4 and (site / "2099/01/01/later/index.html").exists()


@pytest.mark.parametrize("built", ["mkdocs"], indirect=True)
def test_feed_dates_keep_the_authors_offset(built):
    _, site = built
    items = {item.findtext("title"): item for item in ElementTree.parse(site / "feed_rss_created.xml").getroot().iter("item")}
    published = email.utils.parsedate_to_datetime(items["Ring math"].findtext("pubDate"))
    assert published == dt.datetime(2026, 3, 2, 20, 0, tzinfo=dt.timezone.utc)  # 21:00 at +01:00
