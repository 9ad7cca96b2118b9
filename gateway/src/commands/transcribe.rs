//! `switchboard transcribe FILE`: any audio file an upload may be (WAV, MP3, FLAC, Ogg,
//! M4A/MP4, WebM, CAF, AIFF).

use anyhow::{Context, bail};
use switchboard_models::audio::{decode, rates};
use switchboard_models::stt::{AudioCtx, SpeechToText, TranscribeOptions};

use switchboard_channels::realtime::transcription::{check_translation, file_language};

use crate::cli::TranscribeArgs;

pub fn run(args: TranscribeArgs) -> anyhow::Result<()> {
    let audio_ctx = match args.audio_ctx.as_str() {
        "auto" => AudioCtx::Auto,
        "full" => AudioCtx::Full,
        n => match n.parse::<u32>() {
            Ok(frames) if frames > 0 => AudioCtx::Frames(frames),
            _ => bail!("--audio-ctx must be auto, full or a positive number of frames, not {n:?}"),
        },
    };
    let bytes =
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let extension = args.file.extension().and_then(|e| e.to_str());
    let audio = decode::decode(&bytes, extension)
        .with_context(|| format!("decoding {}", args.file.display()))?
        .to_rate(rates::SPEECH_MODELS)
        .context("resampling to 16 kHz")?;
    let engine = crate::engines::stt(&args.models.dir, &args.stt)?;
    if args.translate {
        check_translation(engine.multilingual(), engine.model()).map_err(anyhow::Error::msg)?;
    }
    let language = file_language(
        args.language.as_deref(),
        engine.multilingual(),
        engine.model(),
    )
    .map_err(anyhow::Error::msg)?;
    let t = engine
        .transcribe(
            audio.samples,
            TranscribeOptions {
                audio_ctx,
                prompt: args.prompt,
                translate: args.translate,
                language: language.map(str::to_owned),
                ..Default::default()
            },
        )
        .wait()
        .context("transcribing")?;
    if args.json {
        let segments: Vec<_> = t
            .segments
            .iter()
            .map(
                |s| serde_json::json!({"start_ms": s.start_ms, "end_ms": s.end_ms, "text": s.text}),
            )
            .collect();
        let out = serde_json::json!({
            "text": t.text,
            "segments": segments,
            "audio_secs": t.audio_secs,
            "language": t.language,
            "audio_ctx": t.audio_ctx,
            "inference_ms": t.inference.as_secs_f64() * 1000.0,
            "backend": engine.backend(),
            "device": engine.device(),
        });
        println!("{out}");
    } else {
        println!("{}", t.text);
    }
    Ok(())
}
