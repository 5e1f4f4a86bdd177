"""A call's transcript: caller and agent lines in conversation order, matched by ``item_id``.

The caller's words arrive as input transcriptions that run beside the conversation: one can
complete after the agent's answer has started, and two can complete out of order. So each
line carries ``seq``, the position of its item in the conversation (the order of
``conversation.item.added``), and readers sort by it; a line is emitted as soon as its
text is known. Pure: :class:`Transcript` turns facts into :class:`TranscriptLine` values.

A long call stays small: an item's position is kept until its line is written, then only
the last :data:`WRITTEN_KEPT` written ids are remembered (to drop a late duplicate, such as
the ``conversation.item.done`` of a line already given).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from openai.types.realtime import ConversationItem, RealtimeResponse

__all__ = ["Speaker", "Transcript", "TranscriptLine"]

Speaker = Literal["caller", "agent"]

# How many written item ids are remembered (the oldest is forgotten first).
WRITTEN_KEPT: Final = 32


@dataclass(frozen=True, slots=True)
class TranscriptLine:
    """One line: ``status`` is ``completed``, ``interrupted`` (agent cut off) or ``failed``."""

    seq: int
    item_id: str
    speaker: Speaker
    text: str
    status: Literal["completed", "interrupted", "failed"] = "completed"

    def as_data(self) -> dict[str, object]:
        """The line as JSON-ready data (a ``transcript`` call event)."""
        return {
            "seq": self.seq,
            "item_id": self.item_id,
            "speaker": self.speaker,
            "text": self.text,
            "status": self.status,
        }


class Transcript:
    """Positions of the conversation's items and the lines already given out."""

    def __init__(self) -> None:
        self._seq: dict[str, int] = {}  # items placed whose line is not written yet
        self._written: dict[str, None] = {}  # the last WRITTEN_KEPT written, oldest first
        self._last = 0  # the last position given out
        self._lines = 0

    def __len__(self) -> int:
        return self._lines

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._seq or item_id in self._written

    def item_added(self, item: ConversationItem) -> bool:
        """An item joined the conversation (its place is fixed now, its text maybe not).

        True for a caller's spoken turn seen for the first time.
        """
        if item.type != "message" or item.id is None or item.role == "system":
            return False
        if item.id in self._written:  # a late event of an item whose line was given
            return False
        new = item.id not in self._seq
        self._position(item.id)
        spoken = item.role == "user" and any(c.type == "input_audio" for c in item.content)
        return new and spoken

    def agent_lines(self, response: RealtimeResponse) -> list[TranscriptLine]:
        """The agent's messages in a finished in-band response (cut short unless completed)."""
        lines: list[TranscriptLine] = []
        interrupted = response.status != "completed"
        for item in response.output or ():
            if item.type == "message" and item.role == "assistant" and item.id:
                text = " ".join(c.transcript or c.text or "" for c in item.content)
                line = self.agent_said(item.id, text, interrupted=interrupted)
                if line is not None:
                    lines.append(line)
        return lines

    def caller_said(self, item_id: str, text: str) -> TranscriptLine | None:
        """The transcription of a caller's turn completed; None when empty or already given."""
        if not text.strip():
            self._forget(item_id)
            return None
        return self._line(item_id, "caller", text.strip(), "completed")

    def caller_unheard(self, item_id: str) -> TranscriptLine | None:
        """The transcription of a caller's turn failed: a line with no words."""
        return self._line(item_id, "caller", "", "failed")

    def agent_said(self, item_id: str, text: str, *, interrupted: bool) -> TranscriptLine | None:
        """An agent message finished (``interrupted``: the caller cut it short)."""
        if not text.strip():
            self._forget(item_id)
            return None
        return self._line(
            item_id, "agent", text.strip(), "interrupted" if interrupted else "completed"
        )

    def _line(
        self,
        item_id: str,
        speaker: Speaker,
        text: str,
        status: Literal["completed", "interrupted", "failed"],
    ) -> TranscriptLine | None:
        if item_id in self._written:
            return None
        seq = self._position(item_id)
        self._forget(item_id)
        self._lines += 1
        return TranscriptLine(seq, item_id, speaker, text, status)

    def _position(self, item_id: str) -> int:
        seq = self._seq.get(item_id)
        if seq is None:
            self._last += 1
            seq = self._seq[item_id] = self._last
        return seq

    def _forget(self, item_id: str) -> None:
        """The item's line is settled: drop its position, remember it among the last written."""
        self._seq.pop(item_id, None)
        self._written[item_id] = None
        if len(self._written) > WRITTEN_KEPT:
            del self._written[next(iter(self._written))]

    # -- resuming in another process (see callcenter.call.resume) ------------------------------

    def state(self) -> tuple[int, dict[str, int], int]:
        """The last position, the items placed but not written yet, the number of lines."""
        return self._last, dict(self._seq), self._lines

    def restore(self, last: int, pending: dict[str, int], lines: int) -> None:
        """Go on from :meth:`state` taken in another process."""
        self._last, self._lines = last, lines
        self._seq.update(pending)
