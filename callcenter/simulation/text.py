"""Plain text layout for what the CLI prints: tables with padded columns, clipped lines.

Pure and light (no emulator, no SDK), so that ``callcenter calls`` can lay out a table without
loading the simulation's machinery.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

__all__ = ["clip", "latency_lines", "table"]


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


def latency_lines(latency: Mapping[str, object] | None) -> list[str]:
    """The caller's wait (the API's ``latency``) as short lines; "-" where not measured."""
    latency = latency or {}

    def ms(key: str) -> str:
        value = latency.get(key)
        return f"{value:.0f} ms" if isinstance(value, int | float) else "-"

    lines = [f"greeting: {ms('greeting_ms')}"]
    turns = latency.get("turns") or 0
    if turns:
        lines.append(
            f"turns: {turns}, p50 {ms('turn_p50_ms')}, p90 {ms('turn_p90_ms')}, "
            f"max {ms('turn_max_ms')}"
        )
        lines.append(
            f"of which tools: {ms('tool_ms')} in all; model p50 {ms('model_p50_ms')}, "
            f"p90 {ms('model_p90_ms')}"
        )
    else:
        lines.append("turns: -")
    return lines
