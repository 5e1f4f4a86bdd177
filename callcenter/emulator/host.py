"""What the endpoints need of the emulator: its records, its faults and the moves of a call.

Each set of handlers (``rest``, ``sideband``, ``control``, ``webhook_endpoints``) acts on an
:class:`EmulatorHost`, never on another set of handlers; ``server.Emulator`` is the host and
wires them onto one aiohttp app.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from callcenter.emulator.conversation import Conversation
from callcenter.emulator.faults import FaultPlan, TransferFault
from callcenter.emulator.script import Step
from callcenter.emulator.state import EmulatedCall, RestRequest, WebhookAttempt
from callcenter.emulator.webhook_registry import WebhookEndpoints
from callcenter.emulator.webhooks import Delivery, MediaSecurity, RedeliveryPolicy


class EmulatorHost(Protocol):
    """The emulator as its endpoints see it."""

    # what the controller must present, and how webhooks are delivered
    api_key: str
    redelivery: RedeliveryPolicy
    # records and faults
    calls: dict[str, EmulatedCall]
    conversations: dict[str, Conversation]
    faults: FaultPlan
    webhook_endpoints: WebhookEndpoints
    webhook_attempts: list[WebhookAttempt]
    responses_requests: list[dict[str, Any]]  # bodies of POST /v1/responses, in order
    structured_answers: list[Any]  # what the next structured responses answer (tests queue)

    def webhook_targets(self, event_type: str) -> list[str]:
        """Where an event of ``event_type`` is delivered."""

    def record_rest(self, request: RestRequest) -> None:
        """Keep one answered calls-endpoint request."""

    def call_accepted(self, call: EmulatedCall) -> None:
        """The call was accepted: open its session (and start its script)."""

    def call_over(self, call: EmulatedCall, *, by_caller: bool) -> None:
        """The call ended: close its sideband."""

    def refer_relayed(self, call: EmulatedCall, target_uri: str, script: TransferFault) -> None:
        """A REFER got its 200: the target answers (the call leaves) or not, as scripted."""

    def place_call(
        self,
        from_number: str = ...,
        to_number: str = ...,
        caller_name: str | None = None,
        headers: Iterable[tuple[str, str]] | Mapping[str, str] = (),
        script: Iterable[Step] = (),
        call_id: str | None = None,
        delivery: Delivery | None = None,
        server_timings: str | None = None,
        media_security: MediaSecurity = "srtp",
    ) -> EmulatedCall:
        """Ring a new call and deliver its ``realtime.call.incoming`` webhook (and the
        ``live.transport.incoming`` announcing the same call)."""

    def caller_hangs_up(self, call_id: str) -> bool:
        """The caller hangs up; False if the call was already over."""

    def send_webhook(
        self,
        event_type: str,
        data: Mapping[str, Any] | None = None,
        *,
        delivery: Delivery | None = None,
        url: str | None = None,
    ) -> dict[str, Any]:
        """Deliver any webhook event; the event sent."""
