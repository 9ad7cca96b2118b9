"""Tenants cannot see each other: two tenants' admin keys made by the operator, tenant A's
sessions, profile, memories, documents and keys, and every way tenant B might reach them
(read, list, modify, delete, retrieve through a chat). Each attempt must answer 404 (or
leave A's data out of a list), never 403, so existence does not leak. Then scopes, revoked
and expired keys, and the per-session rate limit.

Usage: tenant_isolation.py BASE_URL OPERATOR_KEY

Prints "ok: ..." and exits 0 when every check passes.
"""

import sys
import time

import httpx
from openai import OpenAI, RateLimitError

from common import error_code

SECRET = "The vault code for Acme is ZEBRA-4471."


def main(base_url: str, operator_key: str) -> None:
    op = httpx.Client(base_url=base_url, timeout=60,
                      headers={"Authorization": f"Bearer {operator_key}"})
    anon = httpx.Client(base_url=base_url, timeout=60)
    assert error_code(anon.get("/sessions")) == "invalid_api_key"

    keys = {}
    for tenant in ("acme", "globex"):
        r = op.post("/admin/tenants", json={"id": tenant, "name": tenant.title()})
        assert r.status_code == 201, r.text
        r = op.post("/admin/keys", json={"tenant": tenant, "name": "admin",
                                         "scopes": ["realtime", "chat", "audio", "admin"]})
        assert r.status_code == 201, r.text
        made = r.json()
        assert made["tenant"] == tenant and made["key"].startswith("sb_"), made
        keys[tenant] = made
    assert op.post("/admin/tenants", json={"id": "acme"}).status_code == 409
    assert error_code(op.post("/admin/tenants", json={"id": "Bad Id"})) == "invalid_value"

    a = httpx.Client(base_url=base_url, timeout=60,
                     headers={"Authorization": f"Bearer {keys['acme']['key']}"})
    b = httpx.Client(base_url=base_url, timeout=60,
                     headers={"Authorization": f"Bearer {keys['globex']['key']}"})
    a_sdk = OpenAI(base_url=base_url, api_key=keys["acme"]["key"])
    b_sdk = OpenAI(base_url=base_url, api_key=keys["globex"]["key"])

    # Tenant A's data: a document, a chat session, a profile, a memory.
    r = a.post("/knowledge/documents", data={"id": "vault"},
               files={"file": ("vault.md", f"# Vault\n\n{SECRET}\n".encode(), "text/markdown")})
    assert r.status_code == 201, r.text
    a_sdk.chat.completions.create(
        model="scripted", user="wile", metadata={"session_id": "a-1"},
        messages=[{"role": "user", "content": "A asks: my name is Wile. What is the vault code?"}])
    r = a.put("/users/wile/profile", json={"attributes": {"tier": "gold"}})
    assert r.status_code == 200, r.text
    deadline = time.time() + 20
    while a.get("/sessions/a-1").status_code != 200:
        assert time.time() < deadline, "A's session was not stored"
        time.sleep(0.1)

    # Tenant B reads, lists, modifies and deletes: 404 or absent, never A's data.
    assert error_code(b.get("/sessions/a-1")) == "session_not_found"
    assert error_code(b.delete("/sessions/a-1")) == "session_not_found"
    assert all(s["id"] != "a-1" for s in b.get("/sessions").json()["data"])
    assert b.get("/users/wile/profile").status_code == 404, b.get("/users/wile/profile").text
    assert b.get("/users/wile/memories").json()["data"] == []
    r = b.delete("/users/wile/memories")
    assert r.status_code in (200, 404), r.text
    assert all(d["id"] != "vault" for d in b.get("/knowledge/documents").json()["data"])
    assert b.delete("/knowledge/documents/vault").status_code == 404
    hits = b.post("/knowledge/search", json={"query": "vault code Acme", "k": 5}).json()
    assert all("ZEBRA" not in h["text"] for h in hits["data"]), hits
    assert all(k["id"] != keys["acme"]["id"] for k in b.get("/admin/keys").json()["data"])
    assert error_code(b.delete(f"/admin/keys/{keys['acme']['id']}")) == "api_key_not_found"
    # Naming A's tenant is the same 404 as a tenant that does not exist.
    assert error_code(b.get("/admin/keys", params={"tenant": "acme"})) == "tenant_not_found"
    assert error_code(b.post("/admin/keys", json={"tenant": "acme", "name": "x"})) == \
        "tenant_not_found"
    # Tenants are the operator's: B may not list them.
    assert b.get("/admin/tenants").status_code == 403
    # B asks the same question in a chat: A's document is not retrieved (checked in the
    # prompt by the Rust side), and B's session with A's id is B's own.
    b_sdk.chat.completions.create(
        model="scripted", user="wile", metadata={"session_id": "a-1"},
        messages=[{"role": "user", "content": "B asks: what is the vault code?"}])
    a_session = a.get("/sessions/a-1").json()
    assert all("B asks" not in m["content"] for m in a_session["messages"]), a_session
    # ...and A still has everything.
    assert a.get("/users/wile/profile").json()["attributes"]["tier"] == "gold"
    assert any(d["id"] == "vault" for d in a.get("/knowledge/documents").json()["data"])

    # Scopes: a chat-only key chats but cannot administer, nor mint wider keys.
    r = a.post("/admin/keys", json={"name": "widget", "scopes": ["chat"]})
    assert r.status_code == 201, r.text
    chat_only = r.json()
    c = httpx.Client(base_url=base_url, timeout=60,
                     headers={"Authorization": f"Bearer {chat_only['key']}"})
    assert error_code(c.get("/sessions")) == "insufficient_scope"
    assert c.get("/models").status_code == 200
    assert error_code(c.post("/admin/keys", json={"name": "x"})) == "insufficient_scope"
    listed = {k["id"]: k for k in a.get("/admin/keys").json()["data"]}
    assert listed[chat_only["id"]]["scopes"] == ["chat"], listed
    assert all("key" not in k and "secret_sha256" not in k for k in listed.values()), listed

    # Revoked: refused at once. Expired: refused once its time is up.
    assert a.delete(f"/admin/keys/{chat_only['id']}").json()["revoked"] is True
    assert c.get("/models").status_code == 401
    r = a.post("/admin/keys", json={"name": "brief", "scopes": ["chat"], "expires_in_seconds": 1})
    brief = r.json()
    time.sleep(1.2)
    r = httpx.get(f"{base_url}/models", headers={"Authorization": f"Bearer {brief['key']}"})
    assert r.status_code == 401 and "expired" in r.json()["error"]["message"], r.text

    # The per-session limit (set to 3 per 10 s by the test): the 4th message is a 429 with
    # Retry-After, in OpenAI's shape, which the SDK raises as RateLimitError.
    fast = OpenAI(base_url=base_url, api_key=keys["globex"]["key"], max_retries=0)
    for i in range(3):
        fast.chat.completions.create(model="scripted", metadata={"session_id": "burst"},
                                     messages=[{"role": "user", "content": f"burst {i}"}])
    try:
        fast.chat.completions.create(model="scripted", metadata={"session_id": "burst"},
                                     messages=[{"role": "user", "content": "burst 3"}])
        raise SystemExit("the 4th message in 10 s was not limited")
    except RateLimitError as e:
        assert int(e.response.headers["retry-after"]) >= 1, e.response.headers
        assert e.response.json()["error"]["code"] == "rate_limit_exceeded"
    # Another session is not affected.
    fast.chat.completions.create(model="scripted", metadata={"session_id": "other"},
                                 messages=[{"role": "user", "content": "hello"}])
    print("ok: tenants isolated (404s), scopes, revocation, expiry and session limits hold")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
