"""The official `openai` Python SDK against switchboard's chat REST surface.

Usage: chat_sdk.py BASE_URL   (the gateway serving its embedded model)

Checks /v1/models, a non-streaming and a streaming chat completion (the second served from
the prompt cache, as its usage says), that a sampled request without a seed is not answered
the same way twice, and that a bad request gets a 400 in OpenAI's error shape. Exits non-zero on any failure.
"""

import sys

from openai import OpenAI

from common import refused


def main(base_url: str) -> None:
    client = OpenAI(base_url=base_url, api_key="sk-local")
    ids = [m.id for m in client.models.list().data]
    assert "smollm2-135m-instruct" in ids, ids

    messages = [
        {"role": "system", "content": "Answer in one short sentence."},
        {"role": "user", "content": "What is the capital of France?"},
    ]
    r = client.chat.completions.create(model="smollm2-135m-instruct", messages=messages,
                                       temperature=0, max_tokens=30)
    text = r.choices[0].message.content
    assert "Paris" in text, text
    assert r.choices[0].finish_reason == "stop", r.choices[0].finish_reason
    assert r.usage.prompt_tokens > 0 and r.usage.completion_tokens > 0, r.usage

    chunks = list(client.chat.completions.create(model="smollm2-135m-instruct", messages=messages,
                                                 temperature=0, max_tokens=30, stream=True,
                                                 stream_options={"include_usage": True}))
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == text, (streamed, text)
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    # The same prompt again: served from the embedded model's KV cache, and said so.
    usage = chunks[-1].usage
    assert usage.prompt_tokens_details.cached_tokens == usage.prompt_tokens, usage

    # Sampled without a seed, the same request twice gets two replies, as OpenAI's would.
    poem = [{"role": "user", "content": "Write a short poem about the sea."}]
    sampled = [client.chat.completions.create(model="smollm2-135m-instruct", messages=poem,
                                              temperature=1.0, max_tokens=24).choices[0].message.content
               for _ in range(2)]
    assert sampled[0] != sampled[1], sampled

    refused("messages", "empty messages",
            lambda: client.chat.completions.create(model="x", messages=[]))
    print(f"ok: {text!r}, {len(chunks)} chunks")


if __name__ == "__main__":
    main(sys.argv[1])
