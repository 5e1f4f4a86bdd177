"""The calls REST endpoints: ``POST /v1/realtime/calls/{call_id}/accept|reject|refer|hangup``.

Each request goes through, in order: bearer auth (401), injected faults (latency, then a
status), body validation (400 with ``param`` and ``code``), the call's state machine
(404 / 409). Success is 200 with an empty body. Every request is recorded as answered.
A REFER's far end plays as the fault plan scripts it for the target (``TransferFault``):
refused with a status, or relayed (200) and then answered, busy or not answered.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from aiohttp import web

from callcenter.emulator.api_error import ApiError, bad_request, not_found
from callcenter.emulator.faults import TransferFault
from callcenter.emulator.host import EmulatorHost
from callcenter.emulator.http_errors import bearer_problem, error_response
from callcenter.emulator.ids import short_id
from callcenter.emulator.state import EmulatedCall, RestRequest
from callcenter.emulator.validation import (
    check_accept_body,
    check_hangup_body,
    check_refer_body,
    check_reject_body,
)
from callcenter.observability.logs import bind_call

logger = logging.getLogger(__name__)

DEFAULT_REJECT_CODE = 603
CHECKS = {
    "accept": check_accept_body,
    "reject": check_reject_body,
    "refer": check_refer_body,
    "hangup": check_hangup_body,
}


class CallsApi:
    """The aiohttp handlers of the calls endpoints, acting on their host."""

    def __init__(self, host: EmulatorHost) -> None:
        self._host = host

    def routes(self) -> list[web.RouteDef]:
        """The routes to add to the app."""
        return [web.post("/v1/realtime/calls/{call_id}/{verb}", self.handle)]

    async def handle(self, request: web.Request) -> web.Response:
        """Answer one calls-endpoint request."""
        call_id, verb = request.match_info["call_id"], request.match_info["verb"]
        with bind_call(call_id):
            return await self._answer(request, call_id, verb)

    async def _answer(self, request: web.Request, call_id: str, verb: str) -> web.Response:
        if verb not in CHECKS:
            message = f"Invalid URL (POST /v1/realtime/calls/{call_id}/{verb})"
            return error_response(ApiError(404, message))
        body, problem = await _read_json(request)
        body = {} if body is None else body
        retry_after = None
        problem = problem or bearer_problem(request, self._host.api_key)
        if problem is None:
            fault = self._host.faults.take_rest(verb, call_id)
            if fault is not None:
                await asyncio.sleep(fault.latency)
                if fault.status is not None:
                    problem, retry_after = fault.error(), fault.retry_after
        problem = problem or CHECKS[verb](body) or self._apply(verb, call_id, body)
        status = problem.status if problem is not None else 200
        self._host.record_rest(RestRequest(verb, call_id, body, status, time.time()))
        logger.info("calls api", extra={"verb": verb, "status": status})
        if problem is not None:
            return error_response(problem, retry_after)
        return web.Response(status=200, headers={"x-request-id": short_id("req", 32)})

    def _apply(self, verb: str, call_id: str, body: Any) -> ApiError | None:
        host = self._host
        call = host.calls.get(call_id)
        if call is None:
            return not_found(call_id)
        if verb == "accept":
            problem = call.accept(body)
            if problem is None:
                host.call_accepted(call)
            return problem
        if verb == "reject":
            problem = call.reject(body.get("status_code") or DEFAULT_REJECT_CODE)
        elif verb == "refer":
            return self._refer(call, body["target_uri"])
        else:
            problem = call.hangup()
        if problem is None:
            host.call_over(call, by_caller=False)
        return problem

    def _refer(self, call: EmulatedCall, target_uri: str) -> ApiError | None:
        problem = call.refer_problem()
        if problem is not None:
            return problem
        script = self._host.faults.take_transfer(call.call_id, target_uri) or TransferFault()
        attempt = {"target_uri": target_uri, "result": script.result, "at": time.time()}
        call.refer_attempts.append(attempt)
        if script.result == "refused":
            return script.error()
        self._host.refer_relayed(call, target_uri, script)
        return None


async def _read_json(request: web.Request) -> tuple[Any, ApiError | None]:
    raw = await request.read()
    if not raw.strip():
        return None, None
    try:
        return json.loads(raw), None
    except ValueError:
        message = (
            "We could not parse the JSON body of your request. (HINT: This likely means you "
            "aren't using your HTTP library correctly. The OpenAI API expects a JSON payload.)"
        )
        return None, bad_request(message, "invalid_json")
