//! MP3 encoding with LAME (through `mp3lame-encoder`), as a stream: MP3 is a sequence of
//! self-contained frames with no file header, so each piece of speech can be sent the
//! moment it is encoded and the concatenation is a valid file.
//!
//! LAME holds back up to about one frame (1,152 samples) plus its look-ahead; `finish`
//! flushes it. The encoder delay (~50 ms of leading silence) is LAME's usual.

use mp3lame_encoder::{Bitrate, Builder, Encoder, FlushNoGap, MonoPcm, Quality};

use super::AudioError;

/// A mono MP3 stream at a fixed sample rate and constant bit rate.
pub struct Mp3Encoder {
    lame: Encoder,
}

impl std::fmt::Debug for Mp3Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mp3Encoder")
            .field("sample_rate", &self.lame.sample_rate())
            .finish()
    }
}

fn bitrate(kbps: u32) -> Result<Bitrate, AudioError> {
    Ok(match kbps {
        32 => Bitrate::Kbps32,
        48 => Bitrate::Kbps48,
        64 => Bitrate::Kbps64,
        96 => Bitrate::Kbps96,
        128 => Bitrate::Kbps128,
        160 => Bitrate::Kbps160,
        192 => Bitrate::Kbps192,
        other => {
            return Err(AudioError::Encode(format!(
                "MP3 bit rate {other} kbps is not offered (32, 48, 64, 96, 128, 160, 192)"
            )));
        }
    })
}

fn encode_err(e: impl std::fmt::Display) -> AudioError {
    AudioError::Encode(format!("MP3: {e}"))
}

impl Mp3Encoder {
    /// `sample_rate` must be one MP3 knows (8 to 48 kHz: 8, 11.025, 12, 16, 22.05, 24, 32,
    /// 44.1, 48 kHz); LAME writes it as is, without resampling.
    pub fn new(sample_rate: u32, kbps: u32) -> Result<Self, AudioError> {
        if !matches!(
            sample_rate,
            8_000 | 11_025 | 12_000 | 16_000 | 22_050 | 24_000 | 32_000 | 44_100 | 48_000
        ) {
            return Err(AudioError::UnsupportedRate(sample_rate));
        }
        let mut b = Builder::new().ok_or_else(|| encode_err("LAME could not start"))?;
        b.set_num_channels(1).map_err(encode_err)?;
        b.set_sample_rate(sample_rate).map_err(encode_err)?;
        b.set_output_sample_rate(std::num::NonZeroU32::new(sample_rate))
            .map_err(encode_err)?;
        b.set_brate(bitrate(kbps)?).map_err(encode_err)?;
        // A stream cannot go back to fill in a Xing/LAME header frame: leave it out.
        b.set_to_write_vbr_tag(false).map_err(encode_err)?;
        // Quality 5 is LAME's fast default; speech gains nothing audible from slower modes.
        b.set_quality(Quality::Good).map_err(encode_err)?;
        Ok(Self {
            lame: b.build().map_err(encode_err)?,
        })
    }

    /// Encode more samples (f32 in [-1, 1]); returns the frames completed so far.
    pub fn encode(&mut self, samples: &[f32]) -> Result<Vec<u8>, AudioError> {
        let mut out = Vec::with_capacity(mp3lame_encoder::max_required_buffer_size(samples.len()));
        self.lame
            .encode_to_vec(MonoPcm(samples), &mut out)
            .map_err(encode_err)?;
        Ok(out)
    }

    /// The last frames, padded to a whole frame.
    pub fn finish(mut self) -> Result<Vec<u8>, AudioError> {
        let mut out = Vec::with_capacity(mp3lame_encoder::max_required_buffer_size(0));
        self.lame
            .flush_to_vec::<FlushNoGap>(&mut out)
            .map_err(encode_err)?;
        Ok(out)
    }
}

/// A whole clip as one MP3 file.
pub fn encode(audio: &super::MonoAudio, kbps: u32) -> Result<Vec<u8>, AudioError> {
    let mut enc = Mp3Encoder::new(audio.sample_rate, kbps)?;
    let mut out = enc.encode(&audio.samples)?;
    out.extend(enc.finish()?);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::{MonoAudio, decode};

    fn tone(secs: f32, rate: u32) -> MonoAudio {
        let n = (secs * rate as f32) as usize;
        let samples = (0..n)
            .map(|i| 0.5 * (2.0 * std::f32::consts::PI * 440.0 * i as f32 / rate as f32).sin())
            .collect();
        MonoAudio::new(samples, rate)
    }

    fn rms(s: &[f32]) -> f32 {
        (s.iter().map(|x| x * x).sum::<f32>() / s.len().max(1) as f32).sqrt()
    }

    #[test]
    fn a_streamed_mp3_decodes_to_the_same_sound() {
        let audio = tone(1.0, 24_000);
        let mut enc = Mp3Encoder::new(24_000, 64).unwrap();
        let mut file = Vec::new();
        // In uneven pieces, as speech arrives chunk by chunk.
        for piece in audio.samples.chunks(3_001) {
            file.extend(enc.encode(piece).unwrap());
        }
        file.extend(enc.finish().unwrap());
        // 64 kbps for one second is about 8 KB.
        assert!(
            (6_000..11_000).contains(&file.len()),
            "{} bytes",
            file.len()
        );
        let back = decode::decode(&file, Some("mp3")).unwrap();
        assert_eq!(back.sample_rate, 24_000);
        let secs = back.samples.len() as f32 / 24_000.0;
        assert!((0.95..1.2).contains(&secs), "decoded {secs} s");
        let (a, b) = (rms(&audio.samples), rms(&back.samples[2_400..21_600]));
        assert!((a - b).abs() < 0.05, "rms {a} vs {b}");
    }

    #[test]
    fn whole_files_and_refusals() {
        let file = encode(&tone(0.5, 22_050), 48).unwrap();
        assert!(decode::decode(&file, Some("mp3")).is_ok());
        assert!(matches!(
            Mp3Encoder::new(17_000, 64),
            Err(AudioError::UnsupportedRate(17_000))
        ));
        assert!(matches!(
            Mp3Encoder::new(24_000, 65),
            Err(AudioError::Encode(_))
        ));
        // Silence and empty input are fine.
        let mut enc = Mp3Encoder::new(16_000, 32).unwrap();
        assert!(enc.encode(&[]).unwrap().is_empty());
        enc.encode(&[0.0; 4_000]).unwrap();
        assert!(!enc.finish().unwrap().is_empty());
    }
}
