"""Papers: Pandoc's citation grammar, references.bib read with lines, `check` on unknown keys,
citations rendered as links with a bibliography, a page per paper with its study trail."""

from __future__ import annotations

import datetime as dt
import textwrap

import pytest
from hypothesis import given
from hypothesis import strategies as st

from studylog.logs.check import check_project
from studylog.markup import CODE, mask_code
from studylog.papers.bibliography import read_bibliography
from studylog.papers.citations import Cite, find_citations
from studylog.site.build import generate

BIB = textwrap.dedent(r"""
    @inproceedings{liang2018,
      title = {{RLlib}: Abstractions for Distributed Reinforcement Learning},
      author = {Liang, Eric and Liaw, Richard and Nishihara, Robert},
      booktitle = {Proceedings of the 35th International Conference on Machine Learning},
      year = {2018},
      pages = {3053--3062},
      eprint = {1712.09381},
      archivePrefix = {arXiv},
      abstract = {Reinforcement learning algorithms involve the deep nesting of {\em highly} irregular computation.}
    }

    @article{schulman2017,
      title = {Proximal Policy Optimization Algorithms},
      author = {Schulman, John and Wolski, Filip},
      journal = {arXiv preprint arXiv:1707.06347},
      year = {2017}
    }

    @article{schulman2017other,
      title = {Another <b>paper</b> with_underscores},
      author = {Schulman, John and Wolski, Filip},
      journal = {J},
      year = {2017},
      doi = {10.1000/xyz},
      url = {https://example.org/a?b=1&c=2}
    }

    @misc{espeholt2018,
      title = {{IMPALA}},
      author = {Espeholt, Lasse},
      year = {2018}
    }
""").lstrip()


def cites(text):
    return [(c.in_text, c.cites) for c in find_citations(text)]


@pytest.mark.parametrize("text, expected", [
    ("[@liang2018]", [(False, (Cite("liang2018"),))]),
    ("[@a; @b]", [(False, (Cite("a"), Cite("b")))]),
    ("[see @key, p. 3]", [(False, (Cite("key", "see", ", p. 3"),))]),
    ("[see @a, pp. 33-35; also @b, chap. 1]", [(False, (Cite("a", "see", ", pp. 33-35"), Cite("b", "also", ", chap. 1")))]),
    ("[-@key]", [(False, (Cite("key", suppress_author=True),))]),
    ("as @key says", [(True, (Cite("key"),))]),
    ("@key [p. 33] says", [(True, (Cite("key", suffix="p. 33"),))]),
    ("@liang2018.", [(True, (Cite("liang2018"),))]),
    ("@{odd:key/1}", [(True, (Cite("odd:key/1"),))]),
    ("[see\n@a]", [(False, (Cite("a", "see"),))]),
])
def test_pandoc_citation_forms(text, expected):
    assert cites(text) == expected


@pytest.mark.parametrize("text", [
    "write to me@example.org",
    "`@liang2018` in code",
    "```\n[@liang2018]\n```",
    "para\n\n    @liang2018 indented code\n",
    "``a\n@liang2018`` a span over two lines",
    "[a link @liang2018](https://example.org)",
    r"an escaped \@liang2018",
    "[no key here]",
])
def test_what_is_not_a_citation(text):
    assert find_citations(text) == []


def test_lines_of_citations_count_from_the_text():
    (first, second) = find_citations("one\ntwo [@a]\n\nfour @b")
    assert (first.line, second.line) == (2, 4)


@given(st.text(alphabet="ab@[]`;-, \n", max_size=40))
def test_mask_keeps_offsets_and_citations_never_overlap(text):
    masked = mask_code(text)
    assert len(masked) == len(text) and all(m == t or m == CODE for m, t in zip(masked, text))
    found = find_citations(text)
    assert all(a.end <= b.start for a, b in zip(found, found[1:]))


def test_bibliography_reads_entries_with_labels_and_links(tmp_path):
    (tmp_path / "references.bib").write_text(BIB, encoding="utf-8")
    bib, problems = read_bibliography(tmp_path / "references.bib", tmp_path.name)
    assert problems == []
    liang = bib.get("LIANG2018")
    assert (liang.label, liang.line, liang.title) == ("Liang et al., 2018", 1, "RLlib: Abstractions for Distributed Reinforcement Learning")
    assert liang.links == (("arXiv:1712.09381", "https://arxiv.org/abs/1712.09381"),)
    assert liang.abstract.startswith("Reinforcement learning algorithms involve the deep nesting of highly")
    # Same authors, same year: told apart by a letter, in key order.
    assert (bib.get("schulman2017").label, bib.get("schulman2017other").label) == ("Schulman and Wolski, 2017a",
                                                                                   "Schulman and Wolski, 2017b")
    assert "&lt;b&gt;" in bib.get("schulman2017other").reference and "\\_" in bib.get("schulman2017other").reference


@pytest.mark.parametrize("bib, line, message", [
    ("@misc{a, title={x}}\n\n@misc{A, title={y}}\n", 3, "duplicate key 'A' (first at line 1)"),
    ("@misc{a, title={x}}\n@misc{b,\n  title = {x} junk,\n  year=1}\n", 3, "BibTeX syntax error"),
    ("@misc{a, title={x}}\n@misc{b, title={x}\n@misc{c, title={y}}\n", 3, "is entry 'b', which starts at line 2, closed?"),
    ("@misc{ok, title={x}}\n@article{b, title={x}, author={A, B}, year=1}\n", 2, "lacks a field pybtex's plain style needs: journal"),
    ("@misc{a, title={x}, url={javascript:alert(1)}}\n", 1, "url must be an http(s) address"),
    ('@misc{a, title={x}, doi={10.1/"onmouseover=x}}\n', 1, "doi must have no spaces, quotes"),
])
def test_bib_problems_name_the_line(tmp_path, bib, line, message):
    path = tmp_path / "references.bib"
    path.write_text(bib, encoding="utf-8")
    found, problems = read_bibliography(path, path.name)
    assert found is None
    assert any(p.line == line and message in p.message for p in problems), problems


@pytest.fixture
def cited(maker):
    """A project whose logs and lab cite references.bib."""
    (maker.root / "references.bib").write_text(BIB, encoding="utf-8")
    maker.lab("ring", body="print('ok')")
    lab = maker.root / "labs" / "ring.py"
    lab.write_text(lab.read_text(encoding="utf-8") + "\n# %% [markdown]\n# PPO [@schulman2017, sec. 3] in a lab.\n",
                   encoding="utf-8")
    maker.log("2026-03-01-first.md", "title: First\nlabs: [ring]",
              "We read [see @liang2018, p. 3; also @schulman2017].\n\nAs @liang2018 [p. 4] argue, `@notakey` stays.\n")
    maker.log("2026-03-05-second.md", "title: Second", "Back to [-@liang2018].\n")
    return maker


def test_check_reports_unknown_keys_at_their_lines_with_a_suggestion(cited):
    cited.log("2026-03-06-typo.md", "title: Typo", "Fine.\n\nSee [@liang2O18] and [@nothing_like_it].\n")
    lab = cited.root / "labs" / "ring.py"
    lab.write_text(lab.read_text(encoding="utf-8") + "\n# %% [markdown]\n# Also @schulman2071.\n", encoding="utf-8")
    problems = [str(p) for p in check_project(cited.project).problems]
    assert "logs/2026-03-06-typo.md:7: unknown citation key 'liang2O18'; did you mean 'liang2018'?" in problems
    assert any(p.startswith("logs/2026-03-06-typo.md:7: unknown citation key 'nothing_like_it'") for p in problems)
    source_lines = lab.read_text(encoding="utf-8").splitlines()
    line = next(i for i, text in enumerate(source_lines, 1) if "schulman2071" in text)
    assert f"labs/ring.py:{line}: unknown citation key 'schulman2071'; did you mean 'schulman2017'?" in problems


def test_a_bad_bib_stops_publishing(cited):
    (cited.root / "references.bib").write_text(BIB + "\n@misc{liang2018, title={again}}\n", encoding="utf-8")
    problems = [str(p) for p in check_project(cited.project).problems]
    line = len(BIB.splitlines()) + 2
    assert problems == [f"references.bib:{line}: duplicate key 'liang2018' (first at line 1); BibTeX keys ignore case"]


def test_citations_render_as_links_with_a_bibliography_and_paper_pages(cited):
    generate(cited.project)
    site_src = cited.root / "site_src"
    first = (site_src / "posts" / "2026-03-01-first.md").read_text(encoding="utf-8")
    link = '[Liang et al., 2018](../papers/liang2018.md "RLlib: Abstractions for Distributed Reinforcement Learning")'
    assert f"We read (see {link}, p. 3; also [Schulman and Wolski, 2017a](../papers/schulman2017.md" in first
    assert "As [Liang et al.](../papers/liang2018.md" in first and ") (2018, p. 4) argue, `@notakey` stays." in first
    references = first[first.index("## References"):]
    assert references.index("Eric Liang") < references.index("John Schulman")  # by author
    assert "[arXiv:1712\\.09381](<https://arxiv.org/abs/1712.09381>)" not in references  # links are studylog's
    assert "[arXiv:1712.09381](<https://arxiv.org/abs/1712.09381>)" in references
    second = (site_src / "posts" / "2026-03-05-second.md").read_text(encoding="utf-8")
    assert "Back to ([2018](../papers/liang2018.md" in second
    lab = (site_src / "labs" / "ring.md").read_text(encoding="utf-8")
    assert "PPO ([Schulman and Wolski, 2017a](../papers/schulman2017.md" in lab and ", sec. 3) in a lab." in lab
    assert "## References" in lab

    paper = (site_src / "papers" / "liang2018.md").read_text(encoding="utf-8")
    assert paper.startswith('---\ntitle: "RLlib: Abstractions for Distributed Reinforcement Learning"\n---')
    assert "Reinforcement learning algorithms involve the deep nesting of highly" in paper
    trail = paper[paper.index("## Study trail"):]
    assert trail.index("2026-03-05 · log: [Second](../posts/2026-03-05-second.md)") < trail.index(
        "2026-03-01 · log: [First](../posts/2026-03-01-first.md)")
    schulman = (site_src / "papers" / "schulman2017.md").read_text(encoding="utf-8")
    assert "not run yet · lab: [A lab](../labs/ring.md)" in schulman

    reading = (site_src / "papers" / "index.md").read_text(encoding="utf-8")
    order = [reading.index(f"({slug}.md)") for slug in ("liang2018", "schulman2017")]
    assert order == sorted(order)  # liang2018: cited last on 03-05
    assert "last cited 2026-03-05 · 2 logs · 0 labs" in reading
    assert "1 log · 1 lab" in reading
    not_cited = reading[reading.index("## Not cited yet"):]
    assert "espeholt2018.md" in not_cited and "schulman2017other.md" in not_cited
    other = (site_src / "papers" / "schulman2017other.md").read_text(encoding="utf-8")
    assert "No log or lab cites it yet." in other and "[doi:10.1000/xyz](<https://doi.org/10.1000/xyz>)" in other
    assert "<b>" not in other


def test_without_a_bib_text_with_at_signs_stays_as_written(maker):
    maker.log("2026-03-01-a.md", "title: A", "Mail [me @home] or @someone.\n")
    assert not check_project(maker.project).problems
    generate(maker.project)
    page = (maker.root / "site_src" / "posts" / "2026-03-01-a.md").read_text(encoding="utf-8")
    assert "Mail [me @home] or @someone." in page and not (maker.root / "site_src" / "papers").exists()


def test_papers_join_the_nav_when_the_project_has_a_bib(cited):
    from studylog.site.engine_config import missing_indexes

    assert {"Papers": "papers/index.md"} in missing_indexes(cited.project, [{"Log": "index.md"}])
    (cited.root / "references.bib").unlink()
    assert {"Papers": "papers/index.md"} not in missing_indexes(cited.project, [{"Log": "index.md"}])


def test_the_calendar_page_and_snippet_are_written(maker):
    day = dt.date.today() - dt.timedelta(days=3)
    maker.log(f"{day}-a.md", "title: A")
    generate(maker.project)
    site_src = maker.root / "site_src"
    snippet = (site_src / ".studylog" / "calendar.html").read_text(encoding="utf-8")
    calendar = (site_src / "calendar.md").read_text(encoding="utf-8")
    assert f'href="calendar/#d-{day}"' in snippet and f'<a id="d-{day}"></a>' in calendar
    assert f"[A](posts/{day}-a.md)" in calendar


def test_the_reading_list_breaks_a_tie_of_days_by_citations_then_title(tmp_path):
    from studylog.site.paperpages import Citing, reading_list

    (tmp_path / "references.bib").write_text(BIB, encoding="utf-8")
    bib, _ = read_bibliography(tmp_path / "references.bib", tmp_path.name)
    day = dt.date(2026, 3, 1)
    trails = {"espeholt2018": [Citing("log", "A", "a", day)],
              "schulman2017": [Citing("log", "B", "b", day), Citing("lab", "C", "c", day)],
              "liang2018": [Citing("log", "D", "d", day)]}
    listed = reading_list(bib, trails)
    order = [listed.index(f"({slug}.md)") for slug in ("schulman2017", "espeholt2018", "liang2018")]
    assert order == sorted(order)  # most cited first, then IMPALA before RLlib by title
