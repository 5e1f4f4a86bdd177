"""Intake: verified, exactly-once handling of ``realtime.call.incoming`` webhooks.

The path of one delivery: size and encoding checks, signature verification with the SDK,
parsing into the SDK's typed event, checks of its untrusted values (:mod:`.sanitize`), an
atomic claim in the store (which also records the routing decision, taken inside the claim
so that the concurrency cap holds across workers), the call action through
:mod:`callcenter.control`, and the hand-off of an accepted call to the runtime, which
records the answer and holds the call off the webhook's thread. Redeliveries,
concurrent copies included, are answered 2xx and cause no second action. Every refusal is a
4xx with the JSON error, one WARNING line and no side effect.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pydantic
from openai.types.webhooks import RealtimeCallIncomingWebhookEvent

from callcenter.call.escalation import transfer_chain
from callcenter.call.runtime import Runtime
from callcenter.call.session import LiveCall
from callcenter.call.vocabulary import CallOutcome
from callcenter.call.writes import Answered, Ended
from callcenter.config.loader import Config, session_config, transfer_session_config
from callcenter.control import CallControl
from callcenter.errors import (
    CallApiError,
    CallConflictError,
    CallGoneError,
    SignatureError,
    StoreError,
)
from callcenter.intake import routing, sanitize
from callcenter.intake.verify import WebhookVerifier
from callcenter.observability import metrics
from callcenter.observability.logs import bind_call
from callcenter.sip.invite import IncomingCall
from callcenter.store import ClaimResult, DecisionRecord, NewCall, Store
from callcenter.tools.registry import ToolRegistry

logger = logging.getLogger(__name__)

CALL_INCOMING = "realtime.call.incoming"

# A claim older than this whose call is still "ringing" belongs to a worker that died
# mid-decision; a redelivery may take it over. Longer than any control deadline.
STALE_CLAIM = timedelta(seconds=15)

# Signature failures that are malformed requests (400); the others are refusals (401).
MALFORMED_REASONS = ("unsigned", "malformed", "bad_timestamp")


@dataclass(frozen=True, slots=True)
class WebhookReply:
    """What the webhook endpoint answers: an HTTP status and a JSON body."""

    status: int
    body: dict[str, Any]


def error_reply(status: int, code: str, message: str) -> WebhookReply:
    """A JSON error reply in the house shape ``{"error": {"code", "message"}}``."""
    return WebhookReply(status, {"error": {"code": code, "message": message}})


class Intake:
    """Handles one webhook delivery at a time; safe to share between threads."""

    def __init__(
        self,
        *,
        config: Config,
        store: Store,
        control: CallControl,
        runtime: Runtime,
        verifier: WebhookVerifier,
        owner: str,
        clock: Callable[[], datetime],
        tools: ToolRegistry | None = None,
    ) -> None:
        self._config = config
        self._tools = tools
        self._store = store
        self._control = control
        self._runtime = runtime
        self._verifier = verifier
        self._owner = owner
        self._clock = clock

    def handle(self, body: bytes, headers: Mapping[str, str]) -> WebhookReply:
        """Verify, claim, decide and act on one delivery; never raises for bad input."""
        received = time.perf_counter()
        reply = self._handle(body, headers, received)
        self._answered_delivery(reply, time.perf_counter() - received)
        return reply

    def refuse(self, status: int, code: str, message: str) -> WebhookReply:
        """Answer a delivery refused before :meth:`handle` (its body too large, cut short)."""
        reply = error_reply(status, code, message)
        self._answered_delivery(reply, 0.0)
        return reply

    def _answered_delivery(self, reply: WebhookReply, seconds: float) -> None:
        metrics.webhook_handled(*_delivery_result(reply), seconds)
        if 400 <= reply.status < 500:
            error = reply.body["error"]
            logger.warning(
                "webhook refused",
                extra={"status": reply.status, "code": error["code"], "reason": error["message"]},
            )

    def _handle(self, body: bytes, headers: Mapping[str, str], received: float) -> WebhookReply:
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            return error_reply(400, "invalid_encoding", "The body is not UTF-8.")
        try:
            webhook_id = self._verifier.verify(body, headers)
        except SignatureError as exc:
            metrics.webhook_unverified(exc.reason)
            if exc.reason in MALFORMED_REASONS:
                return error_reply(400, exc.reason, "The webhook signature headers are invalid.")
            return error_reply(401, exc.reason, "The webhook signature does not verify.")
        if sanitize.json_too_deep(body):
            return error_reply(
                400, "too_deep", f"The body nests deeper than {sanitize.MAX_JSON_DEPTH} levels."
            )
        try:
            payload = json.loads(body)
        except ValueError:
            return error_reply(400, "invalid_json", "The body is not JSON.")
        event_type = payload.get("type") if isinstance(payload, dict) else None
        if not sanitize.valid_event_type(event_type):
            return error_reply(400, "invalid_event", "The event has no valid type.")
        if event_type != CALL_INCOMING:
            logger.info("webhook ignored", extra={"webhook_id": webhook_id, "type": event_type})
            return WebhookReply(200, {"status": "ignored", "type": event_type})
        try:
            event = RealtimeCallIncomingWebhookEvent.model_validate(payload)
        except pydantic.ValidationError as exc:
            return error_reply(400, "invalid_event", _first_error(exc))
        if not sanitize.valid_event_id(event.id):
            return error_reply(400, "invalid_event", "The event id is malformed.")
        if not sanitize.valid_call_id(event.data.call_id):
            return error_reply(
                400, "invalid_call_id", "The call_id is not an OpenAI call id (rtc_...)."
            )
        with bind_call(event.data.call_id):
            return self._incoming(webhook_id, event, received)

    def _incoming(
        self, webhook_id: str, event: RealtimeCallIncomingWebhookEvent, received: float
    ) -> WebhookReply:
        data = event.data
        headers, cleaned = sanitize.clean_sip_headers((h.name, h.value) for h in data.sip_headers)
        call = IncomingCall.from_sip_headers(
            data.call_id, headers, sanitize.media_security(data.sip_media_security)
        )
        now = self._clock()
        decisions: list[routing.Decision] = []

        def decide(active_calls: int) -> DecisionRecord:
            decision = routing.decide(call, self._config, now, active_calls)
            decisions.append(decision)
            return _record_of(decision)

        try:
            result, _ = self._store.claim_call(
                _new_call(call, webhook_id, event.id, now),
                decide,
                owner=self._owner,
                stale_after=STALE_CLAIM,
                now=now,
            )
        except StoreError:
            logger.exception("store unavailable; asking for redelivery")
            return error_reply(503, "store_unavailable", "The store is unavailable; retry later.")
        if result is ClaimResult.DUPLICATE:
            logger.info("webhook duplicate", extra={"webhook_id": webhook_id})
            return WebhookReply(200, {"status": "duplicate", "call_id": call.call_id})
        decision = decisions[-1]
        acting = time.perf_counter()
        outcome = self._act(call.call_id, decision)
        if outcome.final:  # else the runtime holds the call and records how it ends
            metrics.call_outcome(decision.route_name, outcome)
        fields = {
            "webhook_id": webhook_id,
            "decision": decision.kind,
            "route": decision.route_name,
            "outcome": outcome,
            "act_ms": round((acting - received) * 1000, 2),
            "ms": round((time.perf_counter() - received) * 1000, 1),
            "reason": decision.reason,
            "cleaned_headers": cleaned,
        }
        logger.info("webhook handled", extra=fields)
        return WebhookReply(
            200,
            {
                "status": "handled",
                "call_id": call.call_id,
                "decision": decision.kind,
                "route": decision.route_name,
                "outcome": outcome,
            },
        )

    def _act(self, call_id: str, decision: routing.Decision) -> CallOutcome:
        """Execute the decision; return the outcome recorded for the call."""
        try:
            if isinstance(decision, routing.Reject):
                self._control.reject(call_id, decision.status_code)
                return self._over(call_id, CallOutcome.REJECTED)
            if isinstance(decision, routing.Accept):
                accept = session_config(decision.route, self._config, self._tools)
                sent = time.monotonic()  # the caller's wait for the greeting starts here
                self._control.accept(call_id, accept)
                self._answered(call_id, CallOutcome.ACCEPTED)
                route = decision.route
                self._runtime.start(
                    LiveCall(call_id, route.name, greeting=route.greeting, accepted_at=sent)
                )
                return CallOutcome.ACCEPTED
            return self._refer(call_id, decision)
        except CallGoneError:
            logger.warning("caller hung up before the answer")
            return self._over(call_id, CallOutcome.CALLER_GONE, "the call no longer exists (404)")
        except CallConflictError:
            logger.warning("call already answered elsewhere")
            return self._over(call_id, CallOutcome.CONFLICT, "the call was already answered (409)")
        except CallApiError as exc:
            logger.error(
                "call action failed",
                extra={"verb": exc.verb, "status": exc.status, "error": str(exc)},
            )
            return self._over(call_id, CallOutcome.FAILED, str(exc))

    def _refer(self, call_id: str, decision: routing.Refer) -> CallOutcome:
        """Accept briefly (a REFER needs an established call); the runtime then transfers it."""
        self._control.accept(call_id, transfer_session_config(decision.route, self._config))
        self._answered(call_id, CallOutcome.TRANSFERRING)
        self._runtime.start(
            LiveCall(
                call_id,
                decision.route_name,
                handoff=decision.handoff,
                transfer_to=transfer_chain(self._config.targets, decision.target),
            )
        )
        return CallOutcome.TRANSFERRING

    def _answered(self, call_id: str, outcome: CallOutcome) -> None:
        """Have the runtime's recorder write the answer, off this thread.

        The webhook is answered without waiting for that write: the claim stands, so a
        redelivery meanwhile is a duplicate, and the call cannot be taken over as ringing
        before ``LeaseTimings.ringing_bound``. The recorder writes the answer before
        anything the call records, retrying (and keeping it on disk) through an outage.
        """
        self._runtime.record(Answered(call_id, outcome, self._clock()))

    def _over(self, call_id: str, outcome: CallOutcome, error: str | None = None) -> CallOutcome:
        at = self._clock()
        try:
            self._store.record_outcome(call_id, outcome=outcome, error=error, at=at)
        except StoreError as exc:
            logger.warning("outcome kept for later", extra={"error": str(exc), "outcome": outcome})
            self._runtime.record(Ended(call_id, outcome, at, error=error))
        return outcome


def _new_call(call: IncomingCall, webhook_id: str, event_id: str, now: datetime) -> NewCall:
    return NewCall(
        call_id=call.call_id,
        webhook_id=webhook_id,
        event_id=event_id,
        received_at=now,
        caller_number=call.caller_number,
        caller_uri=call.caller.uri if call.caller else None,
        caller_name=call.caller.display_name if call.caller else None,
        dialled_number=call.dialled_number,
        dialled_uri=call.dialled.uri if call.dialled else None,
        sip_headers=list(call.headers),
        media_security=call.media_security,
    )


def _record_of(decision: routing.Decision) -> DecisionRecord:
    kind, route, reason = decision.kind, decision.route_name, decision.reason
    if isinstance(decision, routing.Reject):
        return DecisionRecord(kind, route, reason, decision.status_code, None)
    if isinstance(decision, routing.Refer):
        return DecisionRecord(kind, route, reason, None, decision.target_uri)
    return DecisionRecord(kind, route, reason, None, None)


def _delivery_result(reply: WebhookReply) -> tuple[str, str]:
    """The event type and result (one of ``metrics.DELIVERY_RESULTS``) of an answered delivery."""
    status = reply.body.get("status")
    if reply.status == 200 and status in ("handled", "duplicate"):
        return CALL_INCOMING, str(status)
    if reply.status == 200:
        event_type = reply.body.get("type")
        return (event_type if isinstance(event_type, str) else "unknown"), "ignored"
    if reply.status == 503:
        return CALL_INCOMING, "store_unavailable"
    code = reply.body.get("error", {}).get("code")
    return (CALL_INCOMING if code == "invalid_event" else "unknown"), "invalid"


def _first_error(exc: pydantic.ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"])
    return f"The event is malformed at {where}: {error['msg']}."
