//! WAV read and write with `hound`: any integer or float PCM WAV in, mono PCM16 out.

use std::io::{Read, Seek, Write};
use std::path::Path;

use super::{AudioError, MonoAudio, pcm};

/// Read a WAV file of any sample rate and channel count as mono f32.
///
/// An empty file is an error; a file of silence is not.
pub fn read_file(path: &Path) -> Result<MonoAudio, AudioError> {
    let file = std::fs::File::open(path).map_err(|source| AudioError::Io {
        path: path.to_owned(),
        source,
    })?;
    let audio = read(std::io::BufReader::new(file)).map_err(|e| match e {
        AudioError::InvalidWav { reason, .. } => AudioError::InvalidWav {
            path: path.to_owned(),
            reason,
        },
        AudioError::Empty { .. } => AudioError::Empty {
            path: path.to_owned(),
        },
        other => other,
    })?;
    Ok(audio)
}

/// Make a streamed or cut-off WAV's sizes say what is there. A streamed WAV (ours, OpenAI's)
/// says "unknown length" with the largest sizes, and a cut-off upload is shorter than its
/// header says: both keep the whole samples that arrived. Files that are whole are left as
/// they are.
fn repair_sizes(bytes: &mut [u8]) {
    if bytes.len() < 12 || &bytes[..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return;
    }
    let field = |b: &[u8], at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
    let mut block_align = 1usize;
    let mut at = 12usize;
    while at + 8 <= bytes.len() {
        let size = field(bytes, at + 4) as usize;
        let body = at + 8;
        if &bytes[at..at + 4] == b"fmt " && body + 14 <= bytes.len() {
            block_align = u16::from_le_bytes([bytes[body + 12], bytes[body + 13]])
                .max(1)
                .into();
        }
        if &bytes[at..at + 4] == b"data" {
            let there = bytes.len() - body;
            if size > there || !size.is_multiple_of(block_align) {
                let whole = size.min(there) / block_align * block_align;
                bytes[at + 4..at + 8].copy_from_slice(&(whole as u32).to_le_bytes());
                let riff = (body + whole - 8) as u32;
                bytes[4..8].copy_from_slice(&riff.to_le_bytes());
            }
            return;
        }
        at = body.saturating_add(size).saturating_add(size & 1);
    }
}

/// Read WAV data from any reader (a file, an upload in memory).
pub fn read<R: Read>(mut reader: R) -> Result<MonoAudio, AudioError> {
    let invalid = |reason: String| AudioError::InvalidWav {
        path: "<input>".into(),
        reason,
    };
    let mut bytes = Vec::new();
    reader
        .read_to_end(&mut bytes)
        .map_err(|e| invalid(e.to_string()))?;
    repair_sizes(&mut bytes);
    let mut wav =
        hound::WavReader::new(std::io::Cursor::new(bytes)).map_err(|e| invalid(e.to_string()))?;
    let spec = wav.spec();
    if spec.channels == 0 || spec.sample_rate == 0 {
        return Err(invalid("zero channels or zero sample rate".into()));
    }
    let interleaved: Vec<f32> = match (spec.sample_format, spec.bits_per_sample) {
        (hound::SampleFormat::Float, 32) => wav
            .samples::<f32>()
            .collect::<Result<_, _>>()
            .map_err(|e| invalid(e.to_string()))?,
        (hound::SampleFormat::Int, bits @ 8..=32) => {
            let scale = (1u64 << (bits - 1)) as f32;
            wav.samples::<i32>()
                .map(|s| s.map(|s| s as f32 / scale))
                .collect::<Result<_, _>>()
                .map_err(|e| invalid(e.to_string()))?
        }
        (format, bits) => {
            return Err(AudioError::UnsupportedFormat(format!(
                "{format:?} with {bits} bits per sample"
            )));
        }
    };
    if interleaved.is_empty() {
        return Err(AudioError::Empty {
            path: "<input>".into(),
        });
    }
    let samples = pcm::downmix(&interleaved, spec.channels as usize);
    Ok(MonoAudio::new(samples, spec.sample_rate))
}

/// Write mono audio as a 16-bit PCM WAV file, atomically (temp file, then rename).
pub fn write_file(path: &Path, audio: &MonoAudio) -> Result<(), AudioError> {
    let io_err = |source| AudioError::Io {
        path: path.to_owned(),
        source,
    };
    let tmp = path.with_extension("wav.partial");
    let file = std::fs::File::create(&tmp).map_err(io_err)?;
    write(std::io::BufWriter::new(file), audio)?;
    std::fs::rename(&tmp, path).map_err(io_err)
}

/// Write mono audio as 16-bit PCM WAV to any seekable writer.
pub fn write<W: Write + Seek>(writer: W, audio: &MonoAudio) -> Result<(), AudioError> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: audio.sample_rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let fail = |e: hound::Error| AudioError::UnsupportedFormat(e.to_string());
    let mut w = hound::WavWriter::new(writer, spec).map_err(fail)?;
    for &s in &audio.samples {
        w.write_sample(pcm::f32_sample_to_i16(s)).map_err(fail)?;
    }
    w.finalize().map_err(fail)
}

/// Mono audio as WAV bytes in memory.
pub fn to_bytes(audio: &MonoAudio) -> Result<Vec<u8>, AudioError> {
    let mut cursor = std::io::Cursor::new(Vec::new());
    write(&mut cursor, audio)?;
    Ok(cursor.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trips_mono_pcm16() {
        let audio = MonoAudio::new(vec![0.0, 0.5, -0.5, 0.25], 16_000);
        let back = read(std::io::Cursor::new(to_bytes(&audio).unwrap())).unwrap();
        assert_eq!(back.sample_rate, 16_000);
        for (a, b) in audio.samples.iter().zip(&back.samples) {
            assert!((a - b).abs() < 1e-4);
        }
    }

    #[test]
    fn downmixes_stereo_float() {
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 44_100,
            bits_per_sample: 32,
            sample_format: hound::SampleFormat::Float,
        };
        let mut cursor = std::io::Cursor::new(Vec::new());
        let mut w = hound::WavWriter::new(&mut cursor, spec).unwrap();
        for s in [1.0f32, 0.0, 0.5, 0.5] {
            w.write_sample(s).unwrap();
        }
        w.finalize().unwrap();
        let back = read(std::io::Cursor::new(cursor.into_inner())).unwrap();
        assert_eq!(back.samples, vec![0.5, 0.5]);
        assert_eq!(back.sample_rate, 44_100);
    }

    #[test]
    fn rejects_non_wav_and_truncated_and_empty() {
        assert!(matches!(
            read(std::io::Cursor::new(b"not a wav file at all".to_vec())),
            Err(AudioError::InvalidWav { .. })
        ));
        let bytes = to_bytes(&MonoAudio::new(vec![0.1; 1000], 8_000)).unwrap();
        assert!(read(std::io::Cursor::new(bytes[..30].to_vec())).is_err());
        let empty = to_bytes(&MonoAudio::new(vec![], 8_000)).unwrap();
        assert!(matches!(
            read(std::io::Cursor::new(empty)),
            Err(AudioError::Empty { .. })
        ));
    }

    #[test]
    fn streamed_and_cut_off_files_keep_what_is_there() {
        let bytes = to_bytes(&MonoAudio::new(vec![0.25; 1000], 16_000)).unwrap();
        // Sizes "until the end of the stream", as a streamed WAV says.
        let mut streamed = bytes.clone();
        streamed[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        streamed[40..44].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            read(std::io::Cursor::new(streamed)).unwrap().samples.len(),
            1000
        );
        // A body cut off mid-sample: the whole samples before the cut.
        let cut = read(std::io::Cursor::new(bytes[..44 + 601].to_vec())).unwrap();
        assert_eq!(cut.samples, vec![0.25; 300]);
    }

    proptest! {
        // Arbitrary bytes never panic the parser.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = read(std::io::Cursor::new(bytes));
        }

        // A valid header followed by garbage or cut at any point is handled.
        #[test]
        fn truncated_wav_never_panics(cut in 0usize..2044) {
            let bytes = to_bytes(&MonoAudio::new(vec![0.3; 1000], 16_000)).unwrap();
            let _ = read(std::io::Cursor::new(bytes[..cut.min(bytes.len())].to_vec()));
        }
    }
}
