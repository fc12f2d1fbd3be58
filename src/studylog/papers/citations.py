"""Pandoc's citation syntax, the one Quarto and mkdocs-bibtex users write, found in Markdown.

    [@liang2018]                 (Liang et al., 2018)
    [see @a, p. 3; also @b]      (see Liang et al., 2018, p. 3; also Moritz et al., 2018)
    [-@liang2018]                (2018): the author is named in the sentence already
    @liang2018 says              Liang et al. (2018) says
    @liang2018 [p. 3] says       Liang et al. (2018, p. 3) says

A key starts with a letter, digit or `_` and goes on with those and single inner punctuation
(`:.#$%&-+?<>~/`), or is written in braces, `@{any key}`. An `@` after a letter or digit (an
e-mail address) starts no citation, nor does one in code. A bracket followed by `(`, `[` or
`:` is a link, not a citation. Written by hand: Pandoc's reader is Haskell, and the Python
ports of it parse whole documents; studylog needs the citations alone, at their offsets.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from studylog.markup import mask_code

KEY = r"(?:\{(?P<braced>[^{}\s]+)\}|(?P<plain>\w(?:\w|[:.#$%&\-+?<>~/](?=\w))*))"
AT_KEY = re.compile(r"(?<![\w\\])(?P<minus>-)?@" + KEY)
# A bracketed group: no nested brackets, no blank line, no code inside.
BRACKETED = re.compile(r"(?<![\\!])\[(?P<body>[^\[\]\x00]*?@[^\[\]\x00]*?)\](?![(\[:])")
LINK_TEXT = re.compile(r"(?<![\\])\[[^\[\]]*\](?=[(\[])")
PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")
IN_TEXT = re.compile(r"(?<![\w\\@])@" + KEY + r"(?:[ \t]*\[(?P<locator>[^\[\]@\x00\n]*)\](?![(\[:]))?")


@dataclass(frozen=True)
class Cite:
    """One cited work: `[see @key, p. 3]` is prefix "see", key "key", suffix ", p. 3"."""

    key: str
    prefix: str = ""
    suffix: str = ""
    suppress_author: bool = False


@dataclass(frozen=True)
class Citation:
    """A citation found at text[start:end], on `line` (1-based, within the text)."""

    start: int
    end: int
    line: int
    cites: tuple[Cite, ...]
    in_text: bool


def find_citations(text: str) -> list[Citation]:
    """Every citation in the Markdown `text`, in order."""
    masked = mask_code(text)
    found: list[Citation] = []
    taken = [(link.start(), link.end()) for link in LINK_TEXT.finditer(masked)]  # a link's text is the author's
    for match in BRACKETED.finditer(masked):
        if PARAGRAPH_BREAK.search(match.group("body")):
            continue  # brackets of two paragraphs, not one citation
        cites = _bracketed(text[match.start("body"):match.end("body")])
        if cites:
            found.append(Citation(match.start(), match.end(), _line(text, match.start()), cites, in_text=False))
            taken.append((match.start(), match.end()))
    for match in IN_TEXT.finditer(masked):
        if any(start <= match.start() < end for start, end in taken):
            continue
        key = match.group("braced") or match.group("plain")
        suffix = (match.group("locator") or "").strip()
        found.append(Citation(match.start(), match.end(), _line(text, match.start()),
                              (Cite(key, suffix=suffix),), in_text=True))
    return sorted(found, key=lambda c: c.start)


def _bracketed(body: str) -> tuple[Cite, ...]:
    """The cites of a bracket's text, or () when one of its `;`-parts names no key (then
    the bracket is prose, as Pandoc reads it)."""
    cites = []
    for part in body.split(";"):
        match = AT_KEY.search(part)
        if not match:
            return ()
        cites.append(Cite(match.group("braced") or match.group("plain"), prefix=" ".join(part[:match.start()].split()),
                          suffix=" ".join(part[match.end():].split()), suppress_author=bool(match.group("minus"))))
    return tuple(cites)


def _line(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def cited_keys(text: str) -> list[str]:
    """The keys `text` cites, each once, in order of first citation."""
    return list(dict.fromkeys(cite.key for citation in find_citations(text) for cite in citation.cites))

