"""The official `openai` Python SDK declaring a remote MCP server in a Realtime session.

Usage: mcp_sdk.py BASE_URL MCP_URL TOKEN

The session names the server (with its bearer token); the SDK's own event types read the
listing, the approval request the model's coupon call raises, and, once approved, the
mcp_call and the reply that uses its output. Exits non-zero on any failure.
"""

import asyncio
import sys

from openai import AsyncOpenAI


async def until(conn, kind: str, seen: list):
    async for event in conn:
        seen.append(event)
        if event.type == "error":
            raise SystemExit(f"error event: {event.error}")
        if event.type == kind:
            return event


async def main(base_url: str, mcp_url: str, token: str) -> None:
    client = AsyncOpenAI(base_url=base_url, api_key="sk-local")
    seen = []
    async with client.realtime.connect(model="switchboard") as conn:
        await conn.session.update(session={
            "type": "realtime",
            "output_modalities": ["text"],
            "tools": [{"type": "mcp", "server_label": "orders", "server_url": mcp_url,
                       "authorization": token, "allowed_tools": ["order_status", "issue_coupon"]}],
        })
        await asyncio.wait_for(until(conn, "mcp_list_tools.completed", seen), timeout=30)
        listing = [e.item for e in seen if e.type == "conversation.item.added"
                   and e.item.type == "mcp_list_tools"]
        done = await asyncio.wait_for(until(conn, "conversation.item.done", seen), timeout=10)
        assert listing and done.item.type == "mcp_list_tools", seen
        names = [t.name for t in done.item.tools]
        assert names == ["order_status", "issue_coupon"], names

        await conn.conversation.item.create(item={
            "type": "message", "role": "user",
            "content": [{"type": "input_text", "text": "Can I have a coupon?"}]})
        await conn.response.create()
        done = await asyncio.wait_for(until(conn, "response.done", seen), timeout=30)
        asked = [o for o in done.response.output if o.type == "mcp_approval_request"]
        assert len(asked) == 1 and asked[0].name == "issue_coupon", done.response.output
        assert asked[0].server_label == "orders"

        await conn.conversation.item.create(item={
            "type": "mcp_approval_response", "approval_request_id": asked[0].id, "approve": True})
        await conn.response.create()
        done = await asyncio.wait_for(until(conn, "response.done", seen), timeout=30)
        calls = [o for o in done.response.output if o.type == "mcp_call"]
        assert len(calls) == 1, done.response.output
        call = calls[0]
        assert call.approval_request_id == asked[0].id and call.error is None, call
        assert "SAVE10" in call.output, call.output
        said = "".join(c.text for o in done.response.output if o.type == "message" for c in o.content)
        assert "SAVE10" in said, said
        kinds = [e.type for e in seen]
        for kind in ("response.mcp_call.in_progress", "response.mcp_call.completed",
                     "response.mcp_call_arguments.done"):
            assert kind in kinds, kinds
    print(f"ok: listed {names}, approved {call.name}, said {said!r}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3]))
