"""The generated part of site_src: owned files rewritten, stale removed, others untouched."""

from __future__ import annotations

import pytest

from studylog.errors import StudylogError
from studylog.site.outputs import MANIFEST, write_generated


def test_writes_then_removes_stale(tmp_path):
    write_generated(tmp_path, {"posts/a.md": "A", "posts/b.md": "B"})
    assert (tmp_path / "posts/a.md").read_text() == "A"
    changed = write_generated(tmp_path, {"posts/a.md": "A"})
    assert changed == ["posts/b.md"]
    assert not (tmp_path / "posts/b.md").exists()


def test_unchanged_files_keep_their_mtime(tmp_path):
    write_generated(tmp_path, {"x.md": "same"})
    before = (tmp_path / "x.md").stat().st_mtime_ns
    assert write_generated(tmp_path, {"x.md": "same"}) == []
    assert (tmp_path / "x.md").stat().st_mtime_ns == before


def test_never_overwrites_a_file_it_did_not_write(tmp_path):
    (tmp_path / "tags").mkdir()
    mine = tmp_path / "tags" / "index.md"
    mine.write_text("hand-written")
    with pytest.raises(StudylogError, match="was not written by studylog"):
        write_generated(tmp_path, {"tags/index.md": "generated", "other.md": "x"})
    assert mine.read_text() == "hand-written"
    assert not (tmp_path / "other.md").exists()


def test_empty_folders_of_stale_files_removed(tmp_path):
    write_generated(tmp_path, {"labs/a/b.md": "x"})
    write_generated(tmp_path, {})
    assert sorted(p.name for p in tmp_path.iterdir()) == [MANIFEST]
