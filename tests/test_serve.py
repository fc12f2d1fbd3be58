"""`studylog serve`: binds 127.0.0.1, and an edited log reaches the served page."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from test_build import fixture_project


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fetch(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.read().decode("utf-8")
    except OSError:
        return None


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture(scope="module", params=["mkdocs", "zensical"])
def served(request, tmp_path_factory):
    """One server per engine for the module's tests: starting one takes seconds."""
    from conftest import ProjectMaker

    maker = ProjectMaker(tmp_path_factory.mktemp(f"serve-{request.param}") / "proj")
    fixture_project(maker)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "studylog", "--root", str(maker.root), "serve", "--engine", request.param, "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_for(lambda: fetch(url), 60, f"{request.param} to serve {url}")
        yield maker, url, port
    finally:
        os.killpg(server.pid, signal.SIGINT)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def test_edited_log_reaches_the_page(served):
    maker, url, _ = served
    page_url = url + "2026/03/01/reading-rllib/"
    assert "The policy evaluator samples." in wait_for(lambda: fetch(page_url), 30, "the post page")
    path = maker.root / "logs" / "2026-03-01-reading-rllib.md"
    path.write_text(path.read_text(encoding="utf-8").replace("samples.", "samples, edited live."), encoding="utf-8")
    wait_for(lambda: "edited live" in (fetch(page_url) or ""), 30, "the edit to be served")


def test_live_reload_is_on(served):
    _, url, _ = served
    page = fetch(url)
    assert "livereload" in page.lower() or "websocket" in page.lower() or "/.well-known/" in page


def listening_addresses(port: int) -> set[str]:
    """Local addresses of sockets listening on `port`, read from the kernel's tables."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table, encoding="ascii") as handle:
            for row in list(handle)[1:]:
                local, state = row.split()[1], row.split()[3]
                address, hex_port = local.split(":")
                if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                    found.add(address)
    return found


def test_binds_loopback_only(served):
    _, _, port = served
    assert listening_addresses(port) == {"0100007F"}  # 127.0.0.1, little-endian hex


def site_files(root) -> dict[str, bytes]:
    src = root / "site_src"
    return {str(p.relative_to(src)): p.read_bytes() for p in sorted(src.rglob("*")) if p.is_file()}


def test_regenerating_with_a_memo_redoes_only_what_changed(maker):
    from studylog.errors import ProblemsFound
    from studylog.memo import Memo
    from studylog.site.build import generate

    fixture_project(maker)
    memo = Memo()
    generate(maker.project, memo=memo)
    log = maker.root / "logs" / "2026-03-01-reading-rllib.md"
    log.write_text(log.read_text(encoding="utf-8") + "\nA new paragraph.\n", encoding="utf-8")
    done = generate(maker.project, memo=memo)
    assert done.changed == ("posts/2026-03-01-reading-rllib.md",)
    with_memo = site_files(maker.root)
    generate(maker.project)  # from the files alone: the same pages
    assert site_files(maker.root) == with_memo and b"A new paragraph." in with_memo["posts/2026-03-01-reading-rllib.md"]
    # A generated page changed behind studylog's back is noticed and written again.
    page = maker.root / "site_src" / "posts" / "2026-03-02-ring-math.md"
    page.write_text("tampered", encoding="utf-8")
    assert generate(maker.project, memo=memo).changed == ("posts/2026-03-02-ring-math.md",)
    # A log made invalid is reported, not remembered as good; fixed again, it is read again.
    original = log.read_text(encoding="utf-8")
    log.write_text(original.replace("title: Reading RLlib\n", "title: [not, text]\n"), encoding="utf-8")
    with pytest.raises(ProblemsFound):
        generate(maker.project, memo=memo)
    log.write_text(original.replace("A new paragraph.", "Another paragraph."), encoding="utf-8")
    assert generate(maker.project, memo=memo).changed == ("posts/2026-03-01-reading-rllib.md",)


def test_mkdocs_serve_rebuilds_once_per_edit(maker):
    # MkDocs watches docs_dir through inotify here (engine_hooks/mkdocs_serve_watch.py), which
    # also reports files being read; a build reads every page, so without the hook's filter
    # each build would trigger the next.
    fixture_project(maker)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "studylog", "--root", str(maker.root), "serve", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    page_url = f"http://127.0.0.1:{port}/2026/03/01/reading-rllib/"
    try:
        wait_for(lambda: fetch(page_url), 60, "the post page")
        path = maker.root / "logs" / "2026-03-01-reading-rllib.md"
        for word in ("firstedit", "secondedit"):
            path.write_text(path.read_text(encoding="utf-8") + f"\n{word}\n", encoding="utf-8")
            wait_for(lambda: word in (fetch(page_url) or ""), 30, f"{word} to be served")
        time.sleep(3)  # long enough for a loop of rebuilds to show
    finally:
        os.killpg(server.pid, signal.SIGINT)
        try:
            output = server.communicate(timeout=30)[0]
        except subprocess.TimeoutExpired:  # seen once under the whole suite's load; the count still stands
            os.killpg(server.pid, signal.SIGKILL)
            output = server.communicate()[0]
    assert output.count("Building documentation") == 3, output[-3000:]  # the first build and one per edit


@pytest.mark.parametrize("to", ["process group", "studylog alone", "SIGTERM", "background job"])
def test_ctrl_c_stops_the_engine_cleanly(maker, tmp_path, to):
    # Ctrl-C in a terminal reaches studylog and the engine (one process group); `kill -INT`
    # reaches studylog alone, which must pass it on, and so does `kill` (SIGTERM). A script's
    # background job (`studylog serve &`) starts with SIGINT ignored, and must stop all the
    # same. Each way MkDocs exits through its own shutdown, which deletes the temporary
    # folder it builds into.
    fixture_project(maker)
    temp = tmp_path / "temp"
    temp.mkdir()
    port = free_port()
    ignore_sigint = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if to == "background job" else None
    server = subprocess.Popen(
        [sys.executable, "-m", "studylog", "--root", str(maker.root), "serve", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        env={**os.environ, "TMPDIR": str(temp)}, preexec_fn=ignore_sigint,
    )
    try:
        wait_for(lambda: fetch(f"http://127.0.0.1:{port}/"), 60, "the site to be served")
        assert [p.name for p in temp.iterdir() if p.name.startswith("mkdocs_")], "MkDocs builds in a temporary folder"
        if to in ("process group", "background job"):
            os.killpg(server.pid, signal.SIGINT)
        else:
            os.kill(server.pid, signal.SIGTERM if to == "SIGTERM" else signal.SIGINT)
        output = server.communicate(timeout=60)[0]
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.communicate()
    assert server.returncode == 0, output[-3000:]
    assert not [p.name for p in temp.iterdir() if p.name.startswith("mkdocs_")], output[-3000:]
    with pytest.raises(ProcessLookupError):  # nothing of the group is left running
        os.killpg(server.pid, 0)


def test_an_engine_that_cannot_start_is_an_error(maker):
    fixture_project(maker)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = subprocess.run(
            [sys.executable, "-m", "studylog", "--root", str(maker.root), "serve", "--port", str(port)],
            capture_output=True, text=True, timeout=120,
        )
    assert run.returncode == 1, run.stdout[-2000:] + run.stderr[-2000:]
    assert "mkdocs serve exited with status" in run.stderr + run.stdout


@pytest.mark.parametrize("served", ["mkdocs"], indirect=True)
def test_serve_follows_new_results_and_settings_and_keeps_build_out(served):
    maker, url, _ = served
    studylog = [sys.executable, "-m", "studylog", "--root", str(maker.root)]
    build = subprocess.run([*studylog, "build"], capture_output=True, text=True)
    assert build.returncode == 1 and "studylog serve (pid" in build.stderr  # it would rewrite the served pages
    lab_url = url + "labs/ring/"
    assert "not run yet" in wait_for(lambda: fetch(lab_url), 30, "the lab page")
    ran = subprocess.run([*studylog, "run", "ring", "--profile", "full"], capture_output=True, text=True)
    assert ran.returncode == 0, ran.stdout + ran.stderr  # runs may go on while serving
    wait_for(lambda: "ok · profile full" in (fetch(lab_url) or ""), 30, "the new results to be served")
    settings = maker.root / "mkdocs.yml"
    settings.write_text(settings.read_text(encoding="utf-8").replace("site_name:", "site_name: Renamed live #"),
                        encoding="utf-8")
    wait_for(lambda: "Renamed live" in (fetch(url) or ""), 30, "the new site name to be served")
