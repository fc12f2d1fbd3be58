"""Edit-to-served latency of `studylog serve` at scale.

Generates N synthetic logs (the posts of site_scale.py), starts `studylog serve`, waits for
the first page, then edits one log a few times (a unique word appended each time) and
measures, for each edit, the time from the save to the edited page being served with the
word in it (polling the page every 50 ms). Edits start once the first build has finished. Usage: python bench/serve_latency.py [N] [--edits K]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from site_scale import make_posts, write_studylog_project  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fetch(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.read().decode("utf-8", "replace")
    except OSError:
        return None


def wait_for(url: str, word: str, timeout: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        page = fetch(url)
        if page and word in page:
            return time.monotonic() - start
        time.sleep(0.05)
    raise TimeoutError(f"{word!r} not served at {url} within {timeout:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int, nargs="?", default=3650)
    parser.add_argument("--edits", type=int, default=5)
    args = parser.parse_args()
    posts = make_posts(args.n)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "proj"
        write_studylog_project(root, posts)
        port = free_port()
        studylog = Path(sys.executable).parent / "studylog"
        server = subprocess.Popen([str(studylog), "--root", str(root), "serve", "--port", str(port)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            post = posts[len(posts) // 2]
            url = f"http://127.0.0.1:{port}/{post.date:%Y/%m/%d}/{post.slug}/"
            first = wait_for(url, post.title.split()[0], 900)
            # Pages are served as the first build writes them; its last step (the search index,
            # written after every page) marks the server idle, and edits are timed from there.
            idle = first + wait_for(f"http://127.0.0.1:{port}/search/search_index.json", "docs", 900)
            print(f"{args.n} logs: first page served after {first:.1f} s, first build done after {idle:.1f} s")
            source = root / "logs" / f"{post.date}-{post.slug}.md"
            latencies = []
            for k in range(args.edits):
                word = f"edited{k}marker"
                time.sleep(1.0)
                with open(source, "a", encoding="utf-8") as f:
                    f.write(f"\n{word}\n")
                latencies.append(wait_for(url, word, 600))
                print(f"edit {k + 1}: served after {latencies[-1]:.2f} s")
            print(f"median edit-to-served: {statistics.median(latencies):.2f} s over {len(latencies)} edits")
        finally:
            os.killpg(server.pid, signal.SIGINT)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)


if __name__ == "__main__":
    main()
