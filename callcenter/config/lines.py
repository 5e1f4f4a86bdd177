"""Find the line of a key in a TOML text, so config errors can point at it.

Best effort and separate from loading: ``tomllib`` drops positions, so this module scans the
raw text (already known to be valid TOML) for table headers, ``key =`` lines, inline tables
and arrays, and records the line where each key path starts. A path is a tuple of keys and
array indices, e.g. ``("routes", 2, "escalation", "target")``.
"""

from __future__ import annotations

import re
import tomllib

__all__ = ["KeyPath", "KeyLocator", "syntax_error_line"]

KeyPath = tuple[str | int, ...]

_BARE_KEY_RE = re.compile(r"[A-Za-z0-9_-]+")
_SCALAR_END = ",]}#\n"
_LOCATION_RE = re.compile(r"\(at line (\d+), column \d+\)$")


def syntax_error_line(error: tomllib.TOMLDecodeError, text: str) -> tuple[str, int]:
    """Split tomllib's message into the reason and the line it names."""
    message = str(error)
    match = _LOCATION_RE.search(message)
    if match:
        return message[: match.start()].rstrip(), int(match.group(1))
    reason = message.removesuffix("(at end of document)").rstrip()
    return reason, max(1, len(text.splitlines()))


class KeyLocator:
    """Maps key paths of one TOML document to the lines where they are written."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._lines: dict[KeyPath, int] | None = None

    def line_of(self, path: KeyPath) -> int | None:
        """The line of ``path``, else of its nearest written ancestor, else None."""
        if self._lines is None:
            try:
                self._lines = _Scanner(self._text).scan()
            except (IndexError, ValueError):
                self._lines = {}
        for end in range(len(path), 0, -1):
            line = self._lines.get(path[:end])
            if line is not None:
                return line
        return None


class _Scanner:
    """A tolerant walk over valid TOML that records the line of each key path."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.lines: dict[KeyPath, int] = {}
        self.array_tables: dict[KeyPath, int] = {}

    @property
    def line(self) -> int:
        return self.text.count("\n", 0, self.pos) + 1

    def scan(self) -> dict[KeyPath, int]:
        table: KeyPath = ()
        while self._skip_blank(newlines=True):
            if self.text.startswith("[[", self.pos):
                self.pos += 2
                table = self._array_table_header()
            elif self.text.startswith("[", self.pos):
                self.pos += 1
                table = self._resolve(self._key(), self.line)
                self._expect("]")
            else:
                self._key_value(table)
        return self.lines

    def _array_table_header(self) -> KeyPath:
        line = self.line
        key = self._key()
        self._expect("]]")
        parent = self._resolve(key[:-1], line)
        array = (*parent, key[-1])
        index = self.array_tables.get(array, 0)
        self.array_tables[array] = index + 1
        self._record(array, line)
        self._record((*array, index), line)
        return (*array, index)

    def _resolve(self, key: KeyPath, line: int) -> KeyPath:
        """Turn a dotted header key into a path, entering the last element of arrays of tables."""
        path: KeyPath = ()
        for part in key:
            path = (*path, part)
            self._record(path, line)
            count = self.array_tables.get(path)
            if count:
                path = (*path, count - 1)
        return path

    def _key_value(self, table: KeyPath) -> None:
        line = self.line
        key = self._key()
        for end in range(1, len(key) + 1):  # a dotted key (a.b.c = 1) writes a and a.b too
            self._record((*table, *key[:end]), line)
        path = (*table, *key)
        self._expect("=")
        self._value(path)

    def _value(self, path: KeyPath) -> None:
        self._skip_blank(newlines=False)
        char = self.text[self.pos]
        if char == "{":
            self.pos += 1
            while self._skip_blank(newlines=True) and not self._take("}"):
                self._key_value(path)
                self._skip_blank(newlines=True)
                self._take(",")
        elif char == "[":
            self.pos += 1
            index = 0
            while self._skip_blank(newlines=True) and not self._take("]"):
                self._record((*path, index), self.line)
                self._value((*path, index))
                self._skip_blank(newlines=True)
                self._take(",")
                index += 1
        elif char in "\"'":
            self._string()
        else:
            while self.pos < len(self.text) and self.text[self.pos] not in _SCALAR_END:
                self.pos += 1

    def _key(self) -> tuple[str, ...]:
        parts: list[str] = []
        while True:
            self._skip_blank(newlines=False)
            if self.text[self.pos] in "\"'":
                start = self.pos
                self._string()
                parts.append(tomllib.loads(f"k = {self.text[start : self.pos]}")["k"])
            else:
                match = _BARE_KEY_RE.match(self.text, self.pos)
                if match is None:
                    raise ValueError(f"no key at offset {self.pos}")
                parts.append(match.group())
                self.pos = match.end()
            self._skip_blank(newlines=False)
            if not self._take("."):
                return tuple(parts)

    def _string(self) -> None:
        quote = self.text[self.pos]
        if self.text.startswith(quote * 3, self.pos):
            end = self._find_closing(quote * 3, self.pos + 3, escapes=quote == '"')
            while self.text.startswith(quote, end + 3):  # up to two quotes may end the content
                end += 1
            self.pos = end + 3
        else:
            self.pos = self._find_closing(quote, self.pos + 1, escapes=quote == '"') + 1

    def _find_closing(self, delimiter: str, pos: int, *, escapes: bool) -> int:
        while not self.text.startswith(delimiter, pos):
            if pos >= len(self.text):
                raise ValueError("unterminated string")
            pos += 2 if escapes and self.text[pos] == "\\" else 1
        return pos

    def _skip_blank(self, *, newlines: bool) -> bool:
        """Skip spaces (and newlines and comments if asked); False at the end of the text."""
        blank = " \t\r\n" if newlines else " \t"
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char in blank:
                self.pos += 1
            elif char == "#" and newlines:
                end = self.text.find("\n", self.pos)
                self.pos = len(self.text) if end < 0 else end
            else:
                return True
        return False

    def _take(self, token: str) -> bool:
        if self.text.startswith(token, self.pos):
            self.pos += len(token)
            return True
        return False

    def _expect(self, token: str) -> None:
        self._skip_blank(newlines=False)
        if not self._take(token):
            raise ValueError(f"expected {token!r} at offset {self.pos}")

    def _record(self, path: KeyPath, line: int) -> None:
        self.lines.setdefault(path, line)
