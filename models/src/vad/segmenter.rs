//! Speech segments from per-frame probabilities, with hysteresis: speech starts at
//! `threshold` and continues while the probability stays above `threshold - 0.15`; once it
//! drops below, `min_silence_ms` after the last confident (>= `threshold`) frame closes the
//! segment. The segment ends where that last confident frame ends: Silero's probability decays
//! over a few frames after speech stops, so the first low frame would mark the end too late.

/// Segmenter parameters (the Realtime API's `server_vad` uses the same names).
#[derive(Debug, Clone, Copy)]
pub struct SegmenterConfig {
    /// Probability at which speech starts.
    pub threshold: f32,
    /// Silence this long ends a segment.
    pub min_silence_ms: u32,
    /// Segments shorter than this are dropped as clicks.
    pub min_speech_ms: u32,
    /// Padding added to each side of a segment.
    pub speech_pad_ms: u32,
    /// Frame length in milliseconds (32 for Silero at 16 kHz).
    pub frame_ms: u32,
    /// How long the model keeps scoring speech after speech stops; subtracted from segment
    /// ends. Silero's probability stays above 0.5 for about two 32 ms frames (measured in
    /// the `vad_segments` test: onsets are found within one frame, offsets two to three late).
    pub offset_lag_ms: u32,
}

impl Default for SegmenterConfig {
    fn default() -> Self {
        Self {
            threshold: 0.5,
            min_silence_ms: 300,
            min_speech_ms: 150,
            speech_pad_ms: 0,
            frame_ms: 32,
            offset_lag_ms: 64,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpeechSegment {
    pub start_ms: u32,
    pub end_ms: u32,
}

/// Streaming segmenter: feed probabilities frame by frame, get segments as they close.
#[derive(Debug)]
pub struct SpeechSegmenter {
    cfg: SegmenterConfig,
    frame: u32,
    start: Option<u32>,
    /// End of the last frame at or above `threshold` in the open segment.
    last_speech_end: u32,
    /// Silence that closes the open segment instead of `min_silence_ms`, until speech
    /// goes on ([`SpeechSegmenter::set_open_silence_ms`]).
    open_silence_ms: Option<u32>,
}

impl SpeechSegmenter {
    pub fn new(cfg: SegmenterConfig) -> Self {
        Self {
            cfg,
            frame: 0,
            start: None,
            last_speech_end: 0,
            open_silence_ms: None,
        }
    }

    /// Whether speech is ongoing.
    pub fn in_speech(&self) -> bool {
        self.start.is_some()
    }

    /// Where the speech in progress started, if any.
    pub fn open_start_ms(&self) -> Option<u32> {
        self.start
    }

    /// Confident speech in the open segment so far: from its start to its last frame at or
    /// above the threshold, less the model's offset lag (the same end a close would give).
    pub fn open_speech_ms(&self) -> Option<u32> {
        let start = self.start?;
        Some(
            self.last_speech_end
                .saturating_sub(self.cfg.offset_lag_ms)
                .saturating_sub(start),
        )
    }

    /// Time since the open segment's last confident frame: how long the speaker has paused
    /// (0 while they speak).
    pub fn open_pause_ms(&self) -> Option<u32> {
        self.start?;
        Some((self.frame * self.cfg.frame_ms).saturating_sub(self.last_speech_end))
    }

    /// The segment that closing now would give, if it is long enough to count: what a
    /// pause that lasts will end as.
    pub fn open_segment(&self) -> Option<SpeechSegment> {
        self.segment_from(self.start?)
    }

    /// Let the current pause close the open segment after `ms` of silence instead of
    /// `min_silence_ms` (semantic end of turn: a caller who sounds finished waits less, one
    /// who does not waits more). Forgotten once speech goes on or the segment closes.
    pub fn set_open_silence_ms(&mut self, ms: u32) {
        if self.start.is_some() {
            self.open_silence_ms = Some(ms);
        }
    }

    /// Feed one frame's probability; returns a segment when one closes.
    pub fn push(&mut self, prob: f32) -> Option<SpeechSegment> {
        let t = self.frame * self.cfg.frame_ms;
        self.frame += 1;
        let frame_end = t + self.cfg.frame_ms;
        if prob >= self.cfg.threshold {
            self.start.get_or_insert(t);
            self.last_speech_end = frame_end;
            self.open_silence_ms = None;
            return None;
        }
        let start = self.start?;
        let below_hysteresis = prob < self.cfg.threshold - 0.15;
        let min_silence = self.open_silence_ms.unwrap_or(self.cfg.min_silence_ms);
        if below_hysteresis && frame_end - self.last_speech_end >= min_silence {
            return self.close(start);
        }
        None
    }

    /// End of audio: close any open segment.
    pub fn finish(&mut self) -> Option<SpeechSegment> {
        self.start.and_then(|start| self.close(start))
    }

    fn close(&mut self, start: u32) -> Option<SpeechSegment> {
        self.start = None;
        self.open_silence_ms = None;
        self.segment_from(start)
    }

    fn segment_from(&self, start: u32) -> Option<SpeechSegment> {
        let end = self
            .last_speech_end
            .saturating_sub(self.cfg.offset_lag_ms)
            .max(start);
        (end - start >= self.cfg.min_speech_ms).then(|| SpeechSegment {
            start_ms: start.saturating_sub(self.cfg.speech_pad_ms),
            end_ms: end + self.cfg.speech_pad_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(probs: &[f32]) -> Vec<SpeechSegment> {
        let mut s = SpeechSegmenter::new(SegmenterConfig {
            offset_lag_ms: 0,
            ..SegmenterConfig::default()
        });
        let mut out: Vec<_> = probs.iter().filter_map(|&p| s.push(p)).collect();
        out.extend(s.finish());
        out
    }

    #[test]
    fn finds_two_segments_and_ignores_short_dips_and_clicks() {
        let mut p = vec![0.0; 10];
        p.extend(vec![0.9; 20]); // 320..960 ms
        p.extend(vec![0.1; 3]); // short dip: same segment
        p.extend(vec![0.9; 10]); // ..1376
        p.extend(vec![0.0; 20]);
        p.extend(vec![0.9; 2]); // click, too short
        p.extend(vec![0.0; 20]);
        p.extend(vec![0.8; 15]); // open at the end
        assert_eq!(
            run(&p),
            vec![
                SpeechSegment {
                    start_ms: 320,
                    end_ms: 1376
                },
                SpeechSegment {
                    start_ms: 2720,
                    end_ms: 3200
                }
            ]
        );
    }

    #[test]
    fn an_open_pause_predicts_the_segment_it_closes_as() {
        let mut s = SpeechSegmenter::new(SegmenterConfig::default());
        assert_eq!(s.open_pause_ms(), None);
        for _ in 0..10 {
            s.push(0.0);
        }
        for _ in 0..20 {
            s.push(0.9); // 320..960 ms
        }
        assert_eq!(s.open_pause_ms(), Some(0));
        for _ in 0..4 {
            assert_eq!(s.push(0.1), None);
        }
        assert_eq!(s.open_pause_ms(), Some(128));
        let predicted = s.open_segment();
        let closed = (0..10).find_map(|_| s.push(0.1));
        assert_eq!(closed, predicted);
        assert_eq!(s.open_pause_ms(), None);
        // Too short to count: no prediction.
        s.push(0.9);
        s.push(0.0);
        assert_eq!(s.open_segment(), None);
    }

    #[test]
    fn hysteresis_keeps_speech_between_thresholds() {
        let mut p = vec![0.9; 10];
        p.extend(vec![0.4; 30]); // above 0.35: not closed, though 960 ms past confident speech
        p.extend(vec![0.9; 5]); // ..1440: the same segment goes on
        p.extend(vec![0.0; 20]);
        assert_eq!(
            run(&p),
            vec![SpeechSegment {
                start_ms: 0,
                end_ms: 1440
            }]
        );
    }

    #[test]
    fn a_pause_may_be_given_its_own_silence_until_speech_goes_on() {
        let mut s = SpeechSegmenter::new(SegmenterConfig {
            min_silence_ms: 2_000,
            offset_lag_ms: 0,
            ..SegmenterConfig::default()
        });
        for _ in 0..20 {
            s.push(0.9); // 0..640 ms
        }
        s.push(0.0);
        s.set_open_silence_ms(200); // closes 200 ms after 640 ms
        let closed: Vec<_> = (0..10).map(|_| s.push(0.0)).collect();
        assert_eq!(
            closed.iter().flatten().copied().collect::<Vec<_>>(),
            vec![SpeechSegment {
                start_ms: 0,
                end_ms: 640
            }]
        );
        assert_eq!(
            closed.iter().position(Option::is_some),
            Some(5),
            "at 832 ms"
        );
        // Speech going on forgets it: the next pause waits the configured 2 s.
        for _ in 0..10 {
            s.push(0.9);
        }
        s.push(0.0);
        s.set_open_silence_ms(200);
        s.push(0.9);
        assert!((0..60).all(|_| s.push(0.0).is_none()), "closed before 2 s");
        assert!((0..10).any(|_| s.push(0.0).is_some()));
        // With no speech open there is nothing to set.
        s.set_open_silence_ms(0);
        assert_eq!(s.push(0.0), None);
    }
}
