"""What a call cost: token counts summed over its responses and input transcriptions.

Every ``response.done`` carries the usage of that response (each one re-reads the whole
conversation, so later turns cost more); input transcription is billed apart, in tokens or
in seconds of audio. :class:`Usage` adds them up; pure.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from openai.types.realtime import RealtimeResponseUsage
from openai.types.realtime.conversation_item_input_audio_transcription_completed_event import (
    Usage as TranscriptionUsage,
)

__all__ = ["Usage"]


@dataclass(slots=True)
class Usage:
    """Running totals for one call."""

    responses: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    cached_tokens: int = 0
    input_audio_tokens: int = 0
    input_text_tokens: int = 0
    output_audio_tokens: int = 0
    output_text_tokens: int = 0
    transcription_tokens: int = 0
    transcription_seconds: float = 0.0

    def add_response(self, usage: RealtimeResponseUsage | None) -> None:
        """Count one finished response (``usage`` may be missing, e.g. when cancelled early)."""
        self.responses += 1
        if usage is None:
            return
        self.input_tokens += usage.input_tokens or 0
        self.output_tokens += usage.output_tokens or 0
        self.total_tokens += usage.total_tokens or 0
        details = usage.input_token_details
        if details is not None:
            self.cached_tokens += details.cached_tokens or 0
            self.input_audio_tokens += details.audio_tokens or 0
            self.input_text_tokens += details.text_tokens or 0
        output = usage.output_token_details
        if output is not None:
            self.output_audio_tokens += output.audio_tokens or 0
            self.output_text_tokens += output.text_tokens or 0

    def add_transcription(self, usage: TranscriptionUsage | None) -> None:
        """Count one input transcription, billed in tokens or in seconds."""
        if usage is None:
            return
        if usage.type == "tokens":
            self.transcription_tokens += usage.total_tokens
        else:
            self.transcription_seconds += usage.seconds

    def as_data(self) -> dict[str, int | float]:
        """The totals as JSON-ready data."""
        return asdict(self)
