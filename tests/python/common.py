"""Helpers shared by the client scripts."""

import asyncio
import base64
import time
import wave

import httpx
import openai


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


def refused(param: str, what: str, call) -> None:
    """`call()` must be refused with a 400 naming `param`; `what` is what it asked for."""
    try:
        call()
    except openai.BadRequestError as e:
        assert e.status_code == 400 and e.body["param"] == param, e.body
        return
    raise SystemExit(f"{what} was accepted")


def read_pcm24k(wav_path: str) -> bytes:
    """The frames of a 24 kHz 16-bit mono WAV."""
    with wave.open(wav_path, "rb") as w:
        assert w.getframerate() == 24000 and w.getsampwidth() == 2 and w.getnchannels() == 1
        return w.readframes(w.getnframes())


async def stream_pcm(conn, pcm: bytes) -> None:
    """Send 24 kHz PCM16 as `input_audio_buffer.append`s of 100 ms, at real-time pace."""
    frame = 24000 * 2 // 10
    start = time.monotonic()
    for i in range(0, len(pcm), frame):
        await conn.input_audio_buffer.append(audio=base64.b64encode(pcm[i:i + frame]).decode())
        delay = start + (i // frame + 1) * 0.1 - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
