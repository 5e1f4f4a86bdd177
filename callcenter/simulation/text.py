"""Plain text layout for what the CLI prints: tables with padded columns, clipped lines.

Pure and light (no emulator, no SDK), so that ``callcenter calls`` can lay out a table without
loading the simulation's machinery.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["clip", "table"]


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A plain text table with padded columns (the last one is not padded)."""
    widths = [max(len(str(row[i])) for row in [headers, *rows]) for i in range(len(headers))]

    def row_line(cells: Sequence[str]) -> str:
        padded = [str(cell).ljust(width) for cell, width in zip(cells[:-1], widths, strict=False)]
        return "  ".join([*padded, str(cells[-1])]).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return [row_line(headers), rule, *(row_line(row) for row in rows)]


def clip(text: str, width: int) -> str:
    """``text`` on one line, cut to ``width`` characters with "..." if longer."""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."
