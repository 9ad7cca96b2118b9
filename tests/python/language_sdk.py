"""Uploads in another language through the official `openai` Python SDK, against a gateway
serving a multilingual Whisper model (base).

Usage: language_sdk.py BASE_URL WAV  (WAV: a German sentence with "Guten Morgen" and "Tisch")

Without `language` the model detects German (verbose_json names it); with `language="de"` it
transcribes German; a language Whisper does not know is refused with param `language`.
"""

import sys

import openai
from openai import OpenAI


def main(base_url: str, wav_path: str) -> None:
    client = OpenAI(base_url=base_url, api_key="sk-local")
    with open(wav_path, "rb") as f:
        detected = client.audio.transcriptions.create(model="whisper-1", file=f,
                                                      response_format="verbose_json")
    assert detected.language == "german", detected
    assert "morgen" in detected.text.lower(), detected.text
    with open(wav_path, "rb") as f:
        told = client.audio.transcriptions.create(model="whisper-1", file=f, language="de")
    assert "morgen" in told.text.lower() and "tisch" in told.text.lower(), told.text
    try:
        with open(wav_path, "rb") as f:
            client.audio.transcriptions.create(model="whisper-1", file=f, language="xx")
        raise SystemExit("an unknown language was accepted")
    except openai.BadRequestError as e:
        assert e.status_code == 400 and e.body["param"] == "language", e.body
    print(f"ok: detected {detected.language}: {detected.text!r}; told: {told.text!r}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
