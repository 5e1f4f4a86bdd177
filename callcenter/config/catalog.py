"""The Realtime models the installed openai SDK knows, and the shutdowns OpenAI announced.

Read at run time from the SDK's source, so that a newer SDK brings newer dates without a
release of callcenter: ``CallAcceptParams.model`` is typed ``Union[str, Literal[...]]`` and
its docstring lists deprecated values as bullets::

    - "gpt-realtime", "gpt-realtime-mini": Announced shutdown date: 2027-01-20. See ...
"""

from __future__ import annotations

import ast
import inspect
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

__all__ = ["ModelCatalog", "announced_shutdowns", "parse_model_catalog", "sdk_model_catalog"]

# Shutdowns the documentation announced that the SDK's docstring does not list (already past).
DOCUMENTED_SHUTDOWNS: Mapping[str, date] = {
    "gpt-4o-realtime-preview-2024-10-01": date(2025, 9, 10),
}

_SHUTDOWN_RE = re.compile(
    r'((?:"[^"]+"\s*,?\s*)+):\s*Announced shutdown date:\s*(\d{4}-\d{2}-\d{2})'
)


@dataclass(frozen=True, slots=True)
class ModelCatalog:
    """Model names the SDK lists, and the announced shutdown date of some of them."""

    known: frozenset[str]
    shutdowns: Mapping[str, date]


def sdk_model_catalog() -> ModelCatalog | None:
    """The catalog of the installed SDK; None when its source is missing or changed shape."""
    from openai.types.realtime import call_accept_params

    try:
        source = inspect.getsource(call_accept_params)
    except (OSError, TypeError):
        return None
    return parse_model_catalog(source)


def announced_shutdowns() -> Mapping[str, date]:
    """Every model with an announced shutdown and its date: the SDK's, then the docs'."""
    catalog = sdk_model_catalog()
    return {**DOCUMENTED_SHUTDOWNS, **(catalog.shutdowns if catalog else {})}


def parse_model_catalog(source: str) -> ModelCatalog | None:
    """Parse the source of the SDK's ``call_accept_params`` module; None if it changed shape."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == "CallAcceptParams":
            return _catalog_from_class(node)
    return None


def _catalog_from_class(node: ast.ClassDef) -> ModelCatalog | None:
    for index, item in enumerate(node.body):
        if not (
            isinstance(item, ast.AnnAssign)
            and isinstance(item.target, ast.Name)
            and item.target.id == "model"
        ):
            continue
        known = frozenset(
            leaf.value
            for leaf in ast.walk(item.annotation)
            if isinstance(leaf, ast.Constant) and isinstance(leaf.value, str)
        )
        following = node.body[index + 1] if index + 1 < len(node.body) else None
        if not (
            known
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            return None
        return ModelCatalog(known, _shutdowns(following.value.value))
    return None


def _shutdowns(docstring: str) -> dict[str, date]:
    found: dict[str, date] = {}
    for bullet in re.split(r"^\s*- ", docstring, flags=re.MULTILINE)[1:]:
        match = _SHUTDOWN_RE.match(" ".join(bullet.split()))
        if match:
            for name in re.findall(r'"([^"]+)"', match.group(1)):
                found[name] = date.fromisoformat(match.group(2))
    return found
