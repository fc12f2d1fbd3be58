"""`studylog serve`: the engine's dev server, fed by a watcher that regenerates pages.

The engine watches site_src and reloads the browser when a page there changes; studylog
watches logs/ and labs/ and regenerates the pages they feed (watchdog, which MkDocs itself
uses), so an edited log reaches the open page. A log that stops being valid is reported
and the last good pages stay served.
"""

from __future__ import annotations

import signal
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from .errors import ProblemsFound, StudylogError
from .memo import Memo
from .project import Project
from .site import engine_command, generate
from .siteconfig import write_engine_config

DEBOUNCE_S = 0.1


class _Regenerate(FileSystemEventHandler):
    """Regenerates the pages shortly after the last change in a burst (editors save in steps)."""

    def __init__(self, project: Project, drafts: bool, echo: Callable[[str], None], future: bool = False):
        self.project, self.drafts, self.future, self.echo = project, drafts, future, echo
        self.memo = Memo()  # what the last regeneration read and wrote
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()
        self._running = threading.Lock()  # one regeneration at a time: they share the memo and the files

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write") or Path(str(event.src_path)).name.startswith("."):
            return
        with self._lock:
            if self._timer:
                self._timer.cancel()
            self._timer = threading.Timer(DEBOUNCE_S, self.regenerate)
            self._timer.start()

    def regenerate(self) -> None:
        with self._running:
            self._regenerate()

    def _regenerate(self) -> None:
        try:
            done = generate(self.project, self.drafts, memo=self.memo, future=self.future)
        except ProblemsFound as err:
            for problem in err.problems:
                self.echo(str(problem))
            self.echo(f"{err}: still serving the last good pages")
            return
        if done.changed:
            self.echo(f"regenerated {len(done.changed)} page(s)")


def serve(project: Project, engine: str, drafts: bool, host: str, port: int, echo: Callable[[str], None],
          future: bool = False) -> None:
    """Serve until interrupted."""
    handler = _Regenerate(project, drafts, echo, future)
    generate(project, drafts, memo=handler.memo, future=future)
    config = write_engine_config(project, project.work_dir / "serve-site", drafts, engine)
    address = f"{host}:{port}"
    # MkDocs 1.6.1 leaves live reload off with recent click unless asked explicitly.
    # --dirty: after the first full build, re-render only the pages whose source changed
    # (36 s per edit becomes under 3 s at 3650 logs; bench/serve_latency.py). The price: after an
    # edit, serve's search index holds only the re-rendered pages; `build` is always full.
    options = ["-a", address] + (["--livereload", "--dirty"] if engine == "mkdocs" else [])
    observer = Observer()
    server: subprocess.Popen | None = None
    # SIGTERM (a process manager, `kill`) stops serve the way Ctrl-C does; by default it
    # would end studylog at once and leave the engine running with no parent.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:  # everything started inside: a Ctrl-C at any point stops what has started
        for folder in (project.logs_dir, project.labs_dir):
            if folder.is_dir():
                observer.schedule(handler, str(folder), recursive=False)
        observer.start()
        echo(f"serving on http://{address}/ (Ctrl-C to stop)")
        server = subprocess.Popen(engine_command(engine, "serve", config, *options))
        server.wait()
    except KeyboardInterrupt:
        return
    finally:
        if server is not None:
            _stop(server)
        if observer.is_alive():
            observer.stop()
            observer.join()
        signal.signal(signal.SIGTERM, previous)
    if server.returncode:  # it stopped by itself: a port in use, a broken config
        raise StudylogError(f"{engine} serve exited with status {server.returncode} (its output is above)")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _stop(server: subprocess.Popen) -> None:
    """Let the engine stop the way Ctrl-C stops it. MkDocs deletes its temporary build
    folder (the whole site: 126 MB at 3650 logs) only on that path; terminated, it leaves
    it in the temp folder. Ctrl-C in a terminal reaches the engine already (one process
    group); an interrupt or SIGTERM sent to studylog alone is passed on as an interrupt.
    Killed only if it hangs."""
    try:
        server.wait(timeout=3)
        return
    except subprocess.TimeoutExpired:
        server.send_signal(signal.SIGINT)
    try:
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
