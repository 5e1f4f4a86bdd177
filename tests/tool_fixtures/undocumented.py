"""A tool without a docstring, so without a description for the model."""

from __future__ import annotations

import callcenter


@callcenter.tool
def mystery(value: int) -> int:
    return value
