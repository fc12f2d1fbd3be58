"""MkDocs hook: `mkdocs serve` learns of a changed page from the kernel, not by polling.

Why: MkDocs' dev server finds changes with watchdog's polling observer, which lists and
stats every file of docs_dir every 0.5 s. At 3650 posts each pass takes tens of
milliseconds of CPU, a saved page waits a quarter of a second on average before its
rebuild starts, and the polling competes for the cores with the rebuild itself
(bench/serve_latency.py measures edit-to-served). studylog writes the pages itself, on a
local disk, where inotify (watchdog's native observer) reports a change at once.

What: in `on_serve`, before the server starts its observer, move the paths MkDocs has
watched by then (docs_dir and the config file) from the polling observer to a native one,
through the server's public `watch`/`unwatch` and its `observer` attribute; paths watched
later (`watch:` in the config) follow the new observer; theme folders watched under
`--watch-theme` would stay on the polling observer, which then never starts (studylog does
not use that option). Where a native observer cannot
start (no inotify, or its limits reached), nothing changes and the server polls. Loaded by
MkDocs through `hooks:`, where only `serve` fires this event; never imported by studylog.
"""

from __future__ import annotations

from typing import Any

from watchdog.events import (FileClosedEvent, FileCreatedEvent, FileDeletedEvent, FileModifiedEvent, FileMovedEvent,
                             FileSystemEventHandler)
from watchdog.observers import Observer

WRITES = [FileCreatedEvent, FileModifiedEvent, FileDeletedEvent, FileMovedEvent, FileClosedEvent]


class _WritesObserver(Observer):
    """The native observer, reporting writes only. inotify also reports a file being opened
    and closed unwritten, and MkDocs reads every page in a build: each of those reads would
    ask for another build, forever (polling never sees reads)."""

    def schedule(self, event_handler, path, *, recursive=False, event_filter=None):
        return super().schedule(event_handler, path, recursive=recursive, event_filter=event_filter or WRITES)


def on_serve(server: Any, config: Any, builder: Any) -> Any:
    paths = [p for p in (config.docs_dir, config.config_file_path) if p]
    if not _native_watching_works(config.docs_dir):
        return server
    for path in paths:
        server.unwatch(path)
    server.observer = _WritesObserver()
    for path in paths:
        server.watch(path)
    return server


def _native_watching_works(folder: str) -> bool:
    """Whether a native observer can watch `folder` here: inotify fails at start, not at
    schedule, so a probe is started and stopped."""
    probe = Observer()
    try:
        probe.schedule(FileSystemEventHandler(), folder, recursive=True)
        probe.start()
    except OSError:
        return False
    finally:
        if probe.is_alive():
            probe.stop()
            probe.join()
    return "polling" not in type(probe).__module__
