"""Recording what a lab reads while it runs, in every process it starts, so a changed input
re-runs it.

`watch(root, out)` installs a `sys.addaudithook` hook in the calling process. For each input
under the project it sees for the first time, it appends one line to `out`, at once (so the
list survives a process that is killed), with the input's digest taken at that moment (so a
file edited later in a long run is recorded as the run read it):

    data     a file opened for reading                       sha256 of its bytes
    module   a project module executed, by any import        sha256 of its .py source
             (its source or its cached bytecode opened: static imports, importlib,
             namespace packages, modules a Ray worker unpickles)
    listing  a folder listed (os.listdir, os.scandir, and     sha256 of its sorted names
             so glob and pathlib)

Child processes (Ray's workers, multiprocessing, subprocesses running Python) record into
the same file: `child_environment` gives the variables under which every Python process
started installs the hook at startup, through the `sitecustomize` module in `boot/` put
first on PYTHONPATH. Python has no other hook that runs in every new interpreter; this one
replaces any other sitecustomize for the lab's processes.

Not recorded: the project's own output folders (IGNORED), installation metadata (a
`*.egg-info` or `*.dist-info` folder, which `pip install -e` writes and every fresh install
rewrites; the versions it holds are recorded as the run's environment instead), files
written, listings made by the import system itself, and reads by programs that are not Python.
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
from pathlib import Path

IGNORED = (".git", ".venv", ".studylog", "results", "site", "site_src", "notebooks")
INSTALL_METADATA = (".egg-info", ".dist-info")
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT
ROOT_ENV, OUT_ENV = "STUDYLOG_TRACK_ROOT", "STUDYLOG_TRACK_OUT"
BOOT = Path(__file__).parent / "boot"  # holds the sitecustomize.py child processes import


def child_environment(root: Path, out: Path) -> dict[str, str]:
    """Variables under which a Python process started with them tracks itself into `out`."""
    path = os.pathsep.join(p for p in (str(BOOT), os.environ.get("PYTHONPATH", "")) if p)
    return {ROOT_ENV: str(root), OUT_ENV: str(out), "PYTHONPATH": path}


def watch_from_environment() -> None:
    """Called by boot/sitecustomize.py in every new Python process."""
    root, out = os.environ.get(ROOT_ENV), os.environ.get(OUT_ENV)
    if root and out:
        watch(root, out)


def watch(root: str, out: str) -> None:
    """Append to `out` each input under `root` that this process reads (see the module)."""
    root = os.path.abspath(root)
    prefix = root + os.sep
    seen: set[tuple[str, str]] = set()
    local = threading.local()  # the hook's own reads and writes must not be seen: per thread

    def note(kind: str, relative: str, digest: str) -> None:
        with open(out, "a", encoding="utf-8") as handle:
            handle.write(f"{kind}\t{relative}\t{digest}\n")

    def opened(path: object, mode: object, flags: object) -> None:
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        if not isinstance(path, str) or _writes(mode, flags):
            return
        full = os.path.abspath(path)
        if not full.startswith(prefix) or not os.path.isfile(full):
            return
        relative = full[len(prefix):]
        kind, relative = _classify(root, relative)
        if kind is None or (kind, relative) in seen:
            return
        seen.add((kind, relative))
        note(kind, relative, _file_digest(os.path.join(root, relative)))

    def listed(path: object) -> None:
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        if path is None or path == "":
            path = "."
        if not isinstance(path, str) or _from_import_system():
            return
        full = os.path.abspath(path)
        if not full.startswith(prefix) or not os.path.isdir(full):
            return  # the project root itself is not an input: every tool lists it
        relative = full[len(prefix):]
        if _not_an_input(relative.split(os.sep)) or ("listing", relative) in seen:
            return
        seen.add(("listing", relative))
        note("listing", relative, listing_digest(full))

    def hook(event: str, args: tuple) -> None:
        if event not in ("open", "os.listdir", "os.scandir") or getattr(local, "busy", False):
            return
        local.busy = True
        try:
            if event == "open":
                opened(*args[:3])
            else:
                listed(args[0])
        except OSError:
            pass  # a file that vanished while being recorded: the run itself will say so
        finally:
            local.busy = False

    sys.addaudithook(hook)


def _classify(root: str, relative: str) -> tuple[str | None, str]:
    """What a file opened for reading is: a project module (its .py), data, or neither."""
    parts = relative.split(os.sep)
    if parts[0] in IGNORED or any(part.endswith(INSTALL_METADATA) for part in parts[:-1]):
        return None, relative
    if relative.endswith(".py"):
        return "module", relative
    if len(parts) >= 2 and parts[-2] == "__pycache__" and relative.endswith(".pyc"):
        source = os.path.join(*parts[:-2], parts[-1].split(".", 1)[0] + ".py")
        return ("module", source) if os.path.isfile(os.path.join(root, source)) else (None, relative)
    if "__pycache__" in parts:
        return None, relative
    return "data", relative


def _not_an_input(parts: list[str]) -> bool:
    """Whether a folder's listing is the project's output or installation state, not an input."""
    return parts[0] in IGNORED or any(part == "__pycache__" or part.endswith(INSTALL_METADATA) for part in parts)


def _from_import_system() -> bool:
    """Whether the listing is the import system filling its directory cache."""
    frame = sys._getframe(3)
    while frame is not None:
        if frame.f_globals.get("__name__", "").startswith(("importlib", "_frozen_importlib")):
            return True
        frame = frame.f_back
    return False


def _file_digest(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def listing_digest(folder: str | Path) -> str:
    """The digest of a folder's entry names: it changes when a file is added, removed or renamed."""
    return hashlib.sha256("\n".join(sorted(os.listdir(folder))).encode("utf-8", "surrogateescape")).hexdigest()


def _writes(mode: object, flags: object) -> bool:
    if isinstance(mode, str):
        return any(c in mode for c in "wax+")
    return isinstance(flags, int) and bool(flags & WRITE_FLAGS)


def read_record(path: Path) -> dict[str, dict[str, str]]:
    """The inputs a run's processes recorded: {kind: {path: digest}}. Where two processes
    read different contents of one file (it was edited during the run), the digest is ""
    so that the input never matches and the lab reads as stale."""
    found: dict[str, dict[str, str]] = {"data": {}, "module": {}, "listing": {}}
    if not path.exists():
        return found
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        fields = line.split("\t")
        if len(fields) != 3 or fields[0] not in found:
            continue  # a line cut short by a killed process
        kind, name, digest = fields
        name = Path(name).as_posix()
        known = found[kind].setdefault(name, digest)
        if known != digest:
            found[kind][name] = ""
    return found
