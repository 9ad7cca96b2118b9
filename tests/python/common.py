"""Helpers shared by the client scripts."""

import httpx


def metadata_of(obj) -> dict:
    """Our `metadata` on a completion or chunk (a typed field in some SDK versions)."""
    meta = getattr(obj, "metadata", None) or (obj.model_extra or {}).get("metadata")
    assert meta, obj
    return dict(meta)


def error_code(r: httpx.Response) -> str:
    """The `code` of an error in OpenAI's shape, after checking the shape."""
    body = r.json()
    assert set(body["error"]) >= {"message", "type", "param", "code"}, body
    return body["error"]["code"]
