//! Caller audio: denoised when the session asks, resampled to 16 kHz, kept in the input
//! buffer, and scored by the VAD.
//!
//! Times are milliseconds of caller audio since the call began (`audio_start_ms` and
//! `audio_end_ms` in Realtime terms). Between turns the buffer keeps only the prefix padding,
//! so an idle call holds a few kilobytes.

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::Arc;

use switchboard_models::audio::denoise::Denoiser;
use switchboard_models::audio::{AudioError, Resampler, rates};
use switchboard_models::vad::{
    FRAME_SAMPLES, SegmenterConfig, SileroVad, SpeechSegment, SpeechSegmenter, VadStream,
    VoiceActivity,
};
use tokio::time::Instant;

use crate::session::TurnDetection;

const RATE: u64 = rates::SPEECH_MODELS as u64;
/// Input kept when the client commits turns itself and never does: 10 minutes.
const MAX_BUFFER_SAMPLES: usize = 10 * 60 * RATE as usize;

pub fn ms_to_samples(ms: u64) -> u64 {
    ms * RATE / 1000
}

pub fn samples_to_ms(samples: u64) -> u64 {
    samples * 1000 / RATE
}

/// What the VAD saw in one batch of frames.
#[derive(Debug, PartialEq)]
pub enum VadEvent {
    /// Speech began at `start_ms`; `duration_ms` of it is confident speech so far.
    Speaking { start_ms: u64, duration_ms: u64 },
    /// Speech ended (after the configured silence).
    Ended(SpeechSegment),
    /// The speaker has paused for `early_transcription_ms`: if the pause lasts, the turn
    /// ends as this segment (announced once per pause).
    Paused(SpeechSegment),
    /// Speech went on after a [`VadEvent::Paused`]: that segment will not be the turn.
    Resumed,
}

pub struct InputAudio {
    /// Noise suppression (RNNoise at 48 kHz), when the session asks for it.
    denoiser: Option<Denoiser>,
    /// To 16 kHz: from the input rate, or from the denoiser's 48 kHz.
    resampler: Resampler,
    /// 16 kHz samples; `buffer[0]` is sample number `buffer_start` of the call.
    buffer: Vec<f32>,
    buffer_start: u64,
    /// Samples not yet scored by the VAD (less than a frame).
    vad_pending: Vec<f32>,
    /// When each append's last sample arrived: maps audio time to wall time.
    arrivals: VecDeque<(u64, Instant)>,
    vad: Option<Box<VadStream>>,
    segmenter: SpeechSegmenter,
    /// Call sample at which the segmenter's clock starts.
    segmenter_origin: u64,
    /// A pause this long is announced (0: never).
    early_ms: u32,
    /// The current pause has been announced (a [`VadEvent::Paused`] is out).
    announced: bool,
}

impl std::fmt::Debug for InputAudio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InputAudio")
            .field("buffered", &self.buffer.len())
            .finish_non_exhaustive()
    }
}

fn segmenter(td: &TurnDetection) -> SpeechSegmenter {
    SpeechSegmenter::new(SegmenterConfig {
        threshold: td.threshold,
        min_silence_ms: td.max_silence_ms(),
        // The call decides what a segment is worth (backchannel, click, turn).
        min_speech_ms: 0,
        ..SegmenterConfig::default()
    })
}

impl InputAudio {
    pub fn new(input_rate: u32, vad: Option<&Arc<SileroVad>>, td: &TurnDetection) -> Self {
        Self {
            denoiser: None,
            resampler: Resampler::new(input_rate, rates::SPEECH_MODELS).unwrap_or_else(|_| {
                Resampler::new(rates::SPEECH_MODELS, rates::SPEECH_MODELS)
                    .expect("identity resampler")
            }),
            buffer: Vec::new(),
            buffer_start: 0,
            vad_pending: Vec::new(),
            arrivals: VecDeque::new(),
            vad: vad.map(|v| Box::new(v.stream())),
            segmenter: segmenter(td),
            segmenter_origin: 0,
            early_ms: td.early_ms(),
            announced: false,
        }
    }

    /// The call's audio clock: samples received so far.
    pub fn total_samples(&self) -> u64 {
        self.buffer_start + self.buffer.len() as u64
    }

    /// The call's audio clock in ms: how much caller audio has arrived.
    pub fn now_ms(&self) -> u64 {
        samples_to_ms(self.total_samples())
    }

    /// The rate the caller's audio arrives at.
    fn input_rate(&self) -> u32 {
        match &self.denoiser {
            Some(d) => d.input_rate(),
            None => self.resampler.input_rate(),
        }
    }

    pub fn set_input_rate(&mut self, rate: u32) -> Result<(), AudioError> {
        if rate != self.input_rate() {
            self.rebuild(rate, self.denoiser.is_some())?;
        }
        Ok(())
    }

    /// Suppress noise in the caller's audio from now on, or stop.
    pub fn set_noise_reduction(&mut self, on: bool) -> Result<(), AudioError> {
        if on != self.denoiser.is_some() {
            self.rebuild(self.input_rate(), on)?;
        }
        Ok(())
    }

    /// A new front end: `rate` to 16 kHz, through the denoiser when `denoise`.
    fn rebuild(&mut self, rate: u32, denoise: bool) -> Result<(), AudioError> {
        let (denoiser, resampler) = if denoise {
            let d = Denoiser::new(rate)?;
            (Some(d), Resampler::new(rates::OPUS, rates::SPEECH_MODELS)?)
        } else {
            (None, Resampler::new(rate, rates::SPEECH_MODELS)?)
        };
        self.denoiser = denoiser;
        self.resampler = resampler;
        Ok(())
    }

    /// New turn-detection parameters: the VAD starts afresh from the current position.
    pub fn set_turn_detection(&mut self, td: &TurnDetection) {
        self.segmenter = segmenter(td);
        self.early_ms = td.early_ms();
        self.announced = false;
        // Samples not yet scored are dropped with the old state; the next frame starts here.
        self.vad_pending.clear();
        self.segmenter_origin = self.total_samples();
        if let Some(v) = self.vad.as_mut() {
            v.reset();
        }
    }

    /// Add caller audio at the input rate. Returns the 16 kHz frames the VAD should score.
    pub fn append(&mut self, samples: &[f32], now: Instant) -> Vec<f32> {
        let resampled = match self.denoiser.as_mut() {
            Some(d) => d
                .push(samples)
                .and_then(|clean| self.resampler.push(&clean)),
            None => self.resampler.push(samples),
        }
        .unwrap_or_default();
        self.buffer.extend_from_slice(&resampled);
        self.arrivals.push_back((self.total_samples(), now));
        while self.arrivals.len() > 512 {
            self.arrivals.pop_front();
        }
        if self.buffer.len() > MAX_BUFFER_SAMPLES {
            let excess = self.buffer.len() - MAX_BUFFER_SAMPLES;
            self.drop_front(excess);
        }
        self.vad_pending.extend_from_slice(&resampled);
        let whole = self.vad_pending.len() / FRAME_SAMPLES * FRAME_SAMPLES;
        self.vad_pending.drain(..whole).collect()
    }

    /// Take the VAD out to score frames off the async runtime; give it back with [`Self::restore_vad`].
    pub fn take_vad(&mut self) -> Option<Box<VadStream>> {
        self.vad.take()
    }

    pub fn restore_vad(&mut self, vad: Box<VadStream>) {
        self.vad = Some(vad);
    }

    /// Feed the VAD's probabilities for frames handed out by [`Self::append`].
    pub fn on_probabilities(&mut self, probs: &[f32]) -> Vec<VadEvent> {
        let origin_ms = samples_to_ms(self.segmenter_origin) as u32;
        let mut events = Vec::new();
        for &p in probs {
            if let Some(seg) = self.segmenter.push(p) {
                self.announced = false;
                events.push(VadEvent::Ended(self.on_call_clock(seg)));
            }
            match self.segmenter.open_pause_ms() {
                Some(0) if self.announced => {
                    self.announced = false;
                    events.push(VadEvent::Resumed);
                }
                Some(pause) if self.early_ms > 0 && pause >= self.early_ms && !self.announced => {
                    // A segment too short to count is not announced; the next frame asks again.
                    if let Some(seg) = self.segmenter.open_segment() {
                        self.announced = true;
                        events.push(VadEvent::Paused(self.on_call_clock(seg)));
                    }
                }
                _ => {}
            }
            if let (Some(start), Some(speech)) = (
                self.segmenter.open_start_ms(),
                self.segmenter.open_speech_ms(),
            ) {
                events.push(VadEvent::Speaking {
                    start_ms: (start + origin_ms) as u64,
                    duration_ms: speech as u64,
                });
            }
        }
        events
    }

    /// A segment of the segmenter's clock on the call's.
    fn on_call_clock(&self, seg: SpeechSegment) -> SpeechSegment {
        let origin_ms = samples_to_ms(self.segmenter_origin) as u32;
        SpeechSegment {
            start_ms: seg.start_ms + origin_ms,
            end_ms: seg.end_ms + origin_ms,
        }
    }

    /// End the caller's pause as a turn once it lasts `ms` (`semantic_vad`): now, returning
    /// the turn's segment, if it already has; otherwise the VAD ends it when it gets there,
    /// unless speech goes on first. `None` too when no one is pausing.
    pub fn end_pause_after(&mut self, ms: u32) -> Option<SpeechSegment> {
        let pause = self.segmenter.open_pause_ms()?;
        if pause < ms {
            self.segmenter.set_open_silence_ms(ms);
            return None;
        }
        self.announced = false;
        let seg = self.segmenter.finish()?;
        Some(self.on_call_clock(seg))
    }

    /// Score frames with a VAD stream (blocking: call from a worker thread).
    pub fn score(vad: &mut VadStream, frames: &[f32]) -> Vec<f32> {
        frames
            .chunks_exact(FRAME_SAMPLES)
            .map(|f| vad.speech_probability(f).unwrap_or(0.0))
            .collect()
    }

    /// Whether speech is in progress (a turn is open).
    #[cfg(test)]
    pub fn in_speech(&self) -> bool {
        self.segmenter.in_speech()
    }

    /// Between turns keep only `keep_ms` of recent audio (the prefix padding).
    pub fn trim_idle(&mut self, keep_ms: u64) {
        let keep = ms_to_samples(keep_ms) as usize;
        if self.buffer.len() > keep * 2 {
            let excess = self.buffer.len() - keep;
            self.drop_front(excess);
        }
    }

    fn drop_front(&mut self, n: usize) {
        self.buffer.drain(..n);
        self.buffer_start += n as u64;
    }

    /// The call samples from `start_ms` to `end_ms`, clamped to what is buffered.
    pub fn span(&self, start_ms: u64, end_ms: u64) -> Range<u64> {
        let start = ms_to_samples(start_ms).max(self.buffer_start);
        let end = ms_to_samples(end_ms).clamp(start, self.total_samples());
        start..end
    }

    /// A copy of the audio in `span`, left in the buffer.
    pub fn copy(&self, span: &Range<u64>) -> Vec<f32> {
        let from = (span.start.max(self.buffer_start) - self.buffer_start) as usize;
        let to = (span.end.max(self.buffer_start) - self.buffer_start) as usize;
        self.buffer[from.min(self.buffer.len())..to.min(self.buffer.len())].to_vec()
    }

    /// Take the audio from `start_ms` to `end_ms` (clamped to what is buffered) and forget
    /// everything before `end_ms`.
    pub fn take_range(&mut self, start_ms: u64, end_ms: u64) -> Vec<f32> {
        let span = self.span(start_ms, end_ms);
        let out = self.copy(&span);
        self.drop_front((span.end - self.buffer_start) as usize);
        out
    }

    /// Take everything buffered (a client commit). Returns the audio and its start in ms.
    pub fn take_all(&mut self) -> (Vec<f32>, u64) {
        let start_ms = samples_to_ms(self.buffer_start);
        let n = self.buffer.len();
        let out = std::mem::take(&mut self.buffer);
        self.buffer_start += n as u64;
        (out, start_ms)
    }

    pub fn buffered_ms(&self) -> u64 {
        samples_to_ms(self.buffer.len() as u64)
    }

    pub fn clear(&mut self) {
        let n = self.buffer.len();
        self.drop_front(n);
    }

    /// When the audio at `ms` arrived (for voice-to-voice timing).
    pub fn arrival_of(&self, ms: u64) -> Option<Instant> {
        let sample = ms_to_samples(ms);
        self.arrivals
            .iter()
            .find(|(end, _)| *end >= sample)
            .map(|(_, t)| *t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> InputAudio {
        InputAudio::new(16_000, None, &TurnDetection::default())
    }

    #[test]
    fn probabilities_become_speaking_and_ended_events() {
        let mut a = input();
        let mut probs = vec![0.0; 5];
        probs.extend(vec![0.9; 10]);
        probs.extend(vec![0.0; 20]);
        let events = a.on_probabilities(&probs);
        // The first frame's 32 ms is within Silero's 64 ms offset lag: no confident speech yet.
        assert_eq!(
            events[0],
            VadEvent::Speaking {
                start_ms: 160,
                duration_ms: 0
            }
        );
        assert!(events.contains(&VadEvent::Speaking {
            start_ms: 160,
            duration_ms: 256
        }));
        let ended: Vec<_> = events
            .iter()
            .filter(|e| matches!(e, VadEvent::Ended(_)))
            .collect();
        assert_eq!(
            ended,
            vec![&VadEvent::Ended(SpeechSegment {
                start_ms: 160,
                end_ms: 416
            })]
        );
        assert!(!a.in_speech());
    }

    #[test]
    fn a_pause_is_announced_once_and_withdrawn_when_speech_goes_on() {
        let mut a = input(); // early transcription after 160 ms, the turn after 500 ms
        let paused = |events: &[VadEvent]| {
            events
                .iter()
                .filter(|e| matches!(e, VadEvent::Paused(_)))
                .count()
        };
        let mut probs = vec![0.9; 20]; // 0..640 ms
        probs.extend(vec![0.0; 8]); // a 256 ms pause
        let events = a.on_probabilities(&probs);
        assert_eq!(paused(&events), 1, "{events:?}");
        assert!(events.contains(&VadEvent::Paused(SpeechSegment {
            start_ms: 0,
            end_ms: 576
        })));
        let events = a.on_probabilities(&[0.9; 10]); // speech goes on
        assert_eq!(
            events.iter().filter(|e| **e == VadEvent::Resumed).count(),
            1
        );
        let events = a.on_probabilities(&[0.0; 20]);
        assert_eq!(paused(&events), 1);
        let predicted = events.iter().find_map(|e| match e {
            VadEvent::Paused(s) => Some(*s),
            _ => None,
        });
        let ended = events.iter().find_map(|e| match e {
            VadEvent::Ended(s) => Some(*s),
            _ => None,
        });
        assert_eq!(
            predicted, ended,
            "the second pause ended the turn as announced"
        );
        assert!(!events.contains(&VadEvent::Resumed));

        let mut off = InputAudio::new(
            16_000,
            None,
            &TurnDetection {
                early_transcription_ms: 0,
                ..TurnDetection::default()
            },
        );
        let mut probs = vec![0.9; 20];
        probs.extend(vec![0.0; 20]);
        assert_eq!(paused(&off.on_probabilities(&probs)), 0);
    }

    #[test]
    fn semantic_turn_detection_ends_a_pause_when_told_how_long_it_must_last() {
        let semantic = TurnDetection {
            eagerness: Some(crate::session::Eagerness::Auto),
            early_transcription_ms: 0,
            ..TurnDetection::default()
        };
        let mut a = InputAudio::new(16_000, None, &semantic);
        let mut probs = vec![0.9; 20]; // 0..640 ms
        probs.extend(vec![0.0; 10]); // a 320 ms pause: announced (semantic always is), not ended
        let events = a.on_probabilities(&probs);
        assert!(
            events.iter().any(|e| matches!(e, VadEvent::Paused(_))),
            "{events:?}"
        );
        assert!(!events.iter().any(|e| matches!(e, VadEvent::Ended(_))));
        assert_eq!(a.end_pause_after(1_000), None, "the pause is too short yet");
        let events = a.on_probabilities(&[0.0; 25]); // 800 ms more: 1 s of silence
        let ended = events.iter().find_map(|e| match e {
            VadEvent::Ended(s) => Some(*s),
            _ => None,
        });
        assert_eq!(
            ended,
            Some(SpeechSegment {
                start_ms: 0,
                end_ms: 576
            })
        );
        // A judgement the pause already satisfies ends the turn at once.
        a.on_probabilities(&[0.9; 20]);
        a.on_probabilities(&[0.0; 6]);
        assert!(a.end_pause_after(0).is_some());
        assert!(!a.in_speech());
        assert_eq!(a.end_pause_after(0), None, "no one is pausing");
        // Without a judgement the turn waits 4 s, the most `auto` allows.
        a.on_probabilities(&[0.9; 20]);
        let events = a.on_probabilities(&[0.0; 120]);
        assert!(!events.iter().any(|e| matches!(e, VadEvent::Ended(_))));
        let events = a.on_probabilities(&[0.0; 10]);
        assert!(events.iter().any(|e| matches!(e, VadEvent::Ended(_))));
    }

    #[test]
    fn buffer_ranges_and_trimming_keep_the_call_clock() {
        let mut a = input();
        let now = Instant::now();
        let frames = a.append(&vec![0.1; 16_000], now);
        assert_eq!(frames.len(), 31 * FRAME_SAMPLES);
        a.trim_idle(600);
        assert_eq!(a.buffered_ms(), 1000, "not trimmed until twice the padding");
        a.trim_idle(300);
        assert_eq!(a.buffered_ms(), 300);
        a.append(&vec![0.1; 16_000], now);
        assert_eq!(a.total_samples(), 32_000);
        assert_eq!(a.span(500, 1_900), 11_200..30_400);
        assert_eq!(a.copy(&a.span(1_000, 1_010)).len(), 160);
        let turn = a.take_range(500, 1_900);
        assert_eq!(
            turn.len(),
            19_200,
            "700..1900 ms: starts at the oldest kept sample"
        );
        assert_eq!(a.buffered_ms(), 100);
        assert_eq!(a.arrival_of(1_950), Some(now));
    }
}
