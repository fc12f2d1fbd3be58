"""Overhead of studylog's lab machinery, measured side by side in one run.

1. `studylog run` with 10 labs, every stored run fresh (nothing executes);
2. `studylog build --no-execute` with 10 labs and 100 logs;
3. one lab with one trivial cell, end to end: `studylog run --force` against
   `jupyter nbconvert --execute` of the same notebook.

Each is the median of REPEATS runs, with the spread (min-max). Usage:
python bench/run_overhead.py [--repeats N]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jupytext
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from site_scale import make_posts, write_studylog_project  # noqa: E402

LAB = """# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
#   studylog:
#     title: Trivial lab {i}
#     summary: One cell.
#     profiles:
#       quick:
#         n: 1
#       full:
#         n: 2
# ---

# %% tags=["parameters"]
n = 1

# %%
n + 1
"""


def timed(command: list[str], cwd: Path, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    studylog = [sys.executable, "-m", "studylog"]
    rows = []
    with tempfile.TemporaryDirectory(prefix="run-overhead-") as tmp:
        root = Path(tmp) / "p"
        write_studylog_project(root, make_posts(100))
        (root / "labs").mkdir()
        for i in range(10):
            (root / "labs" / f"lab{i:02d}.py").write_text(LAB.format(i=i), encoding="utf-8")
        subprocess.run(studylog + ["run", "-j", "2"], cwd=root, check=True, capture_output=True)
        subprocess.run(studylog + ["run", "--profile", "full", "-j", "2"], cwd=root, check=True, capture_output=True)
        rows.append(("studylog run, 10 labs all fresh", timed(studylog + ["run"], root, args.repeats), None))
        rows.append(("studylog build --no-execute, 10 labs, 100 logs", timed(studylog + ["build", "--no-execute"], root, args.repeats), None))

        single = Path(tmp) / "single"
        (single / "logs").mkdir(parents=True)
        (single / "labs").mkdir()
        (single / "labs" / "one.py").write_text(LAB.format(i=1), encoding="utf-8")
        notebook = single / "one.ipynb"
        jupytext.write(jupytext.read(single / "labs" / "one.py"), notebook)
        nbconvert = [sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute", "--output", "out.ipynb", str(notebook)]
        ours, theirs = [], []
        for _ in range(args.repeats):  # interleaved, so drift affects both alike
            ours += timed(studylog + ["run", "one", "--force"], single, 1)
            theirs += timed(nbconvert, single, 1)
        rows.append(("one trivial lab: studylog run --force", ours, theirs))
        rows.append(("one trivial lab: jupyter nbconvert --execute", theirs, None))
        shutil.rmtree(single / ".studylog", ignore_errors=True)

    table = Table(title=f"studylog run overhead (median of {args.repeats}, min-max)")
    for column in ("what", "median", "spread", "ratio to nbconvert"):
        table.add_column(column)
    for name, times, baseline in rows:
        ratio = f"{statistics.median(times) / statistics.median(baseline):.2f}x" if baseline else ""
        table.add_row(name, f"{statistics.median(times):.2f} s", f"{min(times):.2f}-{max(times):.2f} s", ratio)
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
