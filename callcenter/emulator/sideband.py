"""The sideband endpoint: ``GET /v1/realtime?call_id=…`` upgraded to a WebSocket.

The handshake is refused with an HTTP error (no upgrade) for a bad key (401), an unknown or
finished call (404), a call still ringing (409) or an injected refusal. Once attached, the
socket gets ``session.created`` and every later server event of the call; what it sends is
handed to the call's conversation. Any number of attaches over a call's life is allowed.
"""

from __future__ import annotations

import logging

from aiohttp import WSMsgType, web

from callcenter.emulator.api_error import ApiError, not_found
from callcenter.emulator.channel import ABNORMAL_CLOSURE, NORMAL_CLOSURE, Socket
from callcenter.emulator.host import EmulatorHost
from callcenter.emulator.http_errors import bearer_problem, error_response
from callcenter.emulator.validation import missing
from callcenter.observability.logs import bind_call

logger = logging.getLogger(__name__)


class SidebandApi:
    """The aiohttp handler of the sideband WebSocket, acting on their host."""

    def __init__(self, host: EmulatorHost) -> None:
        self._host = host

    def routes(self) -> list[web.RouteDef]:
        """The routes to add to the app."""
        return [web.get("/v1/realtime", self.handle)]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Refuse the handshake, or serve one attached socket until it closes."""
        call_id = request.query.get("call_id", "")
        with bind_call(call_id):
            return await self._serve(request, call_id)

    async def _serve(self, request: web.Request, call_id: str) -> web.StreamResponse:
        host = self._host
        problem = bearer_problem(request, host.api_key)
        if problem is None and not call_id:
            problem = missing("call_id")
        call = host.calls.get(call_id)
        if problem is None:
            problem = not_found(call_id) if call is None else call.attach_problem()
        fault = host.faults.take_sideband(call_id) if problem is None else None
        if fault is not None and fault.refuse_status is not None:
            message = "The server is temporarily unable to accept the connection."
            problem = ApiError(fault.refuse_status, message, type="server_error")
        conversation = host.conversations.get(call_id)
        if problem is not None or call is None or conversation is None:
            status = problem.status if problem is not None else 404
            logger.info("sideband refused", extra={"status": status})
            return error_response(problem or not_found(call_id))

        ws = web.WebSocketResponse(max_msg_size=0, compress=False, timeout=2.0)
        await ws.prepare(request)
        drop_after = fault.drop_after_events if fault is not None else None
        drop_code = fault.close_code if fault is not None else ABNORMAL_CLOSURE
        socket = Socket(ws, request.transport, drop_after, drop_code)
        if not call.is_live:
            await ws.close(code=NORMAL_CLOSURE)
            return ws
        call.attaches += 1
        conversation.channel.attach(socket)
        logger.info("sideband attached", extra={"attach": call.attaches})
        conversation.attached(socket)
        try:
            async for frame in ws:
                if call.attach_problem() is not None:
                    continue  # the call is over: late client events change nothing
                if frame.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                    payload: str | bytes = frame.data
                    text = payload if isinstance(payload, str) else payload.decode(errors="replace")
                    try:
                        conversation.receive(text)
                    except Exception:
                        logger.exception("sideband event failed")
        finally:
            conversation.channel.release(socket)
            logger.info("sideband closed", extra={"code": ws.close_code})
        return ws
