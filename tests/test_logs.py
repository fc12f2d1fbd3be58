"""Parsing log entries and every validation rule of the log contract."""

from __future__ import annotations

import datetime as dt

import pytest

from studylog.logs.check import check_project


def problems_of(maker) -> list[str]:
    return [str(p) for p in check_project(maker.project).problems]


def only_entry(maker):
    result = check_project(maker.project)
    assert not result.problems, result.problems
    (entry,) = result.entries
    return entry


def test_minimal_entry_parses(maker):
    maker.log("2026-03-01-first-day.md", "title: First day\ndate: 2026-03-01")
    entry = only_entry(maker)
    assert entry.title == "First day"
    assert entry.date == dt.datetime(2026, 3, 1)
    assert entry.slug == "first-day"
    assert entry.url == "2026/03/01/first-day/"
    assert entry.tags == () and not entry.math and not entry.draft


def test_jekyll_datetime_offset_without_colon(maker):
    maker.log("2026-03-01-x.md", "title: X\ndate: 2026-03-01 09:30:00 +0100")
    entry = only_entry(maker)
    assert entry.date == dt.datetime(2026, 3, 1, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=1)))


def test_datetime_with_colon_offset_keeps_written_date(maker):
    # 00:30 at +01:00 is the previous day in UTC; the written date is what must match.
    maker.log("2026-03-01-x.md", "title: X\ndate: 2026-03-01 00:30:00 +01:00")
    assert only_entry(maker).date.date() == dt.date(2026, 3, 1)


@pytest.mark.parametrize(
    "tags, expected",
    [("[a, b]", ("a", "b")), ("a b  c", ("a", "b", "c")), ("[2018, rl]", ("2018", "rl")), ("a a b", ("a", "b"))],
)
def test_tags_list_or_space_separated(maker, tags, expected):
    maker.log("2026-03-01-x.md", f"title: X\ndate: 2026-03-01\ntags: {tags}")
    assert only_entry(maker).tags == expected


def test_categories_space_separated(maker):
    maker.log("2026-03-01-x.md", "title: X\ndate: 2026-03-01\ncategories: notes rl")
    assert only_entry(maker).categories == ("notes", "rl")


@pytest.mark.parametrize("value", ["true", "True", "TRUE"])
def test_math_booleans(maker, value):
    maker.log("2026-03-01-x.md", f"title: X\ndate: 2026-03-01\nmath: {value}")
    assert only_entry(maker).math is True


def test_published_false_is_a_draft(maker):
    maker.log("2026-03-01-x.md", "title: X\ndate: 2026-03-01\npublished: false")
    assert only_entry(maker).draft is True


def test_unknown_and_jekyll_keys_are_kept(maker):
    maker.log(
        "2026-03-01-x.md",
        "title: X\ndate: 2026-03-01\nlayout: post\ndescription: D\nauthor: me\ncomments: true",
    )
    entry = only_entry(maker)
    assert entry.layout == "post" and entry.description == "D"
    assert entry.extra == {"author": "me", "comments": True}


def test_labs_names_existing_labs(maker):
    maker.lab("allreduce")
    maker.log("2026-03-01-x.md", "title: X\ndate: 2026-03-01\nlabs: [allreduce]")
    assert only_entry(maker).labs == ("allreduce",)


# Each rule: the file, its content, and the expected `path:line: message` fragment.
BAD = [
    ("yaml syntax", "2026-03-01-x.md", "---\ntitle: X\ndate: 2026-03-01\ntags: [a, b\n---\n", 5, "YAML syntax error"),
    ("empty title", "2026-03-01-x.md", "---\ntitle: '  '\ndate: 2026-03-01\n---\n", 2, "title is empty"),
    ("invalid date", "2026-03-01-x.md", "---\ntitle: X\ndate: soon\n---\n", 3, "invalid date"),
    ("impossible date", "2026-03-01-x.md", "---\ntitle: X\ndate: 2026-02-30\n---\n", 3, "invalid value: day is out of range"),
    ("date mismatch", "2026-03-01-x.md", "---\ntitle: X\ndate: 2026-03-02\n---\n", 3, "does not match the file name"),
    ("bad file name", "notes.md", "---\ntitle: X\ndate: 2026-03-01\n---\n", 1, "file name must be YYYY-MM-DD-slug.md"),
    ("not markdown", "2026-03-01-x.txt", "---\ntitle: X\ndate: 2026-03-01\n---\n", 1, "file name must be"),
    ("no slug", "2026-03-01.md", "---\ntitle: X\ndate: 2026-03-01\n---\n", 1, "file name must be"),
    ("bad file date", "2026-13-01-x.md", "---\ntitle: X\ndate: 2026-03-01\n---\n", 1, "file name must be"),
    ("tags mapping", "2026-03-01-x.md", "---\ntitle: X\ndate: 2026-03-01\ntags: {a: 1}\n---\n", 4, "tags must be a list"),
    ("tags nested", "2026-03-01-x.md", "---\ntitle: X\ndate: 2026-03-01\ntags: [[a]]\n---\n", 4, "tags entries must be"),
    ("tags null item", "2026-03-01-x.md", "---\ntitle: X\ndate: 2026-03-01\ntags: [a, ~]\n---\n", 4, "tags entries must be"),
    ("unknown lab", "2026-03-01-x.md", "---\ntitle: X\ndate: 2026-03-01\nlabs: [nosuch]\n---\n", 4, "names no lab"),
    ("lab path", "2026-03-01-x.md", "---\ntitle: X\ndate: 2026-03-01\nlabs: [../x]\n---\n", 4, "not a lab name"),
    ("lab abs path", "2026-03-01-x.md", "---\ntitle: X\ndate: 2026-03-01\nlabs: [/etc/x]\n---\n", 4, "not a lab name"),
    ("math string", "2026-03-01-x.md", "---\ntitle: X\ndate: 2026-03-01\nmath: yes please\n---\n", 4, "math must be true or false"),
    ("empty file", "2026-03-01-x.md", "", 1, "empty file"),
    ("blank file", "2026-03-01-x.md", "\n  \n", 1, "empty file"),
    ("no front matter", "2026-03-01-x.md", "# Just text\n", 1, "no front matter"),
    ("unclosed", "2026-03-01-x.md", "---\ntitle: X\n", 1, "not closed"),
    ("not a mapping", "2026-03-01-x.md", "---\n- a\n- b\n---\n", 2, "must be a mapping"),
    ("duplicate key", "2026-03-01-x.md", "---\ntitle: X\ndate: 2026-03-01\ntitle: Y\n---\n", 4, "duplicate key 'title'"),
]


@pytest.mark.parametrize("name, file, content, line, message", BAD, ids=[b[0] for b in BAD])
def test_each_rule_reports_path_line_message(maker, name, file, content, line, message):
    maker.raw_log(file, content)
    (problem,) = problems_of(maker)
    assert problem.startswith(f"logs/{file}:{line}: "), problem
    assert message in problem


def test_not_utf8_reports_line_of_bad_byte(maker):
    maker.raw_log("2026-03-01-x.md", b"---\ntitle: X\ndate: 2026-03-01\n---\n\ncaf\xe9\n")
    (problem,) = problems_of(maker)
    assert problem.startswith("logs/2026-03-01-x.md:6: not UTF-8")


def test_two_entries_with_the_same_url(maker):
    maker.log("2026-03-01-same.md", "title: A\ndate: 2026-03-01")
    maker.log("2026-03-01-Same.md", "title: B\ndate: 2026-03-01")
    maker.log("2026-03-01-other.md", "title: C\ndate: 2026-03-01\nslug: same")
    found = problems_of(maker)
    assert len(found) == 2
    assert all("publishes to the same URL /2026/03/01/same/" in p for p in found)


def test_every_problem_in_one_pass(maker):
    maker.raw_log("2026-03-01-a.md", "---\ndate: 2026-03-01\ntags: {x: 1}\nmath: maybe\n---\n")
    maker.raw_log("2026-03-02-b.md", "")
    maker.raw_log("bad.md", "---\ntitle: X\n---\n")
    found = problems_of(maker)
    assert len(found) == 4
    assert [p.split(":")[0] for p in found] == sorted(p.split(":")[0] for p in found)


def test_symlink_outside_project_refused(maker, tmp_path):
    outside = tmp_path / "elsewhere.md"
    outside.write_text("---\ntitle: X\ndate: 2026-03-01\n---\n", encoding="utf-8")
    (maker.root / "logs" / "2026-03-01-x.md").symlink_to(outside)
    (problem,) = problems_of(maker)
    assert "symlink points outside the project" in problem


def test_a_jekyll_posts_folder_drops_in(maker):
    """Jekyll's defaults: title from the slug, date from the file name, .markdown files,
    `category`, `published: false`; front matter may be empty."""
    maker.raw_log("2026-03-01-what-i-read.markdown", "---\n---\nBody.\n")
    maker.raw_log("2026-03-02-ring.md", "---\nlayout: post\ncategory: notes\n---\nBody.\n")
    maker.raw_log("2026-03-03-hidden.markdown", "---\ntitle: Hidden\npublished: false\n---\n")
    result = check_project(maker.project)
    assert not result.problems and not result.warnings, (result.problems, result.warnings)
    first, ring, hidden = result.entries
    assert (first.title, first.date, first.url) == ("What I Read", dt.datetime(2026, 3, 1), "2026/03/01/what-i-read/")
    assert ring.categories == ("notes",) and ring.layout == "post" and "category" not in ring.extra
    assert hidden.draft


@pytest.mark.parametrize("front, line, message", [
    ("tittle: X", 2, "unknown key 'tittle': did you mean 'title'?"),
    ("drafts: true", 2, "unknown key 'drafts': did you mean 'draft'?"),
    ("tag: [a]", 2, "unknown key 'tag': did you mean 'tags'?"),
    ("tags: rl, ppo", 2, "tags: 'rl, ppo' is split at spaces, so the commas stay in the names; write a list: tags: [rl, ppo]"),
    ("permalink: /x/", 2, "permalink is not supported"),
])
def test_doubtful_keys_are_warned_with_a_suggestion_and_still_published(maker, front, line, message):
    maker.raw_log("2026-03-01-x.md", f"---\n{front}\n---\n")
    result = check_project(maker.project)
    assert not result.problems and len(result.entries) == 1
    (warning,) = result.warnings
    assert str(warning).startswith(f"logs/2026-03-01-x.md:{line}: warning: {message}"), str(warning)


def test_plain_extra_keys_are_not_warned(maker):
    maker.log("2026-03-01-x.md", "title: X\nauthor: me\ncomments: true\nimage: a.png\nexcerpt: E")
    assert check_project(maker.project).warnings == ()


def test_editor_backups_and_asset_folders_are_not_entries(maker):
    maker.log("2026-03-01-x.md", "title: X")
    for name in ("2026-03-01-x.md~", "#2026-03-01-x.md#", ".2026-03-01-x.md.swp"):
        (maker.root / "logs" / name).write_text("garbage", encoding="utf-8")
    (maker.root / "logs" / "assets").mkdir()
    (maker.root / "logs" / "assets" / "fig.png").write_bytes(b"\x89PNG")
    result = check_project(maker.project)
    assert not result.problems and not result.warnings and len(result.entries) == 1


def test_the_schema_is_the_readme_table():
    from pathlib import Path

    from studylog.logs.entry import schema_table

    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    assert schema_table() in readme, "README's front-matter table differs from logs.SCHEMA: paste schema_table()"
