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


@pytest.fixture(params=["mkdocs", "zensical"])
def served(request, maker):
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
