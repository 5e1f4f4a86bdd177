"""OpenAI's error shape, as a value: the same error answers a REST call or a sideband event."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ApiError:
    """One error the emulated API answers with (HTTP status plus the JSON ``error`` object)."""

    status: int
    message: str
    code: str | None = None
    param: str | None = None
    type: str = "invalid_request_error"

    def body(self) -> dict[str, Any]:
        """The REST response body: ``{"error": {message, type, param, code}}``."""
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }

    def event_error(self, event_id: str | None) -> dict[str, Any]:
        """The ``error`` object of a sideband ``error`` event, naming the client event."""
        return {
            "type": self.type,
            "code": self.code,
            "message": self.message,
            "param": self.param,
            "event_id": event_id,
        }


def bad_request(message: str, code: str, param: str | None = None) -> ApiError:
    """A 400 ``invalid_request_error``."""
    return ApiError(400, message, code=code, param=param)


def not_found(call_id: str) -> ApiError:
    """The 404 for a call that does not exist (never did, or is over)."""
    return ApiError(
        404,
        f"Call '{call_id}' was not found. It may have ended or never existed.",
        code="call_id_not_found",
        param="call_id",
    )
