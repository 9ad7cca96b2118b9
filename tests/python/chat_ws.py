"""The text-chat WebSocket (`/v1/chat/ws`) with a real WebSocket client (`websockets`, which
the openai SDK's realtime extra brings): a streamed reply, a bad message answered with an
error while the connection stays open, and a client-side tool round.

Usage: chat_ws.py WS_URL HTTP_BASE_URL

Prints "ok: ..." and exits 0 when every check passes.
"""

import asyncio
import json
import sys
import time

import httpx
import websockets


async def until_complete(ws):
    tokens, events = [], []
    while True:
        msg = json.loads(await asyncio.wait_for(ws.recv(), 30))
        events.append(msg)
        if msg["type"] == "token":
            tokens.append(msg["content"])
        if msg["type"] in ("message_complete", "tool_call", "error"):
            return "".join(tokens), msg, events


async def main(ws_url: str, base_url: str) -> None:
    async with websockets.connect(ws_url + "?user=cy") as ws:
        hello = json.loads(await ws.recv())
        assert hello["type"] == "session" and hello["session_id"].startswith("sess_"), hello
        session_id = hello["session_id"]

        await ws.send(json.dumps({"type": "message", "content": "What is the weather like?"}))
        text, done, _ = await until_complete(ws)
        assert done["type"] == "message_complete", done
        assert done["content"] == text and "Paris" in text, done
        assert done["finish_reason"] == "stop" and done["metadata"]["degraded"] == "false", done

        # Bad input: an error in the protocol's shape, and the conversation goes on.
        await ws.send("{not json")
        err = json.loads(await ws.recv())
        assert err["type"] == "error" and err["code"] == "invalid_json", err
        await ws.send(json.dumps({"type": "shout"}))
        err = json.loads(await ws.recv())
        assert err["code"] == "unknown_type", err

        # A tool round: the model calls the client's function, the result continues the reply.
        await ws.send(json.dumps({"type": "configure", "tools": [{"type": "function", "function": {
            "name": "get_order", "parameters": {"type": "object", "properties": {"id": {"type": "string"}}}}}]}))
        await ws.send(json.dumps({"type": "message", "content": "Where is my order?"}))
        _, call, _ = await until_complete(ws)
        assert call["type"] == "tool_call" and call["name"] == "get_order", call
        assert json.loads(call["arguments"]) == {"id": "A17"}, call
        await ws.send(json.dumps({"type": "message", "content": "hello?"}))
        err = json.loads(await ws.recv())
        assert err["code"] == "tool_result_expected", err
        await ws.send(json.dumps({"type": "tool_result", "call_id": call["call_id"], "content": "shipped"}))
        text, done, _ = await until_complete(ws)
        assert done["type"] == "message_complete" and text == "The tool says shipped.", (text, done)

    # The conversation is stored, tool call and result included.
    http = httpx.Client(base_url=base_url, timeout=30)
    deadline = time.time() + 20
    while True:
        s = http.get(f"/sessions/{session_id}").json()
        if len(s.get("messages", [])) == 4 and s.get("tool_calls") and s["tool_calls"][0]["result"]:
            break
        assert time.time() < deadline, s
        time.sleep(0.1)
    assert s["channel"] == "chat_ws" and s["user_id"] == "cy", s
    assert [m["role"] for m in s["messages"]] == ["user", "assistant", "user", "assistant"], s
    assert s["tool_calls"][0]["name"] == "get_order" and s["tool_calls"][0]["result"] == "shipped", s

    # The closed conversation is summarised into the user's memory.
    deadline = time.time() + 30
    while True:
        memories = http.get("/users/cy/memories").json()["data"]
        summaries = [m for m in memories if m["kind"] == "summary"]
        if summaries:
            break
        assert time.time() < deadline, memories
        time.sleep(0.2)
    assert summaries[0]["session_id"] == session_id and summaries[0]["text"], summaries
    print("ok: chat websocket streams, refuses bad input, runs a tool round, is stored and summarised")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
