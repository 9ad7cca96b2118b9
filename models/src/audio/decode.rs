//! Decoding uploaded audio files of any common container: WAV with our own reader, Ogg Opus
//! with our own Ogg reader and libopus (`ogg_opus`), and MP3, FLAC and Ogg Vorbis with
//! symphonia (pure Rust).

use std::io::Cursor;

use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{CODEC_TYPE_NULL, DecoderOptions};
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

use super::{AudioError, MonoAudio, pcm, wav};

/// Longest audio decoded from one file (the samples are kept in memory).
pub const MAX_SECONDS: u64 = 60 * 60;

fn undecodable(reason: impl std::fmt::Display) -> AudioError {
    AudioError::Undecodable(reason.to_string())
}

/// Decode a whole audio file to mono. `extension` (from the file name) helps the probe.
pub fn decode(bytes: &[u8], extension: Option<&str>) -> Result<MonoAudio, AudioError> {
    if bytes.starts_with(b"RIFF") {
        return wav::read(Cursor::new(bytes));
    }
    if super::ogg_opus::is_ogg_opus(bytes) {
        return super::ogg_opus::decode(bytes);
    }
    let mut hint = Hint::new();
    if let Some(ext) = extension {
        hint.with_extension(ext);
    }
    let source = MediaSourceStream::new(Box::new(Cursor::new(bytes.to_vec())), Default::default());
    let probed = symphonia::default::get_probe()
        .format(
            &hint,
            source,
            &FormatOptions::default(),
            &MetadataOptions::default(),
        )
        .map_err(|e| undecodable(format!("not a recognised audio file ({e})")))?;
    let mut format = probed.format;
    let track = format
        .tracks()
        .iter()
        .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
        .ok_or_else(|| undecodable("no audio track"))?;
    let track_id = track.id;
    let rate = track
        .codec_params
        .sample_rate
        .ok_or_else(|| undecodable("unknown sample rate"))?;
    let mut decoder = symphonia::default::get_codecs()
        .make(&track.codec_params, &DecoderOptions::default())
        .map_err(|e| undecodable(format!("unsupported codec ({e})")))?;
    let mut samples = Vec::new();
    let limit = MAX_SECONDS * rate as u64;
    loop {
        let packet = match format.next_packet() {
            Ok(p) => p,
            Err(SymphoniaError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                break;
            }
            Err(SymphoniaError::ResetRequired) => break,
            Err(e) => return Err(undecodable(e)),
        };
        if packet.track_id() != track_id {
            continue;
        }
        let decoded = match decoder.decode(&packet) {
            Ok(d) => d,
            // A damaged packet: skip it, as players do.
            Err(SymphoniaError::DecodeError(_)) => continue,
            Err(e) => return Err(undecodable(e)),
        };
        let channels = decoded.spec().channels.count().max(1);
        let mut buf = SampleBuffer::<f32>::new(decoded.capacity() as u64, *decoded.spec());
        buf.copy_interleaved_ref(decoded);
        samples.extend(pcm::downmix(buf.samples(), channels));
        if samples.len() as u64 > limit {
            return Err(undecodable(format!("longer than {MAX_SECONDS} s")));
        }
    }
    if samples.is_empty() {
        return Err(undecodable("no audio samples"));
    }
    Ok(MonoAudio::new(samples, rate))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wav_goes_through_our_reader_and_garbage_is_refused() {
        let audio = MonoAudio::new(vec![0.25; 1600], 16_000);
        let bytes = wav::to_bytes(&audio).unwrap();
        assert_eq!(decode(&bytes, Some("wav")).unwrap().samples.len(), 1600);
        assert!(matches!(
            decode(b"definitely not audio", None),
            Err(AudioError::Undecodable(_))
        ));
        let mut opus = b"OggS".to_vec();
        opus.extend([0u8; 24]);
        opus.extend(b"OpusHead");
        assert!(
            decode(&opus, Some("ogg"))
                .unwrap_err()
                .to_string()
                .contains("Opus")
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048)) {
            let _ = decode(&bytes, None);
            let _ = decode(&bytes, Some("mp3"));
        }
    }
}
