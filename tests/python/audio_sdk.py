"""The official `openai` Python SDK against /v1/audio/speech and /v1/audio/transcriptions.

Usage: audio_sdk.py BASE_URL WORKDIR

Speech is synthesized (WAV, PCM, MP3, Ogg Opus, FLAC, each streamed; SSE), then transcribed back
from WAV, FLAC, Ogg Vorbis (converted with sox), M4A (AAC) and WebM (Opus) (converted with ffmpeg),
MP3, Ogg Opus and our FLAC in every response format, streamed and not (a
44 s file streams its first window's text before the second is decoded); an undecodable and a too-large
upload get 400 and 413 in OpenAI's error shape. Word timestamps are checked against a pause. An
English-only model refuses to translate. Exits non-zero on any failure.
"""

import base64
import json
import os
import re
import string
import subprocess
import sys
import time

import openai
from openai import OpenAI

from common import refused

SENTENCE = "Your table for two is ready at eight tonight."


def spoken(text: str) -> str:
    """Lower case with the digit Whisper sometimes writes instead of the word ("for 2")."""
    return re.sub(r"\b2\b", "two", text.lower())


def streamed(client: OpenAI, fmt: str, content_type: str, text: str) -> bytes:
    """Speech in `fmt`, read as it streams: it must come in two pieces or more."""
    with client.audio.speech.with_streaming_response.create(
            model="tts-1", voice="alloy", input=text, response_format=fmt) as r:
        assert r.headers["content-type"] == content_type, (fmt, r.headers)
        pieces = [p for p in r.iter_bytes() if p]
    assert len(pieces) >= 2, f"{fmt} arrives in more than one piece"
    return b"".join(pieces)


def main(base_url: str, workdir: str) -> None:
    client = OpenAI(base_url=base_url, api_key="sk-local")

    wav = client.audio.speech.create(model="tts-1", voice="alloy", input=SENTENCE,
                                     response_format="wav").content
    assert wav[:4] == b"RIFF" and wav[8:12] == b"WAVE", wav[:16]
    seconds = (len(wav) - 44) / 48000
    assert 1.5 < seconds < 6, seconds
    pcm = client.audio.speech.create(model="tts-1", voice="alloy", input=SENTENCE,
                                     response_format="pcm", speed=1.5).content
    assert 0 < len(pcm) < len(wav) - 44, (len(pcm), len(wav))  # faster speech is shorter

    streamed(client, "wav", "audio/wav", SENTENCE + " " + SENTENCE)

    refused("response_format", "aac", lambda: client.audio.speech.create(
        model="tts-1", voice="alloy", input=SENTENCE, response_format="aac"))

    # MP3 out (LAME), streamed frame by frame, and back in through transcription (symphonia).
    mp3 = streamed(client, "mp3", "audio/mpeg", SENTENCE + " " + SENTENCE)
    assert mp3[0] == 0xFF and mp3[1] & 0xE0 == 0xE0, mp3[:4]  # an MPEG frame sync
    assert len(mp3) < 2 * len(wav) / 4, (len(mp3), len(wav))  # compressed (two sentences)
    t = client.audio.transcriptions.create(model="whisper-1", file=("speech.mp3", mp3))
    assert spoken(t.text).count("table for two") == 2, ("mp3", t.text)

    # Ogg Opus out, streamed page by page, and back in through transcription (our Ogg writer
    # and reader, libopus).
    ogg = streamed(client, "opus", "audio/ogg", SENTENCE + " " + SENTENCE)
    assert ogg[:4] == b"OggS" and b"OpusHead" in ogg[:64], ogg[:64]
    assert len(ogg) < 2 * len(wav) / 4, (len(ogg), len(wav))  # compressed (two sentences)
    t = client.audio.transcriptions.create(model="whisper-1", file=("speech.opus", ogg))
    assert spoken(t.text).count("table for two") == 2, ("opus", t.text)

    # FLAC out (our encoder), streamed frame by frame; the reference decoder (`flac -t`, every
    # frame's CRC) accepts it and sox (libFLAC) reads it as 24 kHz 16-bit speech.
    flac = streamed(client, "flac", "audio/flac", SENTENCE)
    assert flac[:4] == b"fLaC", flac[:4]
    assert len(flac) < 0.8 * len(wav), (len(flac), len(wav))  # compressed, losslessly
    flac_path = os.path.join(workdir, "ours.flac")
    with open(flac_path, "wb") as f:
        f.write(flac)
    subprocess.run(["flac", "--silent", "--test", flac_path], check=True)
    info = subprocess.run(["soxi", flac_path], capture_output=True, text=True, check=True).stdout
    assert "Sample Rate    : 24000" in info and "16-bit" in info, info
    flac_raw = subprocess.run(["sox", flac_path, "-t", "raw", "-"], capture_output=True, check=True).stdout
    assert 1.5 < len(flac_raw) / 48000 < 6, len(flac_raw)

    # SSE: base64 deltas of the same stream; their concatenation is the file.
    with client.audio.speech.with_streaming_response.create(
            model="tts-1", voice="alloy", input=SENTENCE, response_format="opus",
            extra_body={"stream_format": "sse"}) as r:
        assert r.headers["content-type"].startswith("text/event-stream"), r.headers
        events = [json.loads(line[5:]) for line in r.iter_lines() if line.startswith("data:")]
    deltas = [e for e in events if e["type"] == "speech.audio.delta"]
    assert deltas and events[-1]["type"] == "speech.audio.done", [e["type"] for e in events]
    sse_ogg = b"".join(base64.b64decode(e["audio"]) for e in deltas)
    assert sse_ogg[:4] == b"OggS", sse_ogg[:8]
    t = client.audio.transcriptions.create(model="whisper-1", file=("sse.opus", sse_ogg))
    assert "table for two" in spoken(t.text), ("sse opus", t.text)
    t = client.audio.transcriptions.create(model="whisper-1", file=("speech.flac", flac))
    assert "table for two" in spoken(t.text), ("flac", t.text)

    # Our own streamed WAV ("unknown length" sizes) goes straight back in.
    t = client.audio.transcriptions.create(model="whisper-1", file=("speech.wav", wav))
    assert "table for two" in spoken(t.text), ("streamed wav", t.text)

    wav_path = os.path.join(workdir, "speech.wav")
    with open(wav_path, "wb") as f:
        # The streamed header has "unknown length" sizes; sox wants real ones.
        f.write(wav)
    fixed = os.path.join(workdir, "fixed.wav")
    subprocess.run(["sox", "--ignore-length", wav_path, fixed], check=True)
    paths = {"wav": fixed}
    for ext in ("flac", "ogg"):
        out = os.path.join(workdir, f"speech.{ext}")
        subprocess.run(["sox", fixed, out], check=True)
        paths[ext] = out
    # What phones and browsers record: AAC in M4A, Opus in WebM.
    for ext, codec in (("m4a", "aac"), ("webm", "libopus")):
        out = os.path.join(workdir, f"speech.{ext}")
        subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i", fixed,
                        "-c:a", codec, out], check=True)
        paths[ext] = out

    for ext, path in paths.items():
        with open(path, "rb") as f:
            t = client.audio.transcriptions.create(model="whisper-1", file=f)
        assert "table for two" in spoken(t.text), (ext, t.text)

    with open(fixed, "rb") as f:
        v = client.audio.transcriptions.create(model="whisper-1", file=f, response_format="verbose_json")
    assert v.segments and v.segments[0].end > v.segments[0].start and v.duration > 1, v
    assert v.segments[0].tokens and v.segments[0].avg_logprob < 0, v.segments[0]
    with open(fixed, "rb") as f:
        text = client.audio.transcriptions.create(model="whisper-1", file=f, response_format="text")
    assert "table for two" in spoken(text), text
    with open(fixed, "rb") as f:
        srt = client.audio.transcriptions.create(model="whisper-1", file=f, response_format="srt")
    assert srt.startswith("1\n00:00:0") and " --> " in srt, srt

    # Word timestamps: the text's words in order, each within the audio; after 1.5 s of
    # silence the second sentence's words start after the silence, not where the first ended.
    first_len = float(subprocess.run(["soxi", "-D", fixed], capture_output=True, text=True,
                                     check=True).stdout)
    padded_once = os.path.join(workdir, "padded_once.wav")
    subprocess.run(["sox", fixed, padded_once, "pad", "0", "1.5"], check=True)
    gap = os.path.join(workdir, "gap.wav")
    subprocess.run(["sox", padded_once, fixed, gap], check=True)
    with open(gap, "rb") as f:
        v = client.audio.transcriptions.create(model="whisper-1", file=f, response_format="verbose_json",
                                               timestamp_granularities=["word"])
    assert v.segments is None and v.words, v
    said = [w.strip(string.punctuation) for w in v.text.split()]
    assert [w.word for w in v.words] == [w for w in said if w], (v.words, v.text)
    assert all(w.start <= w.end <= v.duration for w in v.words), v.words
    assert all(a.start <= b.start for a, b in zip(v.words, v.words[1:])), v.words
    assert v.words[0].start < 0.5 and v.words[-1].end > 2 * first_len, (first_len, v.words)
    second = [i for i, w in enumerate(v.words) if w.word.lower() == "your"][1]
    assert v.words[second].start >= first_len + 1.2, (first_len, v.words)
    assert v.words[second - 1].end <= first_len + 0.05, (first_len, v.words)
    with open(fixed, "rb") as f:
        v = client.audio.transcriptions.create(model="whisper-1", file=f, response_format="verbose_json",
                                               timestamp_granularities=["word", "segment"])
    assert v.segments and v.words, v

    def words_in_json():
        with open(fixed, "rb") as f:
            return client.audio.transcriptions.create(model="whisper-1", file=f,
                                                      timestamp_granularities=["word"])

    refused("timestamp_granularities", "word timestamps in plain json", words_in_json)
    with open(fixed, "rb") as f:
        events = list(client.audio.transcriptions.create(model="whisper-1", file=f, stream=True))
    kinds = [e.type for e in events]
    assert kinds[-1] == "transcript.text.done" and "transcript.text.delta" in kinds, kinds
    assert "table for two" in spoken(events[-1].text)

    # A long file goes in pieces cut at pauses: each piece's segments stream out as soon as
    # it is decoded, and the deltas add up to the final text.
    padded = os.path.join(workdir, "padded.wav")
    subprocess.run(["sox", fixed, padded, "pad", "0", "0.7"], check=True)
    long_path = os.path.join(workdir, "long.wav")
    subprocess.run(["sox"] + [padded] * 12 + [long_path], check=True)
    arrivals = []
    with open(long_path, "rb") as f:
        for e in client.audio.transcriptions.create(model="whisper-1", file=f, stream=True):
            arrivals.append((time.monotonic(), e))
    events = [e for _, e in arrivals]
    deltas = [e.delta for e in events if e.type == "transcript.text.delta"]
    assert len(deltas) >= 2 and events[-1].type == "transcript.text.done", [e.type for e in events]
    assert "".join(deltas) == events[-1].text, (deltas, events[-1].text)
    assert spoken(events[-1].text).count("table for two") >= 8, events[-1].text
    first_delta_at, done_at = arrivals[0][0], arrivals[-1][0]
    assert done_at - first_delta_at > 0.1, "the first piece's text came only at the end"

    refused("file", "garbage", lambda: client.audio.transcriptions.create(
        model="whisper-1", file=("notes.mp3", b"this is not audio")))
    with open(fixed, "rb") as f:
        t = client.audio.transcriptions.create(model="whisper-1", file=f, language="en", prompt="A booking.")
    assert "table for two" in spoken(t.text), t.text
    # Token log probabilities: the tokens spell the text, each no more likely than certain.
    with open(fixed, "rb") as f:
        t = client.audio.transcriptions.create(model="whisper-1", file=f, include=["logprobs"])
    assert t.logprobs and all(lp.logprob <= 0 for lp in t.logprobs), t
    # The SDK types these bytes as floats.
    spelled = bytes(int(b) for lp in t.logprobs for b in lp.bytes).decode()
    assert spelled.split() == t.text.split(), (spelled, t.text)
    with open(fixed, "rb") as f:
        events = list(client.audio.transcriptions.create(model="whisper-1", file=f, stream=True,
                                                         include=["logprobs"]))
    assert events[-1].logprobs and all(e.logprobs for e in events), events
    def upload(**fields):
        with open(fixed, "rb") as f:
            return client.audio.transcriptions.create(model="whisper-1", file=f, **fields)

    refused("include", "logprobs with response_format text",
            lambda: upload(include=["logprobs"], response_format="text"))
    refused("language", "a German transcription by an English model",
            lambda: upload(language="de"))

    def translate():
        with open(fixed, "rb") as f:
            return client.audio.translations.create(model="whisper-1", file=f)

    refused("model", "a translation by an English-only model", translate)
    try:
        client.audio.transcriptions.create(model="whisper-1", file=("big.wav", b"\0" * (26 * 1024 * 1024)))
        raise SystemExit("a 26 MB upload was accepted")
    except openai.APIStatusError as e:
        assert e.status_code == 413 and e.body["code"] == "file_too_large", (e.status_code, e.body)
    print(f"ok: {seconds:.1f} s of speech, transcribed from wav, flac, ogg vorbis, m4a, webm, mp3, ogg opus and our flac")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
