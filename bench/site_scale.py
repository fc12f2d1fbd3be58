"""Site build at scale: studylog (both engines) against a plain mkdocs-material blog.

For each N (default 100, 1000, 3650 = ten years of daily entries) this generates N
synthetic logs (400-600 words, two tags each, math in every fifth, a code block in every
third), then, in one run and on the same posts, times:

- `studylog build` with MkDocs (the default engine) and with Zensical;
- a plain mkdocs-material blog: blog, tags and search plugins with default settings;

with the peak memory of each build, and studylog's own share (parsing, validation, page
generation) of its build. The studylog project also holds `--labs` labs (default 20), each
with a plot and a metric, run once (full profile) before the timed builds, so the builds
publish lab pages from stored results, as a fresh clone does.
Usage: python bench/site_scale.py [N ...] [--labs K] [--markdown FILE]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from studylog.project import Project
from studylog.site.build import generate

WORDS = (
    "actor policy evaluator optimizer gradient sample batch worker driver ring reduce scatter gather "
    "broadcast parameter server shard staleness version latency bandwidth throughput rollout episode "
    "return advantage value critic entropy clip ratio learner replay buffer weights object store "
    "future task schedule node cluster core memory copy serialize transfer apply step update the a of "
    "and to in is that with for on as by it this from at"
).split()
TAGS = [f"topic-{i:02d}" for i in range(30)]
START = dt.date(2016, 1, 1)


@dataclass(frozen=True)
class Post:
    date: dt.date
    slug: str
    title: str
    tags: tuple[str, str]
    body: str  # Markdown, with an excerpt separator after the first paragraph


def make_posts(n: int, seed: int = 0) -> list[Post]:
    rng = random.Random(seed)
    posts = []
    for i in range(n):
        date = START + dt.timedelta(days=i)
        title = " ".join(rng.choice(WORDS) for _ in range(5)).capitalize()
        paragraphs = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(60, 110))) + "." for _ in range(5)]
        blocks = [paragraphs[0], "<!-- more -->", "## Notes", *paragraphs[1:3]]
        if i % 5 == 0:
            blocks.append("$$\nT_{\\text{ring}} = 2(n-1)\\alpha + 2\\frac{n-1}{n} N \\beta\n$$")
        if i % 3 == 0:
            blocks.append("```python\nfor step in range(steps):\n    batch = worker.sample()\n```")
        blocks += ["## Remarks", *paragraphs[3:]]
        tags = tuple(rng.sample(TAGS, 2))
        posts.append(Post(date, f"entry-{i:05d}", title, tags, "\n\n".join(blocks) + "\n"))
    return posts


def write_studylog_project(root: Path, posts: list[Post]) -> None:
    (root / "logs").mkdir(parents=True)
    (root / "site_src").mkdir()
    (root / "site_src" / "index.md").write_text("# Log\n", encoding="utf-8")
    (root / "mkdocs.yml").write_text("site_name: Bench\n", encoding="utf-8")
    for post in posts:
        front = f"title: {post.title}\ndate: {post.date}\ntags: [{', '.join(post.tags)}]\nmath: true\n"
        (root / "logs" / f"{post.date}-{post.slug}.md").write_text(f"---\n{front}---\n\n{post.body}", encoding="utf-8")


LAB = """# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
#   studylog:
#     title: Bench lab {i}
#     summary: A curve and a number, so that the page has a plot and a metric.
#     profiles:
#       quick:
#         n: 10
#       full:
#         n: 100
# ---

# %% [markdown]
# # Bench lab {i}

# %% tags=["parameters"]
n = 10  # points

# %%
import matplotlib.pyplot as plt
from studylog import record

xs = list(range(n))
plt.plot(xs, [x * x % 17 for x in xs])
plt.show()
record("total", sum(xs) + {i}, "units")
"""


def write_labs(root: Path, count: int) -> None:
    """`count` labs, run once in their full profile (results stored, as committed ones are)."""
    if not count:
        return
    (root / "labs").mkdir()
    for i in range(count):
        (root / "labs" / f"bench_lab_{i:02d}.py").write_text(LAB.replace("{i}", str(i)), encoding="utf-8")
    run = subprocess.run([sys.executable, "-m", "studylog", "run", "--profile", "full", "-j", "2"], cwd=root,
                         capture_output=True, text=True)
    if run.returncode != 0:
        raise SystemExit(f"lab runs failed:\n{run.stdout[-2000:]}{run.stderr[-2000:]}")


def write_plain_blog(root: Path, posts: list[Post]) -> None:
    """mkdocs-material's blog as its documentation sets it up, default settings."""
    posts_dir = root / "docs" / "blog" / "posts"
    posts_dir.mkdir(parents=True)
    (root / "docs" / "blog" / "index.md").write_text("# Blog\n", encoding="utf-8")
    (root / "docs" / "tags.md").write_text("# Tags\n\n<!-- material/tags -->\n", encoding="utf-8")
    (root / "mkdocs.yml").write_text(
        "site_name: Bench\ntheme:\n  name: material\nplugins:\n  - search\n  - blog\n  - tags\n", encoding="utf-8"
    )
    for post in posts:
        front = f"date: {post.date}\ntags: [{', '.join(post.tags)}]\n"
        text = f"---\n{front}---\n\n# {post.title}\n\n{post.body}"
        (posts_dir / f"{post.date}-{post.slug}.md").write_text(text, encoding="utf-8")


def timed(command: list[str], cwd: Path) -> tuple[float, float]:
    """Wall seconds and peak resident memory (MiB) of one command and the children it waits for."""
    start = time.perf_counter()
    proc = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{proc.stderr.read().decode()[-2000:]}")
    return seconds, usage.ru_maxrss / 1024


def own_work_seconds(posts: list[Post], work: Path, repeats: int = 3) -> float:
    """studylog's own part of a build: parse, validate, write every page (median of repeats),
    each time on a fresh copy of the project, as a first build would."""
    times = []
    for i in range(repeats):
        root = work / f"own-{i}"
        write_studylog_project(root, posts)
        start = time.perf_counter()
        generate(Project.at(root))
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def run(sizes: list[int], labs: int) -> list[dict[str, float]]:
    rows = []
    studylog = [sys.executable, "-m", "studylog", "build"]
    for n in sizes:
        posts = make_posts(n)
        with tempfile.TemporaryDirectory(prefix=f"site-scale-{n}-") as tmp:
            ours, plain = Path(tmp) / "studylog", Path(tmp) / "plain"
            write_studylog_project(ours, posts)
            write_labs(ours, labs)
            write_plain_blog(plain, posts)
            row: dict[str, float] = {"n": n, "labs": labs}
            row["plain_s"], row["plain_mib"] = timed([sys.executable, "-m", "mkdocs", "build", "-q"], plain)
            row["mkdocs_s"], row["mkdocs_mib"] = timed(studylog, ours)
            row["zensical_s"], row["zensical_mib"] = timed(studylog + ["--engine", "zensical"], ours)
            row["own_s"] = own_work_seconds(posts, Path(tmp))
            rows.append(row)
            print(row, flush=True)
    return rows


def table(rows: list[dict[str, float]]) -> Table:
    out = Table(title="Site build: studylog vs a plain mkdocs-material blog (same posts, same run)")
    for column in ("logs", "labs", "plain mkdocs-material", "studylog (mkdocs)", "ratio", "studylog own work",
                   "studylog (zensical)", "peak MiB plain / studylog / zensical"):
        out.add_column(column, justify="right")
    for r in rows:
        out.add_row(
            f"{r['n']:.0f}",
            f"{r['labs']:.0f}",
            f"{r['plain_s']:.1f} s",
            f"{r['mkdocs_s']:.1f} s",
            f"{r['mkdocs_s'] / r['plain_s']:.2f}x",
            f"{r['own_s']:.2f} s ({100 * r['own_s'] / r['mkdocs_s']:.0f}%)",
            f"{r['zensical_s']:.1f} s",
            f"{r['plain_mib']:.0f} / {r['mkdocs_mib']:.0f} / {r['zensical_mib']:.0f}",
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[100, 1000, 3650])
    parser.add_argument("--labs", type=int, default=20, help="labs with stored results in the studylog project")
    parser.add_argument("--markdown", type=Path, help="also write the table as Markdown to this file")
    args = parser.parse_args()
    rows = run(args.sizes, args.labs)
    console = Console(record=True, width=140)
    console.print(table(rows))
    if args.markdown:
        args.markdown.write_text(console.export_text(), encoding="utf-8")


if __name__ == "__main__":
    main()
