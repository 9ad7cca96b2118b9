//! Decoding uploaded audio files of any common container: WAV with our own reader, Ogg Opus
//! with our own Ogg reader and libopus (`ogg_opus`); MP3, FLAC, Ogg Vorbis, AAC and ALAC in
//! MP4/M4A, WebM/Matroska, CAF and AIFF with symphonia (pure Rust), except Opus inside WebM
//! or MP4 (what browsers record), whose packets symphonia demuxes and libopus decodes.

use std::io::Cursor;

use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{
    CODEC_TYPE_NULL, CODEC_TYPE_OPUS, CodecParameters, Decoder, DecoderOptions,
};
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::{FormatOptions, Packet};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

use super::ogg_opus::PacketDecoder;
use super::{AudioError, MonoAudio, pcm, rates, wav};

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
    // symphonia's demuxers can panic on damaged files (its Matroska reader does on some
    // cut-off WebM): that is a refusal of this file, not a crash of the request.
    std::panic::catch_unwind(|| decode_container(bytes, extension)).unwrap_or_else(|_| {
        Err(undecodable(
            "a damaged file: its container could not be read",
        ))
    })
}

/// Decode with symphonia's demuxers and decoders (libopus for Opus tracks).
fn decode_container(bytes: &[u8], extension: Option<&str>) -> Result<MonoAudio, AudioError> {
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
    let (mut decoder, rate) = TrackDecoder::new(&track.codec_params)?;
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
        decoder.decode(&packet, &mut samples)?;
        if samples.len() as u64 > limit {
            return Err(undecodable(format!("longer than {MAX_SECONDS} s")));
        }
    }
    if samples.is_empty() {
        return Err(undecodable("no audio samples"));
    }
    Ok(MonoAudio::new(samples, rate))
}

/// The `OpusHead` of an Opus track as Ogg has it. MP4 carries it as a `dOps` box (version 0,
/// big-endian fields), which symphonia hands over behind the `OpusHead` magic.
fn opus_head(extra: &[u8]) -> Vec<u8> {
    let mut head = extra.to_vec();
    if head.len() >= 19 && head[8] == 0 {
        head[8] = 1;
        head[10..12].reverse(); // pre-skip
        head[12..16].reverse(); // input sample rate
        head[16..18].reverse(); // output gain
    }
    head
}

/// The decoder for one track: symphonia's, or libopus for Opus.
enum TrackDecoder {
    Symphonia(Box<dyn Decoder>),
    Opus(PacketDecoder),
}

impl TrackDecoder {
    /// The decoder and the sample rate its output has.
    fn new(params: &CodecParameters) -> Result<(Self, u32), AudioError> {
        if params.codec == CODEC_TYPE_OPUS {
            let head = params
                .extra_data
                .as_deref()
                .ok_or_else(|| undecodable("an Opus track without its OpusHead"))?;
            return Ok((
                Self::Opus(PacketDecoder::new(&opus_head(head))?),
                rates::OPUS,
            ));
        }
        let rate = params
            .sample_rate
            .ok_or_else(|| undecodable("unknown sample rate"))?;
        let decoder = symphonia::default::get_codecs()
            .make(params, &DecoderOptions::default())
            .map_err(|e| undecodable(format!("unsupported codec ({e})")))?;
        Ok((Self::Symphonia(decoder), rate))
    }

    /// Decode one packet, appending its mono samples. A damaged packet is skipped, as
    /// players do.
    fn decode(&mut self, packet: &Packet, samples: &mut Vec<f32>) -> Result<(), AudioError> {
        match self {
            Self::Opus(opus) => {
                // libopus conceals a bad packet rather than failing on most damage; a refusal
                // (corrupt framing) skips it.
                let _ = opus.decode(packet.buf(), samples);
                Ok(())
            }
            Self::Symphonia(decoder) => {
                let decoded = match decoder.decode(packet) {
                    Ok(d) => d,
                    Err(SymphoniaError::DecodeError(_)) => return Ok(()),
                    Err(e) => return Err(undecodable(e)),
                };
                let channels = decoded.spec().channels.count().max(1);
                let mut buf = SampleBuffer::<f32>::new(decoded.capacity() as u64, *decoded.spec());
                buf.copy_interleaved_ref(decoded);
                samples.extend(pcm::downmix(buf.samples(), channels));
                Ok(())
            }
        }
    }
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
