"""The conversation items a call adds, and the one client event that adds them. Pure.

The session adds four kinds of item to the conversation: a note about a key the caller
pressed (a user message), a supervisor's instruction (a system message), a tool's output
and an MCP approval answer. Each goes out as one ``conversation.item.create``, built by
:func:`add_item`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from openai.types.realtime import ConversationItemCreateEventParam, ConversationItemParam
from openai.types.realtime.realtime_conversation_item_function_call_output_param import (
    RealtimeConversationItemFunctionCallOutputParam,
)
from openai.types.realtime.realtime_conversation_item_system_message_param import (
    RealtimeConversationItemSystemMessageParam,
)
from openai.types.realtime.realtime_conversation_item_user_message_param import (
    RealtimeConversationItemUserMessageParam,
)

from callcenter.call.actions import Send

__all__ = ["add_item", "function_output", "system_message", "user_note"]


def add_item(item: ConversationItemParam, event_id: str) -> Send:
    """The ``conversation.item.create`` that adds ``item`` at the end of the conversation."""
    event: ConversationItemCreateEventParam = {
        "type": "conversation.item.create",
        "event_id": event_id,
        "item": item,
    }
    return Send(event)


def user_note(text: str) -> RealtimeConversationItemUserMessageParam:
    """A user message item saying ``text`` (what the caller did, told to the model)."""
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def system_message(text: str) -> RealtimeConversationItemSystemMessageParam:
    """A system message item saying ``text`` (an instruction to the model)."""
    return {"type": "message", "role": "system", "content": [{"type": "input_text", "text": text}]}


def function_output(
    call_id: str, output: str | Mapping[str, object]
) -> RealtimeConversationItemFunctionCallOutputParam:
    """The ``function_call_output`` item answering the function call ``call_id``."""
    text = output if isinstance(output, str) else json.dumps(dict(output), ensure_ascii=False)
    return {"type": "function_call_output", "call_id": call_id, "output": text}
