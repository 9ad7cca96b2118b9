//! Opus both ways at 48 kHz mono: decoding the caller's packets (with loss concealment and
//! DTX gaps filled with silence) and encoding reply audio into 20 ms RTP packets.

use opus::{Application, Bitrate, Channels, Decoder, Encoder};

use super::jitter::Frame;

/// Opus's RTP clock and our media rate.
pub const RATE: u32 = 48_000;
/// Samples in one 20 ms frame.
pub const FRAME_SAMPLES: usize = 960;
/// The longest Opus packet: 120 ms.
const MAX_PACKET_SAMPLES: usize = 5_760;
/// A timestamp jump beyond this is a new talk spurt after a long pause, not silence to fill.
const MAX_GAP_SAMPLES: u32 = 2 * RATE;

#[derive(Debug, thiserror::Error)]
#[error("opus: {0}")]
pub struct CodecError(#[from] opus::Error);

/// The caller's audio: jitter-buffered frames in, 48 kHz samples out.
pub struct OpusIn {
    decoder: Decoder,
    expected_ts: Option<u32>,
    out: Vec<f32>,
    pub concealed: u64,
}

impl std::fmt::Debug for OpusIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusIn").finish_non_exhaustive()
    }
}

impl OpusIn {
    pub fn new() -> Result<Self, CodecError> {
        Ok(Self {
            decoder: Decoder::new(RATE, Channels::Mono)?,
            expected_ts: None,
            out: vec![0.0; MAX_PACKET_SAMPLES],
            concealed: 0,
        })
    }

    /// Decode one frame. A packet that fails to decode is concealed like a lost one.
    pub fn decode(&mut self, frame: &Frame) -> Vec<f32> {
        let mut samples = Vec::new();
        match frame {
            Frame::Packet { timestamp, payload } => {
                if let Some(expected) = self.expected_ts {
                    // A sender in DTX skips timestamps while silent: give the silence back.
                    let gap = timestamp.wrapping_sub(expected);
                    if gap > 0 && gap <= MAX_GAP_SAMPLES {
                        samples.resize(gap as usize, 0.0);
                    }
                }
                match self.decoder.decode_float(payload, &mut self.out, false) {
                    Ok(n) => {
                        samples.extend_from_slice(&self.out[..n]);
                        self.expected_ts = Some(timestamp.wrapping_add(n as u32));
                    }
                    Err(_) => {
                        samples.extend(self.conceal(None));
                        self.expected_ts = Some(timestamp.wrapping_add(FRAME_SAMPLES as u32));
                    }
                }
            }
            Frame::Lost { fec } => {
                samples.extend(self.conceal(fec.as_deref()));
                self.expected_ts = self
                    .expected_ts
                    .map(|t| t.wrapping_add(FRAME_SAMPLES as u32));
            }
        }
        samples
    }

    /// 20 ms for a missing packet: rebuilt from the next packet's FEC data when it has any,
    /// else Opus's packet-loss concealment.
    fn conceal(&mut self, fec: Option<&[u8]>) -> Vec<f32> {
        self.concealed += 1;
        let out = &mut self.out[..FRAME_SAMPLES];
        let n = match fec {
            Some(next) => self.decoder.decode_float(next, out, true),
            None => self.decoder.decode_float(&[], out, false),
        }
        .or_else(|_| {
            self.decoder
                .decode_float(&[], &mut self.out[..FRAME_SAMPLES], false)
        })
        .unwrap_or(0);
        if n == 0 {
            return vec![0.0; FRAME_SAMPLES];
        }
        self.out[..n].to_vec()
    }
}

/// One encoded reply frame, ready to packetize.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedFrame {
    pub payload: Vec<u8>,
    pub sequence_number: u16,
    pub timestamp: u32,
    /// The first packet of a talk spurt (RTP marker bit for audio).
    pub marker: bool,
}

/// Reply audio: 48 kHz samples queued by the writer, one 20 ms frame taken per pacer tick.
pub struct OpusOut {
    encoder: Encoder,
    queue: std::collections::VecDeque<f32>,
    sequence_number: u16,
    /// RTP timestamp of the next frame within a talk spurt.
    next_ts: u32,
    talking: bool,
    buf: Vec<u8>,
}

impl std::fmt::Debug for OpusOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusOut")
            .field("queued", &self.queue.len())
            .finish_non_exhaustive()
    }
}

impl OpusOut {
    /// `first_sequence` and `first_timestamp` should be random (RFC 3550).
    pub fn new(first_sequence: u16, first_timestamp: u32) -> Result<Self, CodecError> {
        let mut encoder = Encoder::new(RATE, Channels::Mono, Application::Voip)?;
        encoder.set_bitrate(Bitrate::Bits(32_000))?;
        // Speech from a TTS voice: complexity 5 sounds the same as 10 at half the CPU.
        encoder.set_complexity(5)?;
        encoder.set_inband_fec(true)?;
        encoder.set_packet_loss_perc(5)?;
        Ok(Self {
            encoder,
            queue: Default::default(),
            sequence_number: first_sequence,
            next_ts: first_timestamp,
            talking: false,
            buf: vec![0; 1500],
        })
    }

    pub fn push(&mut self, samples: &[f32]) {
        self.queue.extend(samples);
    }

    /// Drop everything queued (barge-in): the caller hears nothing more of it.
    pub fn clear(&mut self) {
        self.queue.clear();
    }

    pub fn queued_samples(&self) -> usize {
        self.queue.len()
    }

    /// The next 20 ms frame, once a whole frame is queued or `flush` says no more is coming
    /// soon (the tail is padded with silence). `elapsed_ts` is the RTP clock's wall-clock
    /// position, used to place the first frame of a new talk spurt after a pause.
    pub fn next_frame(&mut self, elapsed_ts: u32, flush: bool) -> Option<EncodedFrame> {
        if self.queue.is_empty() || (self.queue.len() < FRAME_SAMPLES && !flush) {
            if self.queue.is_empty() {
                self.talking = false;
            }
            return None;
        }
        let mut frame: Vec<f32> = self
            .queue
            .drain(..FRAME_SAMPLES.min(self.queue.len()))
            .collect();
        frame.resize(FRAME_SAMPLES, 0.0);
        let marker = !self.talking;
        if marker && elapsed_ts.wrapping_sub(self.next_ts) as i32 > 0 {
            // After a pause the timestamp jumps by the silence (as Opus DTX does), with no
            // gap in sequence numbers, so the receiver sees a pause and not loss.
            self.next_ts = elapsed_ts;
        }
        self.talking = true;
        let n = self.encoder.encode_float(&frame, &mut self.buf).ok()?;
        let out = EncodedFrame {
            payload: self.buf[..n].to_vec(),
            sequence_number: self.sequence_number,
            timestamp: self.next_ts,
            marker,
        };
        self.sequence_number = self.sequence_number.wrapping_add(1);
        self.next_ts = self.next_ts.wrapping_add(FRAME_SAMPLES as u32);
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| 0.3 * (i as f32 * 440.0 * std::f32::consts::TAU / RATE as f32).sin())
            .collect()
    }

    fn rms(x: &[f32]) -> f32 {
        (x.iter().map(|v| v * v).sum::<f32>() / x.len().max(1) as f32).sqrt()
    }

    #[test]
    fn round_trip_keeps_the_signal_and_timing() {
        let mut out = OpusOut::new(100, 5_000).unwrap();
        out.push(&tone(FRAME_SAMPLES * 10 + 100));
        let mut frames = Vec::new();
        while let Some(f) = out.next_frame(0, false) {
            frames.push(f);
        }
        assert_eq!(frames.len(), 10, "a partial frame waits for more audio");
        assert!(frames[0].marker && !frames[1].marker);
        assert_eq!(frames[1].sequence_number, 101);
        assert_eq!(frames[1].timestamp, 5_000 + FRAME_SAMPLES as u32);
        let tail = out.next_frame(0, true).unwrap();
        assert_eq!(tail.sequence_number, 110);
        assert!(out.next_frame(0, true).is_none());

        let mut inp = OpusIn::new().unwrap();
        let mut decoded = Vec::new();
        for f in &frames {
            decoded.extend(inp.decode(&Frame::Packet {
                timestamp: f.timestamp,
                payload: f.payload.clone(),
            }));
        }
        assert_eq!(decoded.len(), FRAME_SAMPLES * 10);
        let r = rms(&decoded[FRAME_SAMPLES * 2..]);
        assert!((0.15..0.3).contains(&r), "rms {r}");
    }

    #[test]
    fn loss_is_concealed_and_dtx_gaps_become_silence() {
        let mut out = OpusOut::new(0, 0).unwrap();
        out.push(&tone(FRAME_SAMPLES * 4));
        let frames: Vec<_> = std::iter::from_fn(|| out.next_frame(0, false)).collect();
        let mut inp = OpusIn::new().unwrap();
        let pkt = |f: &EncodedFrame| Frame::Packet {
            timestamp: f.timestamp,
            payload: f.payload.clone(),
        };
        assert_eq!(inp.decode(&pkt(&frames[0])).len(), FRAME_SAMPLES);
        let lost = inp.decode(&Frame::Lost {
            fec: Some(frames[2].payload.clone()),
        });
        assert_eq!(lost.len(), FRAME_SAMPLES);
        assert!(rms(&lost) > 0.05, "concealment continues the tone");
        assert_eq!(inp.decode(&pkt(&frames[2])).len(), FRAME_SAMPLES);
        // The sender went quiet for 100 ms (DTX) before its next packet.
        let later = Frame::Packet {
            timestamp: frames[3].timestamp + 4_800,
            payload: frames[3].payload.clone(),
        };
        assert_eq!(inp.decode(&later).len(), 4_800 + FRAME_SAMPLES);
        assert_eq!(inp.concealed, 1);
    }

    #[test]
    fn a_new_talk_spurt_jumps_the_timestamp_not_the_sequence() {
        let mut out = OpusOut::new(7, 0).unwrap();
        out.push(&tone(FRAME_SAMPLES));
        let a = out.next_frame(0, false).unwrap();
        assert!(out.next_frame(9_600, false).is_none());
        out.push(&tone(FRAME_SAMPLES));
        let b = out.next_frame(48_000, false).unwrap();
        assert!(b.marker);
        assert_eq!(b.sequence_number, a.sequence_number + 1);
        assert_eq!(b.timestamp, 48_000);
    }

    #[test]
    fn clear_drops_queued_audio() {
        let mut out = OpusOut::new(0, 0).unwrap();
        out.push(&tone(FRAME_SAMPLES * 6));
        out.clear();
        assert_eq!(out.queued_samples(), 0);
        assert!(out.next_frame(0, true).is_none());
    }
}
