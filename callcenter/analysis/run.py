"""One analysis: the transcript to the Responses API with Structured Outputs, JSON back."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import openai

from callcenter.analysis.config import Analysis
from callcenter.analysis.schema import instructions, json_schema
from callcenter.errors import CallcenterError
from callcenter.store import CallEvent

__all__ = ["AnalysisError", "analyse", "transcript_text"]


class AnalysisError(CallcenterError):
    """The model's answer could not be had, or was not the requested JSON."""


def transcript_text(lines: Sequence[CallEvent]) -> str:
    """The transcript as ``speaker: text`` lines."""
    return "\n".join(
        f"{line.data.get('speaker', '?')}: {line.data.get('text', '')}" for line in lines
    )


def analyse(client: openai.OpenAI, analysis: Analysis, transcript: str) -> dict[str, Any]:
    """Ask ``analysis.model`` for the analysis of ``transcript``; AnalysisError on failure.

    The client's own timeout and retries apply (``OpenAI(timeout=…, max_retries=…)``).
    """
    try:
        response = client.responses.create(
            model=analysis.model,
            instructions=instructions(analysis),
            input=transcript or "(the call had no words)",
            text={
                "format": {
                    "type": "json_schema",
                    "name": "call_analysis",
                    "schema": json_schema(analysis),
                    "strict": True,
                }
            },
            store=False,
        )
    except openai.OpenAIError as exc:
        raise AnalysisError(f"the Responses API failed: {type(exc).__name__}") from exc
    try:
        result = json.loads(response.output_text)
    except ValueError as exc:
        raise AnalysisError("the answer was not JSON") from exc
    if not isinstance(result, dict):
        raise AnalysisError("the answer was not a JSON object")
    return result
