"""The recorder's spill files: writes kept on local disk while the store cannot take them.

A spill file is append-only JSON lines, fsynced after each append, so a write that reached
it survives the process. Each recorder owns one file, ``<dir>/recorder-<id>.jsonl``, and
holds an exclusive ``flock`` on it for as long as it lives; a file nobody holds belongs to a
recorder that died, and the next recorder to start adopts it and replays it first. Lines are
read back in order from a cursor; once every line has been written to the store, the file is
deleted, so a spill file on disk always means writes waiting. A replay after a crash may
repeat lines the store already has, so every write must be idempotent.
"""

from __future__ import annotations

import fcntl
import logging
import os
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Final, TextIO

__all__ = ["SpillFile", "adopt_orphans", "spill_files"]

logger = logging.getLogger(__name__)

_PATTERN: Final = "recorder-*.jsonl"


class SpillFile:
    """One locked spill file: appended at its end, read from a cursor."""

    def __init__(self, path: Path, file: TextIO, *, adopted: bool) -> None:
        self.path = path
        self.adopted = adopted
        self._file = file  # opened for appending; holds the lock
        self._cursor = 0  # byte offset of the next line to read
        self._size = os.fstat(file.fileno()).st_size

    @classmethod
    def create(cls, directory: Path) -> SpillFile:
        """A new, empty spill file in ``directory``, locked by this process."""
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = directory / f"recorder-{uuid.uuid4().hex}.jsonl"
        file = _open_private(path, os.O_APPEND)
        fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        return cls(path, file, adopted=False)

    @property
    def empty(self) -> bool:
        """Whether the file holds no line at all."""
        return self._size == 0

    @property
    def unread(self) -> bool:
        """Whether lines remain past the cursor."""
        return self._cursor < self._size

    def append(self, lines: Iterable[str]) -> None:
        """Append ``lines`` (each without its newline) and fsync; OSError if that failed."""
        text = "".join(f"{line}\n" for line in lines)
        if not text:
            return
        self._file.write(text)
        self._file.flush()
        os.fsync(self._file.fileno())
        self._size += len(text.encode("utf-8"))

    def read(self, limit: int) -> list[str]:
        """Up to ``limit`` lines from the cursor on, advancing it; a torn last line is skipped."""
        lines: list[str] = []
        with self.path.open("rb") as reader:
            reader.seek(self._cursor)
            while len(lines) < limit and self._cursor < self._size:
                raw = reader.readline()
                if not raw:
                    self._size = self._cursor  # the file is shorter than we thought
                    break
                self._cursor += len(raw)
                if not raw.endswith(b"\n"):
                    logger.warning(
                        "spill line torn", extra={"file": self.path.name, "bytes": len(raw)}
                    )
                    continue
                lines.append(raw.decode("utf-8", errors="replace").rstrip("\n"))
        return lines

    def finish(self) -> None:
        """Every line was written to the store: delete the file and release it.

        Deleted, not emptied, even when it is our own: a spill file on disk always means
        writes wait for the store, and the next spill makes a new one.
        """
        self.path.unlink(missing_ok=True)
        self._file.close()
        self._cursor = self._size = 0

    def replace(self, lines: Iterable[str]) -> None:
        """Make the file hold exactly ``lines`` (written aside, locked, fsynced, renamed over)."""
        aside = self.path.with_suffix(".tmp")
        file = _open_private(aside, os.O_TRUNC)
        fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        file.writelines(f"{line}\n" for line in lines)
        file.flush()
        os.fsync(file.fileno())
        os.replace(aside, self.path)  # the lock moves with the inode: no one adopts it meanwhile
        self._file.close()
        self._file = file
        self._cursor, self._size = 0, os.fstat(file.fileno()).st_size

    def close(self) -> None:
        """Release the lock; an empty file of ours goes away."""
        if not self._file.closed:
            if not self.adopted and self._size == 0:
                self.path.unlink(missing_ok=True)
            self._file.close()


def spill_files(directory: Path) -> list[Path]:
    """The spill files in ``directory``, held by a live recorder or not."""
    return sorted(directory.glob(_PATTERN)) if directory.is_dir() else []


def adopt_orphans(directory: Path) -> list[SpillFile]:
    """The spill files in ``directory`` whose recorder died, oldest first, locked for us."""
    adopted: list[SpillFile] = []
    for path in sorted(spill_files(directory), key=_age):
        file = path.open("a", encoding="utf-8")
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # a live recorder holds it
            file.close()
            continue
        if not path.exists():  # finished and deleted by its adopter between glob and lock
            file.close()
            continue
        spill = SpillFile(path, file, adopted=True)
        if not spill.unread:
            spill.finish()
            continue
        logger.info("spill adopted", extra={"file": path.name, "bytes": path.stat().st_size})
        adopted.append(spill)
    return adopted


def _open_private(path: Path, mode: int) -> TextIO:
    """``path`` opened for writing, created readable by this user only (calls are private)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | mode, 0o600)
    return os.fdopen(descriptor, "a" if mode & os.O_APPEND else "w", encoding="utf-8")


def _age(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:  # finished by its adopter meanwhile
        return 0.0
