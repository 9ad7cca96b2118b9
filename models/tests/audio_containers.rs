//! Uploads in the containers and codecs people send: files written by ffmpeg (an encoder
//! that is not ours) from espeak-ng speech, decoded by `audio::decode`, must be the same
//! speech: the same length and the same loudness contour.

mod common;

use std::process::Command;

use common::espeak;
use switchboard_models::audio::decode::decode;
use switchboard_models::audio::{MonoAudio, rates, wav};

/// RMS per 10 ms at 16 kHz.
fn contour(audio: &MonoAudio) -> Vec<f32> {
    let a = audio.to_rate(rates::SPEECH_MODELS).expect("resample");
    a.samples
        .chunks(160)
        .map(|c| (c.iter().map(|s| s * s).sum::<f32>() / c.len() as f32).sqrt())
        .collect()
}

/// The best correlation of two contours with one shifted by up to `max_shift` frames
/// (encoders add a few ms of delay).
fn best_correlation(a: &[f32], b: &[f32], max_shift: usize) -> f32 {
    let corr = |x: &[f32], y: &[f32]| {
        let n = x.len().min(y.len());
        let (x, y) = (&x[..n], &y[..n]);
        let (mx, my) = (
            x.iter().sum::<f32>() / n as f32,
            y.iter().sum::<f32>() / n as f32,
        );
        let cov: f32 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
        let vx: f32 = x.iter().map(|a| (a - mx).powi(2)).sum();
        let vy: f32 = y.iter().map(|b| (b - my).powi(2)).sum();
        cov / (vx * vy).sqrt().max(1e-12)
    };
    (0..=max_shift)
        .flat_map(|s| [corr(&a[s..], b), corr(a, &b[s..])])
        .fold(f32::MIN, f32::max)
}

#[test]
fn files_from_ffmpeg_in_every_accepted_container_decode_to_the_same_speech() {
    let speech = espeak(
        "Please move my dentist appointment to Thursday afternoon.",
        "en-us",
        160,
    );
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("speech.wav");
    wav::write_file(&source, &speech).unwrap();
    let reference = contour(&speech);
    // (file name, ffmpeg's output options): what phones, browsers and apps send.
    let cases: &[(&str, &[&str])] = &[
        ("voice.m4a", &["-c:a", "aac", "-b:a", "64k"]),
        ("video.mp4", &["-c:a", "aac", "-b:a", "96k", "-ac", "2"]),
        ("stream.aac", &["-c:a", "aac", "-f", "adts"]),
        ("lossless.m4a", &["-c:a", "alac"]),
        ("browser.webm", &["-c:a", "libopus", "-b:a", "32k"]),
        ("stereo.webm", &["-c:a", "libopus", "-ac", "2"]),
        ("opus.mp4", &["-c:a", "libopus", "-b:a", "32k"]),
        ("vorbis.mka", &["-c:a", "libvorbis"]),
        ("flac.mkv", &["-c:a", "flac"]),
        ("apple.caf", &["-c:a", "pcm_s16le"]),
        ("apple.aiff", &[]),
        ("stereo.mp3", &["-c:a", "libmp3lame", "-ac", "2"]),
    ];
    let mut failures = Vec::new();
    for (name, options) in cases {
        let out = dir.path().join(name);
        let status = Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-y", "-i"])
            .arg(&source)
            .args(*options)
            .arg(&out)
            .status()
            .expect("ffmpeg is installed (make test installs it)");
        assert!(status.success(), "ffmpeg could not write {name}");
        let bytes = std::fs::read(&out).unwrap();
        let ext = name.rsplit('.').next();
        let decoded = match decode(&bytes, ext) {
            Ok(d) => d,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        // Codecs pad to whole frames and some add their priming: allow 120 ms.
        let extra = decoded.duration_secs() - speech.duration_secs();
        let similarity = best_correlation(&reference, &contour(&decoded), 12);
        eprintln!("{name}: {extra:+.3} s, contour correlation {similarity:.3}");
        if !(-0.03..0.12).contains(&extra) || similarity < 0.95 {
            failures.push(format!(
                "{name}: {extra:+.3} s, correlation {similarity:.3}"
            ));
        }
        // The name's extension is only a hint: the content decides.
        if decode(&bytes, Some("wav")).is_err() {
            failures.push(format!("{name}: refused when misnamed .wav"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn a_container_without_audio_or_with_a_broken_track_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("silent-video.mp4");
    let status = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "color=c=black:s=64x64:d=1",
            "-c:v",
            "mpeg4",
        ])
        .arg(&out)
        .status()
        .expect("ffmpeg is installed (make test installs it)");
    assert!(status.success());
    let err = decode(&std::fs::read(&out).unwrap(), Some("mp4")).unwrap_err();
    assert!(err.to_string().contains("no audio track"), "{err}");

    // A WebM cut anywhere decodes what is whole or is refused: never a panic (symphonia's
    // Matroska reader panics on some cuts; `decode` turns that into a refusal).
    let speech = espeak("Hello there.", "en-us", 160);
    let source = dir.path().join("hello.wav");
    wav::write_file(&source, &speech).unwrap();
    let webm = dir.path().join("hello.webm");
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y", "-i"])
        .arg(&source)
        .args(["-c:a", "libopus"])
        .arg(&webm)
        .status()
        .unwrap();
    assert!(status.success());
    let bytes = std::fs::read(&webm).unwrap();
    let mut refused = 0;
    for cut in (0..bytes.len()).step_by(97) {
        match decode(&bytes[..cut], Some("webm")) {
            Ok(audio) => assert!(audio.duration_secs() <= speech.duration_secs() + 0.05),
            Err(e) => {
                assert!(!e.to_string().is_empty());
                refused += 1;
            }
        }
    }
    assert!(refused > 0, "the shortest cuts are refused");
}
