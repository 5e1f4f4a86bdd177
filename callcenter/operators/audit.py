"""The audit trail: every operator action and every failed login, with who, what and how."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime

from callcenter.errors import StoreError
from callcenter.store.operators import OperatorStore

__all__ = ["AuditTrail"]

logger = logging.getLogger(__name__)


class AuditTrail:
    """Writes audit rows; a store failure is logged, never raised (the action happened)."""

    def __init__(self, store: OperatorStore, clock: Callable[[], datetime]) -> None:
        self._store = store
        self._clock = clock

    def record(
        self,
        *,
        operator: str | None,
        action: str,
        call_id: str | None,
        result: str,
        client: str | None,
        detail: Mapping[str, object] | None = None,
    ) -> None:
        """Append one row (and a log line)."""
        logger.info(
            "operator action call_id=%s operator=%s action=%s result=%s client=%s",
            call_id,
            operator,
            action,
            result,
            client,
        )
        try:
            self._store.add_audit(
                operator=operator,
                action=action,
                call_id=call_id,
                result=result,
                client=client,
                at=self._clock(),
                detail=detail,
            )
        except StoreError as exc:
            logger.error("audit row lost call_id=%s action=%s: %s", call_id, action, exc)
