"""The generated part of site_src: written each build, stale files removed, nothing else touched.

A manifest lists every file studylog wrote. A file that exists but is not in it (a
hand-written, tracked page) is never overwritten: the build stops and says so. The manifest
is widened before files are written and narrowed after stale ones are removed, so an
interrupted build never leaves a studylog file that the next build would not own.
"""

from __future__ import annotations

import json
from pathlib import Path

from .atomic import write_atomic
from .errors import StudylogError
from .pages import Content

MANIFEST = ".studylog-generated.json"


def write_generated(site_src: Path, pages: dict[str, Content]) -> list[str]:
    """Make the generated files under `site_src` exactly `pages`; return the paths changed."""
    owned = _read_manifest(site_src)
    for rel in sorted(pages.keys() - owned):
        if (site_src / rel).exists() or (site_src / rel).is_symlink():
            raise StudylogError(
                f"{site_src / rel}: exists and was not written by studylog; move it, it is a generated path"
            )
    _write_manifest(site_src, owned | pages.keys())
    changed = [rel for rel, content in sorted(pages.items()) if _write_if_changed(site_src / rel, content)]
    for rel in sorted(owned - pages.keys()):
        (site_src / rel).unlink(missing_ok=True)
        _remove_empty_parents(site_src / rel, site_src)
        changed.append(rel)
    _write_manifest(site_src, set(pages))
    return changed


def _write_if_changed(path: Path, content: Content) -> bool:
    data = content.read_bytes() if isinstance(content, Path) else content.encode("utf-8")
    # Unchanged files keep their mtime, so a serving engine rebuilds only what moved.
    if path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data:
        return False
    write_atomic(path, data)
    return True


def _remove_empty_parents(path: Path, stop: Path) -> None:
    parent = path.parent
    while parent != stop and parent.is_dir() and not any(parent.iterdir()):
        parent.rmdir()
        parent = parent.parent


def _read_manifest(site_src: Path) -> set[str]:
    path = site_src / MANIFEST
    if not path.exists():
        return set()
    try:
        paths = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise StudylogError(f"{path}: unreadable; delete it and the generated pages it listed") from None
    return {p for p in paths if isinstance(p, str) and ".." not in Path(p).parts}


def _write_manifest(site_src: Path, paths: set[str]) -> None:
    write_atomic(site_src / MANIFEST, json.dumps(sorted(paths), indent=0))
