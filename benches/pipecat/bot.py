"""A Pipecat voice agent with the same models as Switchboard, for `benches/benches/pipecat.rs`.

One phone call per Twilio Media Stream WebSocket (`/stream`), built as Pipecat's own Twilio
examples build it: FastAPI WebSocket transport with Pipecat's Twilio serializer, Silero VAD,
faster-whisper (Whisper tiny.en, CTranslate2, int8 on the CPU), an OpenAI-compatible LLM,
and Piper (en_US-joe-medium). The turn ends after 0.5 s of silence, as Switchboard's
`server_vad` default: Silero's 0.2 s stop plus a 0.3 s speech timeout.

    python bot.py --port 8765 --llm http://127.0.0.1:PORT/v1 --whisper DIR --piper DIR

Prints "ready" on stdout once it listens and every model has loaded once.
"""

import argparse
import asyncio
import json
import sys
from pathlib import Path

import uvicorn
from fastapi import FastAPI, WebSocket
from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.audio.vad.vad_analyzer import VADParams
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)
from pipecat.serializers.twilio import TwilioFrameSerializer
from pipecat.services.openai.llm import OpenAILLMService
from pipecat.services.piper.tts import PiperTTSService
from pipecat.services.whisper.stt import WhisperSTTService
from pipecat.transports.websocket.fastapi import (
    FastAPIWebsocketParams,
    FastAPIWebsocketTransport,
)
from pipecat.turns.user_stop.speech_timeout_user_turn_stop_strategy import (
    SpeechTimeoutUserTurnStopStrategy,
)
from pipecat.turns.user_turn_strategies import UserTurnStrategies
from pipecat.workers.runner import WorkerRunner

args = argparse.ArgumentParser()
args.add_argument("--port", type=int, required=True)
args.add_argument("--llm", required=True, help="OpenAI-compatible base URL")
args.add_argument("--whisper", required=True, help="CTranslate2 Whisper model directory")
args.add_argument("--piper", required=True, help="directory holding en_US-joe-medium.onnx")
args.add_argument(
    "--turn",
    choices=["silence", "smart-turn"],
    default="silence",
    help="silence: 0.5 s of silence ends the turn; smart-turn: Pipecat's default (Smart Turn v3)",
)
opts = args.parse_args()

SYSTEM = "You are a helpful voice assistant on a phone call. Answer briefly."


def services():
    stt = WhisperSTTService(
        settings=WhisperSTTService.Settings(model=opts.whisper),
        device="cpu",
        compute_type="int8",
    )
    tts = PiperTTSService(
        settings=PiperTTSService.Settings(voice="en_US-joe-medium"),
        download_dir=Path(opts.piper),
    )
    llm = OpenAILLMService(
        api_key="unused",
        base_url=opts.llm,
        settings=OpenAILLMService.Settings(model="scripted", system_instruction=SYSTEM),
    )
    return stt, llm, tts


async def run_call(websocket: WebSocket):
    # Twilio's first two messages: `connected`, then `start` with the stream's ids.
    await websocket.receive_text()
    start = json.loads(await websocket.receive_text())["start"]
    serializer = TwilioFrameSerializer(
        stream_sid=start["streamSid"],
        call_sid=start.get("callSid"),
        params=TwilioFrameSerializer.InputParams(auto_hang_up=False),
    )
    transport = FastAPIWebsocketTransport(
        websocket=websocket,
        params=FastAPIWebsocketParams(
            audio_in_enabled=True,
            audio_out_enabled=True,
            add_wav_header=False,
            serializer=serializer,
        ),
    )
    stt, llm, tts = services()
    stop = None
    if opts.turn == "silence":
        stop = [SpeechTimeoutUserTurnStopStrategy(user_speech_timeout=0.3)]
    context = LLMContext()
    aggregators = LLMContextAggregatorPair(
        context,
        user_params=LLMUserAggregatorParams(
            vad_analyzer=SileroVADAnalyzer(params=VADParams(stop_secs=0.2)),
            user_turn_strategies=UserTurnStrategies(stop=stop),
        ),
    )
    pipeline = Pipeline(
        [
            transport.input(),
            stt,
            aggregators.user(),
            llm,
            tts,
            transport.output(),
            aggregators.assistant(),
        ]
    )
    worker = PipelineWorker(
        pipeline,
        params=PipelineParams(audio_in_sample_rate=16000, audio_out_sample_rate=8000),
    )

    @transport.event_handler("on_client_disconnected")
    async def on_client_disconnected(_transport, _client):
        await worker.cancel()

    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    await runner.run()


app = FastAPI()


@app.websocket("/stream")
async def stream(websocket: WebSocket):
    await websocket.accept()
    await run_call(websocket)


async def main():
    # Every model loads once before "ready", so a missing file fails here and the first call
    # finds the files in the page cache; each call then loads its own, as Pipecat's examples do.
    services()
    config = uvicorn.Config(app, host="127.0.0.1", port=opts.port, log_level="warning")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.05)
    print("ready", flush=True)
    await serving


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
