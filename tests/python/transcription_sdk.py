"""A Realtime transcription session through the official `openai` Python SDK.

Usage: transcription_sdk.py BASE_URL WAV  (WAV: 24 kHz 16-bit mono, two spoken sentences
with silence after each)

Connects with `intent=transcription`, configures the session as the SDK's transcription
type (prompt, keywords, token log probabilities), streams the WAV at real-time pace, and
checks: each sentence is committed and transcribed (delta, then completed, for the same item,
with log probabilities whose tokens spell it), the session reports its type, prompt and
include, nothing is answered, and `response.create` gets a clear error while
the session goes on.
"""

import asyncio
import sys

from openai import AsyncOpenAI

from common import read_pcm24k, stream_pcm


async def main(base_url: str, wav_path: str) -> None:
    pcm = read_pcm24k(wav_path)

    client = AsyncOpenAI(base_url=base_url, api_key="sk-local")
    events = []
    async with client.realtime.connect(extra_query={"intent": "transcription"}) as conn:
        await conn.session.update(session={
            "type": "transcription",
            "audio": {
                "input": {
                    "format": {"type": "audio/pcm", "rate": 24000},
                    "transcription": {"model": "gpt-4o-transcribe", "language": "en",
                                      "prompt": "A caller talks to a bank.",
                                      "keywords": ["billing", "account"]},
                    "turn_detection": {"type": "server_vad", "silence_duration_ms": 500},
                },
            },
            "include": ["item.input_audio_transcription.logprobs"],
        })

        sender = asyncio.create_task(stream_pcm(conn, pcm))

        async def collect(until) -> None:
            async for event in conn:
                events.append(event)
                if until(event):
                    return

        completed = lambda: [e for e in events
                             if e.type == "conversation.item.input_audio_transcription.completed"]
        await asyncio.wait_for(collect(lambda e: len(completed()) == 2), timeout=60)
        await sender
        # Asking for a response is refused in the protocol's shape; the session goes on.
        await conn.response.create()
        await asyncio.wait_for(collect(lambda e: e.type == "error"), timeout=10)

    kinds = [e.type for e in events]
    created = next(e for e in events if e.type == "session.created")
    assert created.session.type == "transcription", created.session
    updated = next(e for e in events if e.type == "session.updated")
    assert updated.session.type == "transcription", updated.session
    assert updated.session.audio.input.transcription.prompt == "A caller talks to a bank.", updated.session
    assert updated.session.include == ["item.input_audio_transcription.logprobs"], updated.session
    committed = [e.item_id for e in events if e.type == "input_audio_buffer.committed"]
    assert len(committed) == 2, kinds
    for c in completed():
        assert c.item_id in committed, (c.item_id, committed)
        deltas = "".join(e.delta for e in events
                         if e.type == "conversation.item.input_audio_transcription.delta"
                         and e.item_id == c.item_id)
        assert deltas == c.transcript, (deltas, c.transcript)
        # The tokens' bytes spell the transcript; each log probability is at most 0.
        assert c.logprobs and all(lp.logprob <= 0 for lp in c.logprobs), c
        spelled = bytes(b for lp in c.logprobs for b in lp.bytes).decode()
        assert spelled.split() == c.transcript.split(), (spelled, c.transcript)
    first, second = (c.transcript.lower() for c in completed())
    assert "billing" in first, f"first transcript: {first!r}"
    assert "account" in second, f"second transcript: {second!r}"
    assert not any(k.startswith("response.") for k in kinds), kinds
    error = events[-1].error
    assert error.code == "transcription_session", error
    print(f"ok: {first!r} / {second!r}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
