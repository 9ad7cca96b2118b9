"""Stored conversations, profiles and memory through the official `openai` SDK (chat) and
plain HTTP (httpx): the same script runs against a gateway on SQLite and on PostgreSQL.

Usage: sessions_api.py BASE_URL

Prints "ok: ..." and exits 0 when every check passes.
"""

import sys
import time

import httpx
from openai import OpenAI

from common import error_code, metadata_of


def poll(fetch, done, what, timeout=20.0):
    """Writes are queued: wait until `done(fetch())` holds."""
    deadline = time.time() + timeout
    while True:
        value = fetch()
        if done(value):
            return value
        if time.time() > deadline:
            raise SystemExit(f"{what} not reached; last: {value}")
        time.sleep(0.1)


def main(base_url: str) -> None:
    client = OpenAI(base_url=base_url, api_key="sk-local")
    http = httpx.Client(base_url=base_url, timeout=30)

    def chat(session, text, user="ada"):
        return client.chat.completions.create(
            model="scripted", user=user, metadata={"session_id": session},
            messages=[{"role": "user", "content": text}])

    r = chat("s-1", "Hi. My name is Ada and I am vegetarian.")
    assert metadata_of(r)["session_id"] == "s-1", r.model_extra
    reply = r.choices[0].message.content
    chat("s-1", "What should I eat tonight?")

    session = poll(lambda: http.get("/sessions/s-1").json(),
                   lambda s: len(s.get("messages", [])) == 4, "four stored messages")
    assert session["object"] == "session" and session["channel"] == "chat", session
    assert session["user_id"] == "ada" and session["persona"] == "default", session
    roles = [m["role"] for m in session["messages"]]
    assert roles == ["user", "assistant", "user", "assistant"], roles
    assert session["messages"][0]["content"] == "Hi. My name is Ada and I am vegetarian.", session
    assert session["messages"][1]["content"] == reply and not session["messages"][1]["truncated"]
    assert [m["seq"] for m in session["messages"]] == [1, 2, 3, 4], session

    listed = http.get("/sessions").json()["data"]
    assert any(s["id"] == "s-1" and s["message_count"] == 4 for s in listed), listed

    # Learned off the hot path: the name into the profile, the statement into memory.
    profile = poll(lambda: http.get("/users/ada/profile"), lambda r: r.status_code == 200, "a profile")
    assert profile.json()["attributes"]["name"] == "Ada", profile.text
    memories = poll(lambda: http.get("/users/ada/memories").json()["data"], lambda m: len(m) >= 1, "a memory")
    assert memories[0]["kind"] == "fact" and "vegetarian" in memories[0]["text"], memories

    # A new conversation: profile and memory reach the prompt (checked by the Rust test).
    r = chat("s-2", "Can you recommend a vegetarian dish for me?")
    meta = metadata_of(r)
    assert meta["degraded"] == "false", meta

    r = http.put("/users/ada/profile", json={"attributes": {"name": "Ada", "tier": "gold"}})
    assert r.status_code == 200 and r.json()["attributes"]["tier"] == "gold", r.text
    assert http.get("/users/ada/profile").json()["attributes"] == {"name": "Ada", "tier": "gold"}
    r = http.put("/users/ada/profile", json={"attributes": ["not", "an", "object"]})
    assert r.status_code == 422 and error_code(r) == "invalid_value", r.text
    r = http.get("/users/nobody/profile")
    assert r.status_code == 404 and error_code(r) == "profile_not_found", r.text

    # The caller hangs up after the first chunk: the turn is stored, marked truncated.
    with httpx.stream("POST", base_url + "/chat/completions", timeout=30, json={
            "model": "scripted", "stream": True, "user": "bo", "metadata": {"session_id": "s-3"},
            "messages": [{"role": "user", "content": "Tell me a long story."}]}) as s:
        for line in s.iter_lines():
            if line.startswith("data: ") and '"content"' in line:
                break
    cut = poll(lambda: http.get("/sessions/s-3").json(),
               lambda s: len(s.get("messages", [])) == 2, "the hung-up turn")
    assert cut["messages"][1]["truncated"] is True, cut
    assert len(cut["messages"][1]["content"]) < len(reply), cut

    # A long chat-completion session (the client sends only its newest message each turn)
    # gets a rolling summary of its older messages, also kept as the user's memory of it.
    for i in range(8):
        chat("s-long", f"Question {i}: what is on the menu today?", user="cy")
    for extra in range(6):
        if http.get("/sessions/s-long").json()["summarized_messages"] > 0:
            break
        time.sleep(1.0)  # the summary is written off the hot path, after the writes land
        chat("s-long", f"One more question, number {extra}.", user="cy")
    long = poll(lambda: http.get("/sessions/s-long").json(),
                lambda s: s["summarized_messages"] > 0, "a rolling summary")
    # A roll folds in everything but the 6 newest messages stored when it ran (at least 10).
    assert 10 <= long["summarized_messages"] <= len(long["messages"]) - 6 and long["summary"], long
    assert len(long["messages"]) >= 16, long
    memories = poll(lambda: http.get("/users/cy/memories").json()["data"],
                    lambda m: any(x["kind"] == "summary" for x in m), "the summary memory")
    assert sum(m["kind"] == "summary" for m in memories) == 1, memories
    chat("s-long", "And what about dessert?", user="cy")  # its prompt: checked by the Rust test

    r = http.delete("/sessions/s-2")
    assert r.status_code == 200 and r.json()["deleted"] is True, r.text
    r = http.delete("/sessions/s-2")
    assert r.status_code == 404 and error_code(r) == "session_not_found", r.text
    r = http.get("/sessions", params={"limit": 0})
    assert r.status_code == 400 and r.json()["error"]["param"] == "limit", r.text

    r = http.delete("/users/ada/memories")
    assert r.status_code == 200 and r.json()["deleted"] >= 1, r.text

    # The audit log: administrative actions, newest first, filtered by kind and limited.
    events = poll(lambda: http.get("/admin/audit").json()["data"],
                  lambda e: any(x["kind"] == "memory.forgotten" for x in e), "audit events")
    kinds = [e["kind"] for e in events]
    assert kinds.index("memory.forgotten") < kinds.index("session.deleted") < kinds.index("profile.replaced"), kinds
    assert all(e["object"] == "audit_event" for e in events), events
    deleted = http.get("/admin/audit", params={"kind": "session."}).json()["data"]
    assert [e["kind"] for e in deleted] == ["session.deleted"], deleted
    assert deleted[0]["session_id"] == "s-2" and deleted[0]["detail"] == {"id": "s-2"}, deleted
    first = http.get("/admin/audit", params={"limit": 1}).json()["data"]
    assert len(first) == 1 and first[0]["id"] == events[0]["id"], first
    r = http.get("/admin/audit", params={"limit": 5000})
    assert r.status_code == 400 and r.json()["error"]["param"] == "limit", r.text
    print("ok: sessions, messages, rolling summaries, profile, memory and audit stored and served")


if __name__ == "__main__":
    main(sys.argv[1])
