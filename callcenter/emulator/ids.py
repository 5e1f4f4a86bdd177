"""Identifiers shaped like OpenAI's: a type prefix, an underscore, random characters."""

from __future__ import annotations

import secrets
import string

_ALPHABET = string.ascii_letters + string.digits


def hex_id(prefix: str, length: int = 32) -> str:
    """``prefix_`` + ``length`` lowercase hex digits, e.g. ``rtc_3f…`` or ``wh_9a…``."""
    return f"{prefix}_{secrets.token_hex((length + 1) // 2)[:length]}"


def short_id(prefix: str, length: int = 21) -> str:
    """``prefix_`` + ``length`` letters and digits, e.g. ``event_B8y…`` or ``item_Cx…``."""
    return prefix + "_" + "".join(secrets.choice(_ALPHABET) for _ in range(length))
