"""Reading TOML files for validation: the config and the scenario files alike.

:func:`load_toml` (a file) and :func:`parse_toml` (a text) give the document's root
:class:`Section`, or raise :class:`~callcenter.errors.ConfigError` for an unreadable file or a
syntax error, with its line. A :class:`Section` wraps one table and knows its key path, so every
later check can raise a ConfigError naming the file, the line, the key and the reason
(``file:LINE: key.path: reason``).
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path

from callcenter.config.lines import KeyLocator, KeyPath, syntax_error_line
from callcenter.errors import ConfigError

__all__ = [
    "Context",
    "Section",
    "format_path",
    "load_toml",
    "parse_toml",
    "quoted",
    "type_name",
]

_BARE_KEY_RE = re.compile(r"[A-Za-z0-9_-]+")


def load_toml(path: str | os.PathLike[str]) -> Section:
    """The root table of the TOML file at ``path``, which names it in errors."""
    file = os.fspath(path)
    try:
        raw = Path(file).read_bytes()
    except OSError as error:
        raise ConfigError(file, "", f"cannot read the file: {error.strerror or error}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(file, "", "the file is not UTF-8 text") from None
    return parse_toml(text, file)


def parse_toml(text: str, file: str) -> Section:
    """The root table of the TOML document ``text``; ``file`` names it in errors."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        reason, line = syntax_error_line(error, text)
        raise ConfigError(file, "", f"TOML syntax error: {reason}", line) from None
    return Section(Context(file, KeyLocator(text)), data, ())


def format_path(path: KeyPath) -> str:
    """Write a key path for humans: ``routes[2].match.headers."X Tenant"``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            key = part if _BARE_KEY_RE.fullmatch(part) else '"' + part.replace('"', '\\"') + '"'
            text += f".{key}" if text else key
    return text


def quoted(text: str) -> str:
    """``text`` in double quotes, as TOML writes strings: ``no target named "desk"``."""
    return json.dumps(text, ensure_ascii=False)


def type_name(value: object) -> str:
    """How a TOML value's type reads in an error message."""
    kinds: list[tuple[type, str]] = [
        (bool, "a boolean"),
        (int, "an integer"),
        (float, "a float"),
        (str, "a string"),
        (list, "an array"),
        (dict, "a table"),
        (datetime, "a date-time"),
        (date, "a date"),
        (time, "a time"),
    ]
    for kind, name in kinds:
        if isinstance(value, kind):
            return name
    return type(value).__name__


@dataclass(frozen=True, slots=True)
class Context:
    """The file being validated and the locator of its lines."""

    file: str
    locator: KeyLocator

    def error(self, path: KeyPath, reason: str) -> ConfigError:
        """A ConfigError for ``path``, with the line where the locator finds it."""
        return ConfigError(self.file, format_path(path), reason, self.locator.line_of(path))


class Section:
    """One TOML table under validation."""

    def __init__(self, context: Context, data: Mapping[str, object], path: KeyPath) -> None:
        self.context = context
        self.data = data
        self.path = path

    def error(self, key: str | None, reason: str) -> ConfigError:
        """A ConfigError about ``key`` of this table (or the table itself when None)."""
        return self.context.error(self.path if key is None else (*self.path, key), reason)

    def check_keys(self, allowed: Iterable[str]) -> None:
        """Refuse any key not in ``allowed``."""
        known = tuple(allowed)
        for key in self.data:
            if key not in known:
                raise self.error(key, f"unknown key; expected one of {', '.join(known)}")

    def has(self, key: str) -> bool:
        """Whether ``key`` is written in this table."""
        return key in self.data

    def text(self, key: str) -> str | None:
        """A non-empty string, None when absent."""
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.error(key, f"expected a string, got {type_name(value)}")
        if not value.strip():
            raise self.error(key, "must not be empty")
        return value

    def required_text(self, key: str) -> str:
        """A non-empty string that must be present."""
        value = self.text(key)
        if value is None:
            raise self.error(key, "required")
        return value

    def text_or(self, key: str, default: str) -> str:
        """A non-empty string, ``default`` when absent."""
        value = self.text(key)
        return default if value is None else value

    def boolean(self, key: str, default: bool) -> bool:
        """``true``/``false``, ``default`` when absent."""
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            raise self.error(key, f"expected true or false, got {type_name(value)}")
        return value

    def positive_int(self, key: str, default: int) -> int:
        """A positive integer, ``default`` when absent."""
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"expected a positive integer, got {type_name(value)}")
        if value < 1:
            raise self.error(key, f"expected a positive integer, got {value}")
        return value

    def positive_number(self, key: str) -> float | None:
        """A positive integer or float, None when absent."""
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(key, f"expected a positive number, got {type_name(value)}")
        if not 0 < value < float("inf"):
            raise self.error(key, f"expected a positive number, got {value}")
        return float(value)

    def texts(self, key: str, *, single: bool = False) -> tuple[str, ...]:
        """An array of non-empty strings (or one string when ``single``), () when absent."""
        value = self.data.get(key, [])
        if single and isinstance(value, str):
            value = [value]
        expected = "a string or an array of strings" if single else "an array of strings"
        if not isinstance(value, list):
            raise self.error(key, f"expected {expected}, got {type_name(value)}")
        for index, item in enumerate(value):
            if not isinstance(item, str):
                raise self.context.error(
                    (*self.path, key, index), f"expected a string, got {type_name(item)}"
                )
            if not item.strip():
                raise self.context.error((*self.path, key, index), "must not be empty")
        return tuple(value)

    def table(self, key: str) -> Section | None:
        """The sub-table ``key``, None when absent."""
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self.error(key, f"expected a table, got {type_name(value)}")
        return Section(self.context, value, (*self.path, key))

    def table_or_empty(self, key: str) -> Section:
        """The sub-table ``key``, an empty one when absent (so its defaults apply)."""
        return self.table(key) or Section(self.context, {}, (*self.path, key))

    def tables(self, key: str) -> list[Section]:
        """The array of tables ``key`` (``[[key]]``), [] when absent."""
        value = self.data.get(key, [])
        if not isinstance(value, list):
            raise self.error(
                key, f"expected an array of tables ([[{key}]]), got {type_name(value)}"
            )
        sections: list[Section] = []
        for index, item in enumerate(value):
            if not isinstance(item, dict):
                raise self.context.error(
                    (*self.path, key, index), f"expected a table, got {type_name(item)}"
                )
            sections.append(Section(self.context, item, (*self.path, key, index)))
        return sections
