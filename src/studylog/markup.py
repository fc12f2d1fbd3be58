"""Where a Markdown text's code is: fenced blocks, indented blocks after a blank line, and
inline code spans. Pages rewrite prose (escape a dollar, render a citation) but never code,
where an escape or a link would show as written.

Written by hand: Python-Markdown finds code while it renders, and studylog needs the places
before, in the Markdown source; the rules are CommonMark's, reduced to what entries use.
"""

from __future__ import annotations

import re

FENCE_OPEN = re.compile(r"^\s*(`{3,}|~{3,})")
INDENTED_CODE = re.compile(r"^( {4}|\t)")
# A code span stays within its paragraph: it may not cross a blank line.
CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`)(?:(?!\n[ \t]*\n).)*?(?<!`)\1(?!`)", re.DOTALL)
CODE = "\x00"  # what mask_code puts in place of each character of code


def mask_code(text: str) -> str:
    """`text` with every character of code replaced by CODE (line breaks kept), so that a
    pattern run over the result finds prose only, at the same offsets as in `text`."""
    out, prose, fence, previous_blank = [], [], None, True
    for line in text.splitlines(keepends=True):
        opened = FENCE_OPEN.match(line)
        if fence or opened or (previous_blank and INDENTED_CODE.match(line)):
            if fence:
                fence = None if line.strip().startswith(fence) else fence
            elif opened:
                fence = opened.group(1)
            out.append(_spans_masked("".join(prose)))
            prose = []
            out.append(_masked(line))
        else:
            prose.append(line)  # a code span may run over the lines of a paragraph
        previous_blank = not line.strip() or (previous_blank and bool(INDENTED_CODE.match(line)))
    out.append(_spans_masked("".join(prose)))
    return "".join(out)


def _spans_masked(prose: str) -> str:
    return CODE_SPAN.sub(lambda span: "".join(CODE if c not in "\r\n" else c for c in span.group()), prose)


def _masked(code: str) -> str:
    body = code.rstrip("\r\n")
    return CODE * len(body) + code[len(body):]
