"""What every ``/v1`` endpoint shares: the 401 for a wrong key, and OpenAI's JSON error answer."""

from __future__ import annotations

import hmac

from aiohttp import web

from callcenter.emulator.api_error import ApiError
from callcenter.emulator.ids import short_id


def bearer_problem(request: web.Request, api_key: str) -> ApiError | None:
    """The 401 for a request without the right ``Authorization: Bearer`` key, or None."""
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    if not key.strip():
        message = (
            "You didn't provide an API key. You need to provide your API key in an "
            "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
        )
        return ApiError(401, message, code="invalid_api_key")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        key.strip().encode(), api_key.encode()
    ):
        message = (
            f"Incorrect API key provided: {_masked(key.strip())}. You can find your API key "
            "at https://platform.openai.com/account/api-keys."
        )
        return ApiError(401, message, code="invalid_api_key")
    return None


def error_response(problem: ApiError, retry_after: float | None = None) -> web.Response:
    """The JSON error answer, with a request id (and ``Retry-After`` when given)."""
    headers = {"x-request-id": short_id("req", 32)}
    if retry_after is not None:
        headers["retry-after"] = f"{retry_after:g}"
    return web.json_response(problem.body(), status=problem.status, headers=headers)


def _masked(key: str) -> str:
    if len(key) <= 8:
        return "*" * len(key)
    return key[:3] + "*" * (len(key) - 7) + key[-4:]
