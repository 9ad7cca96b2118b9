//! `switchboard speak "TEXT" -o OUT.wav`: the format follows the file's extension (`.wav`,
//! `.mp3`, `.opus`/`.ogg`, `.flac`), as `/v1/audio/speech`'s `response_format` does.

use std::path::Path;

use anyhow::{Context, bail};
use switchboard_models::audio::{MonoAudio, flac, mp3, ogg_opus, wav};
use switchboard_models::tts::{SpeakOptions, TextToSpeech};

/// What `speak` writes, from the output file's extension.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Format {
    Wav,
    Mp3,
    OggOpus,
    Flac,
}

impl Format {
    fn of(path: &Path) -> anyhow::Result<Self> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        Ok(match ext.as_deref() {
            Some("wav") | None => Self::Wav,
            Some("mp3") => Self::Mp3,
            Some("opus" | "ogg") => Self::OggOpus,
            Some("flac") => Self::Flac,
            Some(other) => {
                bail!(
                    "cannot write .{other} files: name the output .wav, .mp3, .opus, .ogg or .flac"
                )
            }
        })
    }

    fn write(self, path: &Path, audio: &MonoAudio) -> anyhow::Result<()> {
        let bytes = match self {
            Self::Wav => return Ok(wav::write_file(path, audio)?),
            // The rates as `/v1/audio/speech` uses them.
            Self::Mp3 => mp3::encode(audio, 64)?,
            Self::OggOpus => ogg_opus::encode(audio, 32_000)?,
            Self::Flac => flac::encode(audio)?,
        };
        std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
    }
}

pub fn run(text: &str, output: &Path, speed: f32, models_dir: &Path) -> anyhow::Result<()> {
    if !(0.25..=4.0).contains(&speed) {
        bail!("--speed must be between 0.25 and 4.0");
    }
    let format = Format::of(output)?;
    let engine = crate::engines::tts(models_dir)?;
    let mut stream = engine.synthesize(text, SpeakOptions::at_speed(speed));
    let mut samples = Vec::new();
    while let Some(chunk) = stream.next_blocking() {
        samples.extend(chunk.context("synthesizing")?.samples);
    }
    let audio = MonoAudio::new(samples, engine.sample_rate());
    format.write(output, &audio)?;
    eprintln!(
        "wrote {:.2} s of audio to {}",
        audio.duration_secs(),
        output.display()
    );
    Ok(())
}
