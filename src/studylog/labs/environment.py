"""The environment a lab ran in: recorded with every run and shown beside its numbers.

Not part of the cache key: a result measured on one machine stays valid as a record of that
machine; the page says which one.
"""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

KEY_PACKAGES = ("numpy", "torch", "ray", "gymnasium", "matplotlib", "jupytext", "nbclient", "studylog")


def describe(root: Path) -> dict[str, object]:
    """Interpreter, key package versions, git commit and a machine summary."""
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "packages": _versions(),
        "commit": _git_commit(root),
        "machine": machine(),
    }


def versions() -> dict[str, str]:
    """The interpreter's and the key packages' versions: what `status` compares."""
    return {"python": platform.python_version(), **_versions()}


def machine() -> dict[str, object]:
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "gpu": _gpu(),
        "os": f"{platform.system()} {platform.release()}",
    }


def _versions() -> dict[str, str]:
    found = {}
    for name in KEY_PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found


def _git_commit(root: Path) -> str | None:
    try:
        run = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if run.returncode != 0:
        return None
    return run.stdout.strip()[:12] + ("+dirty" if dirty.stdout.strip() else "")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None
    return round(pages * size / 2**30, 1)


def _gpu() -> str | None:
    try:
        run = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if run.returncode != 0:
        return None
    return run.stdout.strip().replace("\n", ", ") or None
