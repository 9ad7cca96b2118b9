"""Uploads in another language through the official `openai` Python SDK, against a gateway
serving a multilingual Whisper model (base).

Usage: language_sdk.py BASE_URL WAV  (WAV: a German sentence with "Guten Morgen" and "Tisch")

Without `language` the model detects German (verbose_json names it); with `language="de"` it
transcribes German; a language Whisper does not know is refused with param `language`. The
same file through `/v1/audio/translations` comes back in English, whole or streamed.
"""

import json
import sys

import httpx
from openai import OpenAI

from common import refused


def main(base_url: str, wav_path: str) -> None:
    client = OpenAI(base_url=base_url, api_key="sk-local")

    def upload(**fields):
        with open(wav_path, "rb") as f:
            return client.audio.transcriptions.create(model="whisper-1", file=f, **fields)

    detected = upload(response_format="verbose_json")
    assert detected.language == "german", detected
    assert "morgen" in detected.text.lower(), detected.text
    told = upload(language="de")
    assert "morgen" in told.text.lower() and "tisch" in told.text.lower(), told.text
    refused("language", "an unknown language", lambda: upload(language="xx"))
    with open(wav_path, "rb") as f:
        translated = client.audio.translations.create(
            model="whisper-1", file=f, response_format="verbose_json")
    assert translated.language == "english", translated
    english = translated.text.lower()
    # Whisper base translates espeak's German roughly ("Good morning, I must have a dish…"):
    # what tells a translation from a transcription is its English.
    assert "good morning" in english and "morgen" not in english, translated.text
    # Streamed (not in the SDK's translations call): deltas, then the whole English text.
    with open(wav_path, "rb") as f:
        r = httpx.post(f"{base_url}/audio/translations", data={"model": "whisper-1", "stream": "true"},
                       files={"file": ("de.wav", f, "audio/wav")},
                       headers={"authorization": "Bearer sk-local"}, timeout=120)
    events = [json.loads(line[5:]) for line in r.text.splitlines() if line.startswith("data:")]
    kinds = [e["type"] for e in events]
    assert kinds[-1] == "transcript.text.done" and "transcript.text.delta" in kinds, kinds
    assert "morning" in events[-1]["text"].lower(), events[-1]
    print(f"ok: detected {detected.language}: {detected.text!r}; told: {told.text!r}; "
          f"translated: {translated.text!r}")

if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
