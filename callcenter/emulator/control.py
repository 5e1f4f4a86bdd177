"""The emulator's own JSON control API under ``/_emulator/``, for other processes.

    GET    /_emulator                       how it delivers: {webhook_targets (where a
                                            call's realtime.call.incoming goes), redelivery}
    POST   /_emulator/calls                 place a call: {from_number, to_number,
                                            caller_name?, headers?, script?, call_id?, delivery?,
                                            server_timings? ("realistic" | "none")}
    GET    /_emulator/calls                 every call's summary
    GET    /_emulator/calls/{call_id}       one call with all its records
    POST   /_emulator/calls/{call_id}/hangup   the caller hangs up
    GET    /_emulator/faults                the faults still armed
    POST   /_emulator/faults                arm a fault: {"kind": "rest" | "sideband" |
                                            "transfer", ...} (transfer: how a REFER to a
                                            target ends: answered after N s, busy, no_answer,
                                            refused with a status)
    DELETE /_emulator/faults                disarm every fault
    POST   /_emulator/webhooks              deliver another event: {type, data?, delivery?}

Errors are ``{"error": {"code", "message"}}``. The API is unauthenticated: it listens where
the emulator does (loopback by default).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any, cast

from aiohttp import web

from callcenter.emulator.faults import fault_from_json, fault_kind
from callcenter.emulator.host import EmulatorHost
from callcenter.emulator.script import steps_from_json
from callcenter.emulator.session_state import SERVER_TIMINGS
from callcenter.emulator.state import EmulatedCall
from callcenter.emulator.webhooks import Delivery, MediaSecurity

INCOMING_CALL = "realtime.call.incoming"


class ControlApi:
    """The aiohttp handlers of ``/_emulator/``, acting on their host."""

    def __init__(self, host: EmulatorHost) -> None:
        self._host = host

    def routes(self) -> list[web.RouteDef]:
        """The routes to add to the app."""
        return [
            web.get("/_emulator", self.describe),
            web.post("/_emulator/calls", self.place_call),
            web.get("/_emulator/calls", self.list_calls),
            web.get("/_emulator/calls/{call_id}", self.get_call),
            web.post("/_emulator/calls/{call_id}/hangup", self.hang_up),
            web.get("/_emulator/faults", self.list_faults),
            web.post("/_emulator/faults", self.add_fault),
            web.delete("/_emulator/faults", self.clear_faults),
            web.post("/_emulator/webhooks", self.send_webhook),
        ]

    async def describe(self, request: web.Request) -> web.Response:
        """Where a call's webhook goes, and how it is redelivered."""
        return web.json_response(
            {
                "webhook_targets": self._host.webhook_targets(INCOMING_CALL),
                "redelivery": dataclasses.asdict(self._host.redelivery),
            }
        )

    async def place_call(self, request: web.Request) -> web.Response:
        """Ring a new call."""
        body = await _json_object(request)
        try:
            timings = body.get("server_timings")
            if timings is not None and timings not in SERVER_TIMINGS:
                raise ValueError(f"server_timings must be one of {', '.join(SERVER_TIMINGS)}")
            headers = body.get("headers") or {}
            pairs = (
                list(headers.items())
                if isinstance(headers, Mapping)
                else [tuple(h) for h in headers]
            )
            call = self._host.place_call(
                from_number=str(body.get("from_number", "+14155550123")),
                to_number=str(body.get("to_number", "+18005550100")),
                caller_name=body.get("caller_name"),
                headers=pairs,
                script=steps_from_json(body.get("script") or ()),
                call_id=body.get("call_id"),
                delivery=_delivery(body.get("delivery")),
                media_security=_media_security(body),
                server_timings=timings,
            )
        except (TypeError, ValueError) as exc:
            raise _bad_request("invalid_call", str(exc)) from exc
        return web.json_response({"call": call.summary()}, status=201)

    async def list_calls(self, request: web.Request) -> web.Response:
        """Every call's summary."""
        return web.json_response({"calls": [c.summary() for c in self._host.calls.values()]})

    async def get_call(self, request: web.Request) -> web.Response:
        """One call with its records."""
        return web.json_response({"call": self._call(request).to_json()})

    async def hang_up(self, request: web.Request) -> web.Response:
        """The caller hangs up."""
        call = self._call(request)
        if not self._host.caller_hangs_up(call.call_id):
            raise _error(web.HTTPConflict, "call_over", f"Call {call.call_id} is already over.")
        return web.json_response({"call": call.summary()})

    async def list_faults(self, request: web.Request) -> web.Response:
        """The faults still armed."""
        faults = [
            {"kind": fault_kind(f), **dataclasses.asdict(f)} for f in self._host.faults.pending()
        ]
        return web.json_response({"faults": faults})

    async def add_fault(self, request: web.Request) -> web.Response:
        """Arm one fault."""
        body = await _json_object(request)
        try:
            fault = fault_from_json(body)
        except ValueError as exc:
            raise _bad_request("invalid_fault", str(exc)) from exc
        self._host.faults.add(fault)
        return web.json_response({"fault": body}, status=201)

    async def clear_faults(self, request: web.Request) -> web.Response:
        """Disarm every fault."""
        self._host.faults.clear()
        return web.json_response({"faults": []})

    async def send_webhook(self, request: web.Request) -> web.Response:
        """Deliver an event of any type."""
        body = await _json_object(request)
        try:
            event = self._host.send_webhook(
                str(body["type"]), body.get("data"), delivery=_delivery(body.get("delivery"))
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise _bad_request("invalid_webhook", f"Cannot send this webhook: {exc}") from exc
        return web.json_response({"event": event}, status=202)

    def _call(self, request: web.Request) -> EmulatedCall:
        call_id = request.match_info["call_id"]
        call = self._host.calls.get(call_id)
        if call is None:
            raise _error(web.HTTPNotFound, "call_not_found", f"No call {call_id} was placed.")
        return call


def _delivery(data: object) -> Delivery | None:
    if data is None:
        return None
    if not isinstance(data, Mapping):
        raise ValueError("delivery must be an object")
    return Delivery(**data)


async def _json_object(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError as exc:
        raise _bad_request("invalid_json", "The request body is not valid JSON.") from exc
    if not isinstance(body, dict):
        raise _bad_request("invalid_json", "The request body must be a JSON object.")
    return body


def _bad_request(code: str, message: str) -> web.HTTPException:
    return _error(web.HTTPBadRequest, code, message)


def _error(kind: type[web.HTTPException], code: str, message: str) -> web.HTTPException:
    body = json.dumps({"error": {"code": code, "message": message}})
    return kind(text=body, content_type="application/json")


def _media_security(body: Mapping[str, Any]) -> MediaSecurity:
    """``media_security``: "srtp" (the default), "rtp", or null (left out of the webhook)."""
    value = body.get("media_security", "srtp")
    if value not in ("rtp", "srtp", None):
        raise ValueError('media_security must be "rtp", "srtp" or null')
    return cast(MediaSecurity, value)
