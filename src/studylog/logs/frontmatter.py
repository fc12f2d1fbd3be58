"""Reading a Markdown file with YAML front matter, keeping the line of every key.

Jekyll's convention: the file starts with a `---` line, the YAML ends at the next `---`
(or `...`) line, the Markdown body follows. YAML is read with the safe loader only; the
node tree is kept so that a problem with a key can be reported at that key's line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

# libyaml's safe loader when PyYAML was built with it: same safe rules, several times faster.
SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
FENCE = "---"
FENCE_ENDS = ("---", "...")


class FrontMatterError(Exception):
    """The file cannot be read as front matter + Markdown; `line` is 1-based."""

    def __init__(self, line: int, message: str):
        super().__init__(message)
        self.line = line
        self.message = message


@dataclass(frozen=True)
class Document:
    """A Markdown document split into its front matter and body."""

    data: dict[str, Any]
    key_lines: dict[str, int]  # key -> 1-based line in the file
    body: str
    body_line: int = 1  # the file's line the body starts on

    def line_of(self, key: str) -> int:
        """Where `key` is written, or the opening fence (line 1) when it is absent."""
        return self.key_lines.get(key, 1)


def read_utf8(path: Path) -> str:
    """The file's text; a file that is not UTF-8 fails at the line of the first bad byte."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise FrontMatterError(line, f"not UTF-8 (byte 0x{raw[err.start]:02x} at offset {err.start})") from None
    return text.removeprefix("\ufeff")


def parse(text: str) -> Document:
    """Split `text` into front matter and body; raise FrontMatterError with a line."""
    if not text.strip():
        raise FrontMatterError(1, "empty file")
    lines = text.splitlines(keepends=True)
    if lines[0].rstrip() != FENCE:
        raise FrontMatterError(1, "no front matter: a log entry starts with a '---' line")
    end = next((i for i in range(1, len(lines)) if lines[i].rstrip() in FENCE_ENDS), None)
    if end is None:
        raise FrontMatterError(1, "front matter is not closed: no second '---' line")
    data, key_lines = _load_yaml("".join(lines[1:end]), first_line=2)
    return Document(data, key_lines, "".join(lines[end + 1 :]), end + 2)


def _load_yaml(source: str, first_line: int) -> tuple[dict[str, Any], dict[str, int]]:
    loader = SafeLoader(source)
    try:
        node = loader.get_single_node()
        if node is None:
            return {}, {}
        if not isinstance(node, yaml.MappingNode):
            raise FrontMatterError(first_line + node.start_mark.line, "front matter must be a mapping of keys to values")
        key_lines = _key_lines(node, first_line)
        try:
            data = loader.construct_document(node)
        except (ValueError, OverflowError) as err:  # a timestamp like 2026-02-30
            raise FrontMatterError(_failing_line(node, first_line), f"invalid value: {err}") from None
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = first_line + (mark.line if mark else 0)
        raise FrontMatterError(line, f"YAML syntax error: {err.problem or err.context}") from None
    except (yaml.YAMLError, RecursionError) as err:
        raise FrontMatterError(first_line, f"YAML error: {err}") from None
    finally:
        loader.dispose()
    return data, key_lines


def _failing_line(node: yaml.MappingNode, first_line: int) -> int:
    """The line of the first value that cannot be constructed on its own."""
    for key_node, value_node in node.value:
        try:
            SafeLoader("").construct_object(value_node, deep=True)
        except (ValueError, OverflowError, yaml.YAMLError):
            return first_line + key_node.start_mark.line
    return first_line


def _key_lines(node: yaml.MappingNode, first_line: int) -> dict[str, int]:
    lines: dict[str, int] = {}
    for key_node, _ in node.value:
        line = first_line + key_node.start_mark.line
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != "tag:yaml.org,2002:str":
            raise FrontMatterError(line, f"front matter key {key_node.value!r} is not a plain string")
        if key_node.value in lines:
            raise FrontMatterError(line, f"duplicate key {key_node.value!r} (first at line {lines[key_node.value]})")
        lines[key_node.value] = line
    return lines
