"""Call control: accept, reject, refer and hang up through the SDK's ``realtime.calls``.

The SDK client runs with ``max_retries=0``; retries are ours, under a tenacity policy that
retries only what is safe to repeat (429 honouring Retry-After, 5xx, connection errors and
timeouts) and gives up at a total deadline, so that the webhook that triggered the action is
always answered within a few seconds. 400/401/403/404/409 are never retried: 404 becomes
:class:`CallGoneError` (the caller hung up), 409 :class:`CallConflictError`. A REFER is
tried at most twice (one quick retry): a refused REFER rarely goes through on the same
target a moment later, and the call's fallback target is waiting.
"""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import openai
from openai.types.realtime import CallAcceptParams
from tenacity import RetryCallState, Retrying, retry_if_exception, wait_exponential_jitter

from callcenter.errors import CallApiError, CallConflictError, CallGoneError
from callcenter.observability import metrics

logger = logging.getLogger(__name__)

REFER_ATTEMPTS = 2  # a REFER and at most one quick retry


@dataclass(frozen=True, slots=True)
class ControlPolicy:
    """Timing of control calls, in seconds."""

    deadline: float = 5.0  # total time for one action, retries included
    attempt_timeout: float = 2.0  # one HTTP request
    backoff_initial: float = 0.05
    backoff_max: float = 1.0


def is_retryable(exc: BaseException) -> bool:
    """True for failures that a retry may cure: 429, 5xx, connection errors and timeouts."""
    if isinstance(exc, openai.APIConnectionError):  # includes APITimeoutError
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code == 429 or exc.status_code >= 500
    return False


def retry_after_seconds(exc: BaseException) -> float | None:
    """The server's requested wait from Retry-After / retry-after-ms, if it gave one."""
    if not isinstance(exc, openai.APIStatusError):
        return None
    headers = exc.response.headers
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value.strip() else None
        if parsed is None:
            return None
        return max(0.0, parsed.timestamp() - time.time())


class CallControl:
    """Executes call actions against OpenAI (or the emulator, through ``OPENAI_BASE_URL``).

    ``clock`` (monotonic seconds) measures the deadline and ``sleep`` waits between
    attempts; tests pass a fake pair so that no test waits for a real backoff.
    """

    def __init__(
        self,
        client: openai.OpenAI,
        policy: ControlPolicy | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client.with_options(max_retries=0)
        self._policy = policy or ControlPolicy()
        self._clock = clock
        self._sleep = sleep
        # backoff_initial * 2**n, plus up to backoff_initial of jitter, at most backoff_max.
        self._backoff = wait_exponential_jitter(
            multiplier=self._policy.backoff_initial,
            jitter=self._policy.backoff_initial,
            max=self._policy.backoff_max,
        )

    @property
    def policy(self) -> ControlPolicy:
        """The timing this instance applies."""
        return self._policy

    def accept(self, call_id: str, session: CallAcceptParams) -> None:
        """Accept a ringing call with the given session config.

        The config goes as the request's JSON as it is (``extra_body``), not through the
        SDK's per-call transform of ``CallAcceptParams``: that walk of the TypedDict costs
        ~0.9 ms of CPU per accept, on the path the caller waits on, and changes nothing in
        a plain-JSON config with no aliased keys (``tests/test_control.py`` holds that).
        """
        body: dict[str, Any] = dict(session)
        kind = body.pop("type")
        self._run(
            "accept",
            call_id,
            lambda timeout: self._client.realtime.calls.accept(
                call_id, type=kind, extra_body=body, timeout=timeout
            ),
        )

    def reject(self, call_id: str, status_code: int) -> None:
        """Reject a ringing call with a SIP final status code."""
        self._run(
            "reject",
            call_id,
            lambda timeout: self._client.realtime.calls.reject(
                call_id, status_code=status_code, timeout=timeout
            ),
        )

    def refer(self, call_id: str, target_uri: str) -> None:
        """Transfer an accepted call with a SIP REFER to ``target_uri``."""
        self._run(
            "refer",
            call_id,
            lambda timeout: self._client.realtime.calls.refer(
                call_id, target_uri=target_uri, timeout=timeout
            ),
            attempts=REFER_ATTEMPTS,
        )

    def hangup(self, call_id: str) -> None:
        """Hang up an accepted call."""
        self._run(
            "hangup",
            call_id,
            lambda timeout: self._client.realtime.calls.hangup(call_id, timeout=timeout),
        )

    def _run(
        self,
        verb: str,
        call_id: str,
        request: Callable[[float], object],
        *,
        attempts: int | None = None,
    ) -> None:
        """Run ``request`` under the retry policy, at most ``attempts`` times if given."""
        policy = self._policy
        started = self._clock()

        def remaining() -> float:
            return policy.deadline - (self._clock() - started)

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            requested = retry_after_seconds(exc) if exc else None
            delay = requested if requested is not None else self._backoff(state)
            if delay >= remaining():
                # Waiting would overrun the deadline: stop now instead of sleeping in vain.
                return remaining() + 1
            return delay

        retrying = Retrying(
            retry=retry_if_exception(is_retryable),
            wait=wait,
            stop=lambda state: (
                state.upcoming_sleep >= remaining()  # it would overrun
                or (attempts is not None and state.attempt_number >= attempts)
            ),
            sleep=self._sleep,
            reraise=True,
            before_sleep=lambda state: logger.warning(
                "control retry",
                extra={
                    "verb": verb,
                    "attempt": state.attempt_number,
                    "error": _describe(state.outcome.exception() if state.outcome else None),
                },
            ),
        )
        unanswered = False  # an earlier attempt got no answer: it may have gone through

        def attempt_once(timeout: float) -> None:
            nonlocal unanswered
            began = time.monotonic()
            try:
                request(timeout)
            except Exception as exc:
                metrics.control_call(verb, _status_label(exc), time.monotonic() - began)
                unanswered = unanswered or isinstance(exc, openai.APIConnectionError)
                raise
            metrics.control_call(verb, "200", time.monotonic() - began)

        try:
            for attempt in retrying:
                with attempt:
                    attempt_once(max(0.05, min(policy.attempt_timeout, remaining())))
        except (openai.NotFoundError, openai.ConflictError) as exc:
            if not (unanswered and _done_already(verb, exc)):
                raise _call_error(verb, call_id, exc) from exc
            # Our unanswered attempt went through; this retry only found it done.
            logger.warning(
                "control retry found the action done; taking the unanswered attempt as done",
                extra={"verb": verb, "status": exc.status_code},
            )
            return
        except openai.APIStatusError as exc:
            raise _call_error(verb, call_id, exc) from exc
        except openai.APIConnectionError as exc:
            raise CallApiError(verb, call_id, None, _describe(exc)) from exc
        ms = round((self._clock() - started) * 1000, 1)
        logger.debug("control done", extra={"verb": verb, "ms": ms})


def _done_already(verb: str, exc: openai.APIStatusError) -> bool:
    """Whether ``exc`` is what a retry gets when the earlier attempt of ``verb`` succeeded.

    A second accept finds the call accepted (409); a second reject, refer or hangup finds
    it no longer live (404).
    """
    return exc.status_code == (409 if verb == "accept" else 404)


def _call_error(verb: str, call_id: str, exc: openai.APIStatusError) -> CallApiError:
    if exc.status_code == 404:
        return CallGoneError(verb, call_id, 404, _describe(exc))
    if exc.status_code == 409:
        return CallConflictError(verb, call_id, 409, _describe(exc))
    return CallApiError(verb, call_id, exc.status_code, _describe(exc))


def _status_label(exc: Exception) -> str:
    """The ``status`` label of a failed request: its HTTP status, or timeout / error."""
    if isinstance(exc, openai.APIStatusError):
        return str(exc.status_code)
    if isinstance(exc, openai.APITimeoutError):
        return "timeout"
    return "error"


def _describe(exc: BaseException | None) -> str:
    """A one-line description of an SDK error, without request details or keys."""
    if exc is None:
        return "no error"
    if isinstance(exc, openai.APIStatusError):
        return f"HTTP {exc.status_code}" + (f" {exc.code}" if exc.code else "")
    if isinstance(exc, openai.APITimeoutError):
        return "timed out"
    if isinstance(exc, openai.APIConnectionError):
        return "connection failed"
    return type(exc).__name__
