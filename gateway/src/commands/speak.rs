//! `switchboard speak "TEXT" -o OUT.wav`.

use std::path::Path;

use anyhow::{Context, bail};
use switchboard_models::audio::{MonoAudio, wav};
use switchboard_models::tts::{SpeakOptions, TextToSpeech};

pub fn run(text: &str, output: &Path, speed: f32, models_dir: &Path) -> anyhow::Result<()> {
    if !(0.25..=4.0).contains(&speed) {
        bail!("--speed must be between 0.25 and 4.0");
    }
    let engine = crate::engines::tts(models_dir)?;
    let mut stream = engine.synthesize(text, SpeakOptions::at_speed(speed));
    let mut samples = Vec::new();
    while let Some(chunk) = stream.next_blocking() {
        samples.extend(chunk.context("synthesizing")?.samples);
    }
    let audio = MonoAudio::new(samples, engine.sample_rate());
    wav::write_file(output, &audio)?;
    eprintln!(
        "wrote {:.2} s of audio to {}",
        audio.duration_secs(),
        output.display()
    );
    Ok(())
}
