"""MCP tool calls in the emulated model: approval requests, approved and denied calls."""

from __future__ import annotations

from openai import AsyncOpenAI

from callcenter.emulator import Emulator, McpListFailed, ModelCallMcp

from .helpers import answered, read_until, types_of

CRM_TOOL = {
    "type": "mcp",
    "server_label": "crm",
    "server_url": "https://crm.example.com/mcp",
    "require_approval": "always",
}


def _approval(request_id: str, approve: bool) -> dict[str, object]:
    return {
        "type": "conversation.item.create",
        "item": {
            "type": "mcp_approval_response",
            "id": "mcpresp_" + request_id[-8:],
            "approval_request_id": request_id,
            "approve": approve,
            "reason": "policy",
        },
    }


async def test_a_call_needing_approval_ends_its_response_with_a_request(
    emulator: Emulator, client: AsyncOpenAI
) -> None:
    """The response holds an mcp_approval_request with the server, tool and arguments."""
    step = ModelCallMcp("crm", "lookup_customer", {"phone": "+14155550123"}, output='{"id": 7}')
    call = await answered(emulator, client, (step,), tools=[CRM_TOOL])
    async with client.realtime.connect(call_id=call.call_id) as connection:
        await read_until(connection, "session.created")
        await emulator.wait_for(lambda: emulator.conversations[call.call_id].replies)
        await connection.response.create()
        received = await read_until(connection, "response.done")
    done = received[-1]
    assert done.type == "response.done"
    (request,) = done.response.output or []
    assert request.type == "mcp_approval_request"
    assert (request.server_label, request.name) == ("crm", "lookup_customer")
    assert request.arguments == '{"phone": "+14155550123"}'


async def test_an_approved_call_runs_in_the_next_response(
    emulator: Emulator, client: AsyncOpenAI
) -> None:
    """After an approving mcp_approval_response, the next response runs the mcp_call."""
    step = ModelCallMcp("crm", "lookup_customer", output='{"id": 7}')
    call = await answered(emulator, client, (step,), tools=[CRM_TOOL])
    async with client.realtime.connect(call_id=call.call_id) as connection:
        await read_until(connection, "session.created")
        await emulator.wait_for(lambda: emulator.conversations[call.call_id].replies)
        await connection.response.create()
        done = (await read_until(connection, "response.done"))[-1]
        assert done.type == "response.done"
        request = (done.response.output or [])[0]
        await connection.send(_approval(request.id or "", True))  # type: ignore[arg-type]
        await connection.response.create()
        received = await read_until(connection, "response.done")
    kinds = types_of(received)
    assert "response.mcp_call.completed" in kinds
    final = received[-1]
    assert final.type == "response.done"
    mcp_call = (final.response.output or [])[0]
    assert mcp_call.type == "mcp_call"
    assert (mcp_call.output, mcp_call.approval_request_id) == ('{"id": 7}', request.id)


async def test_a_denied_call_never_runs(emulator: Emulator, client: AsyncOpenAI) -> None:
    """After a denial the next response only says the tool cannot be used."""
    step = ModelCallMcp("crm", "delete_customer")
    call = await answered(emulator, client, (step,), tools=[CRM_TOOL])
    async with client.realtime.connect(call_id=call.call_id) as connection:
        await read_until(connection, "session.created")
        await emulator.wait_for(lambda: emulator.conversations[call.call_id].replies)
        await connection.response.create()
        done = (await read_until(connection, "response.done"))[-1]
        assert done.type == "response.done"
        request = (done.response.output or [])[0]
        await connection.send(_approval(request.id or "", False))  # type: ignore[arg-type]
        await connection.response.create()
        received = await read_until(connection, "response.done")
    assert "response.mcp_call.completed" not in types_of(received)
    final = received[-1]
    assert final.type == "response.done"
    assert [item.type for item in final.response.output or []] == ["message"]


async def test_an_answer_to_an_unknown_request_is_an_error(
    emulator: Emulator, client: AsyncOpenAI
) -> None:
    """An mcp_approval_response naming no request of the conversation is refused."""
    call = await answered(emulator, client, tools=[CRM_TOOL])
    async with client.realtime.connect(call_id=call.call_id) as connection:
        await read_until(connection, "session.created")
        await connection.send(_approval("mcpr_nothing", True))  # type: ignore[arg-type]
        error = (await read_until(connection, "error"))[-1]
    assert error.type == "error"
    assert error.error.param == "item.approval_request_id"


async def test_a_call_without_approval_runs_at_once(
    emulator: Emulator, client: AsyncOpenAI
) -> None:
    """ModelCallMcp(approval=False) runs the call in the first response."""
    step = ModelCallMcp("crm", "lookup_customer", output='{"id": 7}', approval=False)
    call = await answered(emulator, client, (step,), tools=[CRM_TOOL])
    async with client.realtime.connect(call_id=call.call_id) as connection:
        await read_until(connection, "session.created")
        await emulator.wait_for(lambda: emulator.conversations[call.call_id].replies)
        await connection.response.create()
        received = await read_until(connection, "response.done")
    final = received[-1]
    assert final.type == "response.done"
    assert [item.type for item in final.response.output or []] == ["mcp_call", "message"]


async def test_a_failing_mcp_call_sends_mcp_call_failed(
    emulator: Emulator, client: AsyncOpenAI
) -> None:
    """ModelCallMcp(error=...) ends with response.mcp_call.failed and an item with its error."""
    step = ModelCallMcp("crm", "lookup_customer", approval=False, error="CRM is down")
    call = await answered(emulator, client, (step,), tools=[CRM_TOOL])
    async with client.realtime.connect(call_id=call.call_id) as connection:
        await read_until(connection, "session.created")
        await emulator.wait_for(lambda: emulator.conversations[call.call_id].replies)
        await connection.response.create()
        received = await read_until(connection, "response.done")
    kinds = types_of(received)
    assert "response.mcp_call.failed" in kinds
    assert "response.mcp_call.completed" not in kinds
    (item,) = [i for i in received[-1].response.output or [] if i.type == "mcp_call"]
    assert item.output is None
    assert item.error is not None
    assert item.error.model_dump() == {"type": "tool_execution_error", "message": "CRM is down"}


async def test_a_server_whose_tools_cannot_be_listed(
    emulator: Emulator, client: AsyncOpenAI
) -> None:
    """McpListFailed: an mcp_list_tools item, then in_progress and failed naming it."""
    call = await answered(emulator, client, (McpListFailed("crm"),), tools=[CRM_TOOL])
    async with client.realtime.connect(call_id=call.call_id) as connection:
        await read_until(connection, "session.created")
        received = await read_until(connection, "mcp_list_tools.failed")
    added, progress, failed = received[-3:]
    assert added.type == "conversation.item.added"
    assert added.item.type == "mcp_list_tools"
    assert (progress.type, progress.item_id, failed.item_id) == (
        "mcp_list_tools.in_progress",
        added.item.id,
        added.item.id,
    )
