"""Read a tool's docstring: its summary and the description of each parameter.

Three styles are understood, and may be mixed:

- Google: an ``Args:`` section (also ``Arguments:``, ``Parameters:``, ``Attributes:``,
  ``Keyword Args:``) of ``name (type): description`` entries, continued on deeper lines;
- reST: ``:param name: description`` or ``:param type name: description``;
- NumPy: a ``Parameters`` (or ``Attributes``) heading underlined with dashes, then
  ``name : type`` lines each followed by an indented description.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass, field

__all__ = ["Docstring", "parse_docstring"]

_GOOGLE_HEADING_RE = re.compile(
    r"(Args|Arguments|Parameters|Params|Attributes|Keyword Args|Keyword Arguments):"
)
_GOOGLE_ENTRY_RE = re.compile(r"\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:(.*)")
_REST_PARAM_RE = re.compile(r":param\s+(?:[^:]*\s)?(\w+)\s*:(.*)")
_NUMPY_HEADINGS = ("Parameters", "Attributes", "Other Parameters")
_NUMPY_ENTRY_RE = re.compile(r"(\w+)\s*(?::.*)?")
_DASHES_RE = re.compile(r"-{3,}")
_ANY_HEADING_RE = re.compile(r"[A-Z][A-Za-z ]*:")


@dataclass(frozen=True, slots=True)
class Docstring:
    """What a docstring says: its first paragraph and a description per parameter name."""

    summary: str = ""
    params: dict[str, str] = field(default_factory=dict)


def parse_docstring(doc: str | None) -> Docstring:
    """Split ``doc`` into its summary (first paragraph, one line) and parameter descriptions."""
    if not doc:
        return Docstring()
    lines = inspect.cleandoc(doc).splitlines()
    params: dict[str, str] = {}
    index = 0
    while index < len(lines):
        index = _read_section(lines, index, params)
    return Docstring(_summary(lines), params)


def _summary(lines: list[str]) -> str:
    words: list[str] = []
    for index, line in enumerate(lines):
        text = line.strip()
        if not text or text.startswith(":") or _is_heading(lines, index):
            break
        words.append(text)
    return " ".join(words)


def _is_heading(lines: list[str], index: int) -> bool:
    """Whether ``lines[index]`` starts a section: ``Returns:``, or a NumPy underlined title."""
    if _ANY_HEADING_RE.fullmatch(lines[index].strip()):
        return True
    return index + 1 < len(lines) and bool(_DASHES_RE.fullmatch(lines[index + 1].strip()))


def _read_section(lines: list[str], index: int, params: dict[str, str]) -> int:
    """Read what starts at ``lines[index]`` into ``params``; return the next unread index."""
    line = lines[index]
    text = line.strip()
    rest = _REST_PARAM_RE.fullmatch(text)
    if rest:
        body, end = _continued(lines, index + 1, _indent(line))
        params[rest.group(1)] = _join(rest.group(2), *body)
        return end
    if _GOOGLE_HEADING_RE.fullmatch(text):
        return _read_entries(lines, index + 1, _indent(line), _GOOGLE_ENTRY_RE, params)
    following = lines[index + 1].strip() if index + 1 < len(lines) else ""
    if text in _NUMPY_HEADINGS and _DASHES_RE.fullmatch(following):
        return _read_entries(lines, index + 2, _indent(line) - 1, _NUMPY_ENTRY_RE, params)
    return index + 1


def _read_entries(
    lines: list[str], index: int, outer: int, entry_re: re.Pattern[str], params: dict[str, str]
) -> int:
    """Read ``name: description`` entries indented deeper than ``outer``."""
    entry_indent: int | None = None
    while index < len(lines):
        line = lines[index]
        if not line.strip():
            if index + 1 < len(lines) and _indent(lines[index + 1]) <= outer:
                return index + 1  # a blank line, then a dedent: the section is over
            index += 1
            continue
        indent = _indent(line)
        if indent <= outer or (entry_indent is not None and indent < entry_indent):
            return index
        if indent == entry_indent and _is_heading(lines, index):
            return index  # the next NumPy section, at the same indentation as the entries
        entry_indent = indent if entry_indent is None else entry_indent
        match = entry_re.fullmatch(line.strip())
        if indent != entry_indent or match is None:
            index += 1
            continue
        body, index = _continued(lines, index + 1, indent)
        # A Google entry starts its description after the colon; a NumPy one on the next line.
        head = match.group(2) if entry_re.groups >= 2 else ""
        params[match.group(1)] = _join(head, *body)
    return index


def _continued(lines: list[str], index: int, indent: int) -> tuple[list[str], int]:
    """The lines from ``index`` indented deeper than ``indent``, and the index after them."""
    body: list[str] = []
    while index < len(lines) and lines[index].strip() and _indent(lines[index]) > indent:
        body.append(lines[index].strip())
        index += 1
    return body, index


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _join(*parts: str) -> str:
    return " ".join(part.strip() for part in parts if part.strip())
