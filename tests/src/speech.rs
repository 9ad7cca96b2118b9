//! Test speech: espeak-ng says a sentence, sox makes it 16-bit mono at the rate asked for.

use std::process::Command;

/// `text` spoken by espeak-ng in American English, as 16-bit samples at `rate`.
pub fn say(text: &str, rate: u32) -> Vec<i16> {
    say_in("en-us", text, rate)
}

/// `text` spoken by espeak-ng's `voice` (a language: "de", "fr"), as 16-bit samples at `rate`.
pub fn say_in(voice: &str, text: &str, rate: u32) -> Vec<i16> {
    let dir = tempfile::tempdir().expect("tempdir");
    let raw = dir.path().join("raw.wav");
    let out = dir.path().join("out.wav");
    let ok = Command::new("espeak-ng")
        .args(["-v", voice, "-s", "160", "-w"])
        .arg(&raw)
        .arg(text)
        .status()
        .expect("espeak-ng runs");
    assert!(ok.success(), "espeak-ng failed");
    let ok = Command::new("sox")
        .arg(&raw)
        .args(["-r", &rate.to_string(), "-c", "1", "-b", "16"])
        .arg(&out)
        .status()
        .expect("sox runs");
    assert!(ok.success(), "sox failed");
    let mut reader = hound::WavReader::open(&out).expect("sox output is a WAV");
    reader
        .samples::<i16>()
        .map(|s| s.expect("sample"))
        .collect()
}

/// Silence of `ms` at `rate`.
pub fn silence(ms: u32, rate: u32) -> Vec<i16> {
    vec![0; (rate as u64 * ms as u64 / 1000) as usize]
}

/// Write 16-bit mono `samples` at `rate` as a WAV file.
pub fn write_wav(path: &std::path::Path, samples: &[i16], rate: u32) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).expect("WAV file");
    for &s in samples {
        w.write_sample(s).expect("WAV sample");
    }
    w.finalize().expect("WAV file written");
}
