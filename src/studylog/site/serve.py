"""`studylog serve`: the engine's dev server, fed by a watcher that regenerates pages.

The engine watches site_src and its config and reloads the browser when they change;
studylog watches logs/, labs/ and results/ and regenerates the pages they feed (watchdog,
which MkDocs itself uses), so an edited log or a lab's new results reach the open page; an
edited mkdocs.yml is laid over studylog's defaults again into the engine's config. A log
that stops being valid is reported and the last good pages stay served.
"""

from __future__ import annotations

import signal
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from studylog.errors import ProblemsFound, StudylogError
from studylog.memo import Memo
from studylog.project import Project
from studylog.site.build import engine_command, generate
from studylog.site.engine_config import write_engine_config

DEBOUNCE_S = 0.1


class _Regenerate(FileSystemEventHandler):
    """Regenerates the pages shortly after the last change in a burst (editors save in steps)."""

    def __init__(self, project: Project, drafts: bool, echo: Callable[[str], None], future: bool = False,
                 reconfigure: Callable[[], None] = lambda: None):
        self.project, self.drafts, self.future, self.echo = project, drafts, future, echo
        self.reconfigure, self.config_changed = reconfigure, False  # applies a changed mkdocs.yml
        self.memo = Memo()  # what the last regeneration read and wrote
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()
        self._running = threading.Lock()  # one regeneration at a time: they share the memo and the files

    def on_any_event(self, event: FileSystemEvent) -> None:
        path = Path(str(event.src_path))
        if event.event_type in ("opened", "closed_no_write") or path.name.startswith("."):
            return
        if path.parent == self.project.root:  # the root is watched for the site's settings and papers only
            if path not in (self.project.user_config, self.project.bibliography_file):
                return
            # A references.bib that appears or goes adds or drops Papers in the nav.
            self.config_changed |= path == self.project.user_config or event.event_type in ("created", "deleted", "moved")
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
            if self.config_changed:
                self.config_changed = False
                self.reconfigure()
                self.echo("mkdocs.yml changed")
            done = generate(self.project, self.drafts, memo=self.memo, future=self.future)
        except ProblemsFound as err:
            for problem in err.problems:
                self.echo(str(problem))
            self.echo(f"{err}: still serving the last good pages")
            return
        except StudylogError as err:  # an mkdocs.yml that cannot be read
            self.echo(f"error: {err}: still serving the last good pages")
            return
        if done.changed:
            self.echo(f"regenerated {len(done.changed)} page(s)")


def serve(project: Project, engine: str, drafts: bool, host: str, port: int, echo: Callable[[str], None],
          future: bool = False) -> None:
    """Serve until interrupted."""
    running: list[subprocess.Popen] = []  # the engine now serving
    restart = threading.Event()

    def reconfigure() -> None:
        """New settings: rewrite the engine's config and restart it. Reloading alone would
        re-render only changed pages (--dirty), and every page shows the settings."""
        write_engine_config(project, project.work_dir / "serve-site", drafts, engine)
        restart.set()
        if running:
            running[-1].send_signal(signal.SIGINT)  # its own clean shutdown; the loop below starts it again

    handler = _Regenerate(project, drafts, echo, future, reconfigure)
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
    terminated = []  # SIGTERM came, which no terminal sends the engine too

    def terminate(signum: int, frame: object) -> None:
        terminated.append(signum)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, terminate)
    # A shell starts a background job (`studylog serve &` in a script) with SIGINT ignored,
    # and an ignored signal stays ignored across exec: neither studylog nor the engine would
    # stop on an interrupt. A caught one is reset to the default in a child, so catching it
    # here makes both interruptible.
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:  # everything started inside: a Ctrl-C at any point stops what has started
        for folder, recursive in ((project.logs_dir, True), (project.labs_dir, False),
                                  (project.root / "results", True), (project.root, False)):
            if folder.is_dir():  # logs/ with its asset folders; results/ holds a folder per lab
                observer.schedule(handler, str(folder), recursive=recursive)
        observer.start()
        echo(f"serving on http://{address}/ (Ctrl-C to stop)")
        while True:
            restart.clear()
            server = subprocess.Popen(engine_command(engine, "serve", config, *options))
            running.append(server)
            server.wait()
            if not restart.is_set():
                break
            echo("restarting the engine with the new settings")
    except KeyboardInterrupt:
        return
    finally:
        if server is not None:
            _stop(server, already_interrupted=not terminated)
        if observer.is_alive():
            observer.stop()
            observer.join()
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)
    if server.returncode:  # it stopped by itself: a port in use, a broken config
        raise StudylogError(f"{engine} serve exited with status {server.returncode} (its output is above)")


def _stop(server: subprocess.Popen, already_interrupted: bool) -> None:
    """Let the engine stop the way Ctrl-C stops it. MkDocs deletes its temporary build
    folder (the whole site: 126 MB at 3650 logs) only on that path; terminated, it leaves
    it in the temp folder. Ctrl-C in a terminal reaches the engine already (one process
    group), and a second interrupt could cut its cleanup short: so after an interrupt the
    engine has 3 s to stop before it is sent one. After SIGTERM (a process manager,
    `kill`) it is sent one at once. Killed only if it hangs."""
    try:
        server.wait(timeout=3 if already_interrupted else 0)
        return
    except subprocess.TimeoutExpired:
        server.send_signal(signal.SIGINT)
    try:
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
