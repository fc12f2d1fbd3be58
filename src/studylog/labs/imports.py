"""What a lab's result depends on: the project modules it imports, found from the source.

Imports are read with `ast` (nothing is executed) and followed transitively through the
project's source roots; a module outside them (the standard library, installed packages)
ends the walk, since its version is recorded with the run's environment instead.
"""

from __future__ import annotations

import ast
import hashlib
import threading
from pathlib import Path

# `run -j N` keys labs in threads, and CPython 3.11's ast.parse is not thread-safe: two at
# once can fail with "SystemError: AST constructor recursion depth mismatch" (seen here, 3.11.7).
PARSING = threading.Lock()


def imported_files(source: Path, roots: list[Path]) -> set[Path]:
    """Every project file that importing `source` executes, `source` excluded."""
    seen: set[Path] = set()
    todo = [(source, _package_of(source, roots))]
    while todo:
        path, package = todo.pop()
        for name in _imported_names(path, package):
            for found in _module_files(name, roots):
                if found not in seen and found != source:
                    seen.add(found)
                    todo.append((found, _package_of(found, roots)))
    return seen


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _imported_names(path: Path, package: str) -> list[str]:
    source = path.read_bytes()
    try:
        with PARSING:
            tree = ast.parse(source, filename=str(path))
    except (SyntaxError, ValueError):
        return []  # the run itself reports a broken module
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node.module, node.level, package)
            if base:
                names.append(base)
                names += [f"{base}.{alias.name}" for alias in node.names if alias.name != "*"]
    return names


def _absolute(module: str | None, level: int, package: str) -> str | None:
    if level == 0:
        return module
    parts = package.split(".") if package else []
    if level - 1 > len(parts):
        return None
    base = parts[: len(parts) - (level - 1)]
    return ".".join(base + ([module] if module else [])) or None


def _module_files(name: str, roots: list[Path]) -> list[Path]:
    """The files that importing `name` runs: each package's __init__.py, then the module."""
    parts = name.split(".")
    for root in roots:
        files = []
        for depth in range(1, len(parts) + 1):
            stem = root.joinpath(*parts[:depth])
            if (stem / "__init__.py").is_file():
                files.append(stem / "__init__.py")
            elif stem.with_suffix(".py").is_file():
                files.append(stem.with_suffix(".py"))
                break
            else:
                break
        if files:
            return files
    return []


def _package_of(path: Path, roots: list[Path]) -> str:
    for root in roots:
        if path.is_relative_to(root):
            parts = list(path.relative_to(root).with_suffix("").parts)
            return ".".join(parts[:-1])  # a module's package; for __init__.py, its own
    return ""
