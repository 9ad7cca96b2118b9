"""Uploads in another language through the official `openai` Python SDK, against a gateway
serving a multilingual Whisper model (base).

Usage: language_sdk.py BASE_URL WAV  (WAV: a German sentence with "Guten Morgen" and "Tisch")

Without `language` the model detects German (verbose_json names it); with `language="de"` it
transcribes German; a language Whisper does not know is refused with param `language`.
"""

import sys

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
    print(f"ok: detected {detected.language}: {detected.text!r}; told: {told.text!r}")

if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
