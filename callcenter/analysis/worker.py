"""The analysis worker: one thread per serving process, analysing calls that ended.

Like the delivery worker, any process analyses any call: a claim lapses if its holder dies.
A failed attempt is tried again after ``retry`` seconds, up to ``attempts`` times; the
saved result is shown on the call and sent as ``call.analyzed``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

import openai

from callcenter.analysis.config import Analysis
from callcenter.analysis.run import AnalysisError, analyse, transcript_text
from callcenter.store import Store
from callcenter.store.analyses import AnalysisStore

__all__ = ["AnalysisWorker"]

logger = logging.getLogger(__name__)


class AnalysisWorker:
    """Analyses ended calls of the routes in ``analyses`` until stopped."""

    def __init__(
        self,
        store: Store,
        client: openai.OpenAI,
        analyses: Mapping[str, Analysis],
        *,
        clock: Callable[[], datetime],
        # timings
        poll: float = 1.0,  # seconds between two looks when idle
        hold: float = 120.0,  # seconds a claim lasts (longer than the client's retries)
        retry: float = 30.0,  # seconds before a failed analysis is tried again
        attempts: int = 3,  # tries before an analysis is given up
    ) -> None:
        self._store = store
        self._analyses = AnalysisStore(store.engine, store.subscribers)
        self._client = client
        self._by_route = analyses
        self._clock = clock
        self._poll = poll
        self._hold = hold
        self._retry = retry
        self._attempts = attempts
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Analyse in a background thread."""
        self._thread = threading.Thread(target=self._run, name="callcenter-analysis", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop after the analysis in flight (its claim lapses if the process dies first)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def run_once(self) -> bool:
        """Analyse one waiting call; False when none waits."""
        now = self._clock()
        call = self._analyses.claim(now=now, until=now + timedelta(seconds=self._hold))
        if call is None:
            return False
        fields = {"call_id": call.call_id, "route": call.route}
        analysis = self._by_route.get(call.route or "")
        try:
            if analysis is None:
                raise AnalysisError("the route has no [routes.analysis] any more")
            text = transcript_text(self._store.transcript(call.call_id))
            result = analyse(self._client, analysis, text)
        except AnalysisError as exc:
            tries = call.analysis_attempts or 1
            give_up = analysis is None or tries >= self._attempts
            retry_at = self._clock() + timedelta(seconds=self._retry)
            self._analyses.failed(call.call_id, give_up=give_up, retry_at=retry_at)
            logger.warning(
                "analysis failed", extra={**fields, "reason": str(exc), "given_up": give_up}
            )
            return True
        self._analyses.save(call, result, at=self._clock())
        logger.info("call analysed", extra=fields)
        return True

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self.run_once()
            except Exception:  # a thread boundary: log it, and look again later
                logger.exception("analysis pass failed")
                busy = False
            if not busy:
                self._stop.wait(self._poll)
