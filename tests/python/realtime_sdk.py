"""The official `openai` Python SDK's realtime client against a running switchboard.

Usage: realtime_sdk.py BASE_URL WAV  (WAV: 24 kHz 16-bit mono speech followed by silence)

Streams the WAV as audio appends at real-time pace and checks the user transcript, the
assistant transcript, audio deltas and response.done, then switches the session to
semantic_vad, asks for a text response with metadata, and an out-of-band response with an
input of its own (item_reference). Exits non-zero on any failure.
"""

import asyncio
import base64
import sys

from openai import AsyncOpenAI

from common import read_pcm24k, stream_pcm


async def main(base_url: str, wav_path: str) -> None:
    pcm = read_pcm24k(wav_path)

    client = AsyncOpenAI(base_url=base_url, api_key="sk-local")
    events = []
    async with client.realtime.connect(model="switchboard") as conn:
        await conn.session.update(session={
            "type": "realtime",
            "instructions": "Answer briefly.",
            "output_modalities": ["audio"],
            "audio": {
                "input": {
                    "format": {"type": "audio/pcm", "rate": 24000},
                    "turn_detection": {"type": "server_vad", "threshold": 0.5,
                                       "prefix_padding_ms": 300, "silence_duration_ms": 500},
                },
                "output": {"format": {"type": "audio/pcm", "rate": 24000}},
            },
        })

        sender = asyncio.create_task(stream_pcm(conn, pcm))
        async def collect() -> None:
            async for event in conn:
                events.append(event)
                if event.type == "error":
                    raise SystemExit(f"error event: {event.error}")
                if event.type == "response.done":
                    return
        await asyncio.wait_for(collect(), timeout=60)
        await sender

        # semantic_vad as the SDK's own types read it back.
        await conn.session.update(session={
            "type": "realtime",
            "audio": {"input": {"turn_detection": {"type": "semantic_vad", "eagerness": "high"}}},
        })
        async def updated():
            async for event in conn:
                if event.type == "error":
                    raise SystemExit(f"error event: {event.error}")
                if event.type == "session.updated":
                    return event
        semantic = (await asyncio.wait_for(updated(), timeout=10)).session.audio.input.turn_detection
        assert (semantic.type, semantic.eagerness) == ("semantic_vad", "high"), semantic

        # A response's metadata is shown back on it, the gateway's own keys beside it.
        await conn.conversation.item.create(item={
            "type": "message", "role": "user",
            "content": [{"type": "input_text", "text": "And tomorrow?"}],
        })
        await conn.response.create(response={"output_modalities": ["text"],
                                             "metadata": {"topic": "weather"}})
        async def tagged():
            created = None
            async for event in conn:
                if event.type == "error":
                    raise SystemExit(f"error event: {event.error}")
                if event.type == "response.created":
                    created = event
                if event.type == "response.done":
                    return created, event
        created, done_tagged = await asyncio.wait_for(tagged(), timeout=30)
        assert created.response.metadata == {"topic": "weather"}, created.response.metadata
        assert done_tagged.response.metadata["topic"] == "weather", done_tagged.response.metadata
        assert "persona" in done_tagged.response.metadata, done_tagged.response.metadata

        # Out of band, with a context of its own: the user's last message by reference.
        last_user = next(e.item.id for e in reversed(events) if e.type == "conversation.item.added"
                         and getattr(e.item, "role", None) == "user")
        await conn.response.create(response={
            "conversation": "none", "output_modalities": ["text"],
            "metadata": {"topic": "side"},
            "input": [{"type": "item_reference", "id": last_user}],
        })
        created, side = await asyncio.wait_for(tagged(), timeout=30)
        assert created.response.conversation_id is None, created.response
        assert side.response.conversation_id is None, side.response
        assert side.response.metadata["topic"] == "side", side.response.metadata
        assert side.response.status == "completed", side.response.status
        assert side.response.output[0].content[0].text, side.response.output

    kinds = [e.type for e in events]
    assert "session.created" in kinds and "session.updated" in kinds, kinds
    user = " ".join(e.transcript for e in events
                    if e.type == "conversation.item.input_audio_transcription.completed").lower()
    assert "weather" in user, f"user transcript: {user!r}"
    said = "".join(e.delta for e in events if e.type == "response.output_audio_transcript.delta")
    assert said.startswith("Sure."), f"assistant transcript: {said!r}"
    audio = b"".join(base64.b64decode(e.delta) for e in events if e.type == "response.output_audio.delta")
    assert len(audio) > 24000 * 2, f"only {len(audio)} bytes of reply audio"
    done = [e for e in events if e.type == "response.done"][0]
    assert done.response.status == "completed", done.response.status
    assert done.response.output[0].content[0].transcript == said
    print(f"ok: user={user!r} assistant={len(said)} chars, {len(audio) / 48000:.1f} s of audio")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
