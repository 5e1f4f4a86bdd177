"""Env files that hold secrets: ``KEY=value`` lines, as systemd's ``EnvironmentFile=`` and
docker compose's ``env_file`` read them (no quotes, no spaces around ``=``).

Files are written private: a new file is created with mode 0600, and an update never
leaves a file readable by more people than before (at most 0600, whatever it was).
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

PRIVATE_MODE = 0o600


def read_value(path: Path, name: str) -> str | None:
    """The value of ``name`` in the env file ``path``, or None if no line sets it."""
    found = None
    for line in path.read_text().splitlines():
        match = _assignment(name).match(line)
        if match:
            found = line[match.end() :].strip()
    return found


def create(path: Path, name: str, value: str) -> None:
    """Write a new env file holding ``name=value``, mode 0600.

    ``FileExistsError`` if ``path`` exists: an existing file is never overwritten here.
    """
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_MODE)
    with os.fdopen(descriptor, "w") as file:
        file.write(f"{name}={value}\n")


def set_value(path: Path, name: str, value: str) -> None:
    """Set ``name=value`` in the existing env file ``path``, keeping its other lines.

    The file is replaced atomically (a symlink's target, not the link) by one with the same
    owner where allowed and a mode of at most 0600, never wider than the old one.
    """
    target = path.resolve()
    old = target.stat()
    lines = target.read_text().splitlines()
    pattern = _assignment(name)
    setting = [i for i, line in enumerate(lines) if pattern.match(line)]
    kept = [line for line in lines if not pattern.match(line)]
    kept.insert(setting[0] if setting else len(kept), f"{name}={value}")  # where it was
    descriptor, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        os.fchmod(descriptor, old.st_mode & PRIVATE_MODE)
        try:
            os.fchown(descriptor, old.st_uid, old.st_gid)
        except PermissionError:
            pass  # not ours to give away: the file stays ours, still private
        with os.fdopen(descriptor, "w") as file:
            file.write("\n".join(kept) + "\n")
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _assignment(name: str) -> re.Pattern[str]:
    """Matches a line that sets ``name`` (``NAME=``, or ``export NAME=``), up to the ``=``."""
    return re.compile(rf"^\s*(?:export\s+)?{re.escape(name)}\s*=")
