//! The reply audio of one response and its playback clock.
//!
//! Audio is sent to the channel paced at real time plus a small lead, so that at any moment
//! the call knows how much the caller has heard: `heard = min(sent, time played)`. Barge-in
//! pauses the clock (what was sent ahead is flushed by the channel); resuming sends again
//! from the heard position. The spoken text of each chunk is kept beside its samples so the
//! assistant's transcript can be cut to exactly what was heard.
//!
//! A response may speak several message items in turn (one before an MCP call, one after):
//! each item's audio is a span of the one clock, and what was heard of it is counted
//! within that span.

use std::ops::Range;
use std::time::Duration;

use tokio::time::Instant;

/// Audio sent ahead of the playback clock: covers network and scheduling jitter, and is what
/// a client may have buffered but not played when it is told to flush.
pub const LEAD: Duration = Duration::from_millis(120);
/// Reply audio is sent in frames of this length (or what is left at the end).
pub const FRAME: Duration = Duration::from_millis(20);
/// Synthesized audio held ahead of playback before synthesis is made to wait.
pub const MAX_AHEAD: Duration = Duration::from_secs(8);

#[derive(Debug)]
struct Spoken {
    end: usize,
    text: String,
}

#[derive(Debug)]
pub struct Playback {
    rate: u32,
    samples: Vec<f32>,
    spoken: Vec<Spoken>,
    /// Where each message item's audio starts, in order.
    items: Vec<(usize, String)>,
    sent: usize,
    /// Samples played before the clock was last (re)started.
    played_base: usize,
    /// When the clock was (re)started; `None` while paused or not yet started.
    since: Option<Instant>,
    paused: bool,
}

impl Playback {
    pub fn new(rate: u32) -> Self {
        Self {
            rate,
            samples: Vec::new(),
            spoken: Vec::new(),
            items: Vec::new(),
            sent: 0,
            played_base: 0,
            since: None,
            paused: false,
        }
    }

    fn to_samples(&self, d: Duration) -> usize {
        (d.as_secs_f64() * self.rate as f64) as usize
    }

    pub fn ms(&self, samples: usize) -> u32 {
        (samples as u64 * 1000 / self.rate as u64) as u32
    }

    /// The audio pushed from now on is `item_id`'s (the first item's from the start).
    pub fn begin_item(&mut self, item_id: &str) {
        if self.items.last().is_none_or(|(_, id)| id != item_id) {
            self.items.push((self.samples.len(), item_id.to_owned()));
        }
    }

    /// The samples of `item_id`'s audio so far, and whether it is whole (the next item's
    /// audio has begun).
    pub fn item_span(&self, item_id: &str) -> Option<(Range<usize>, bool)> {
        let at = self.items.iter().position(|(_, id)| id == item_id)?;
        let start = self.items[at].0;
        Some(match self.items.get(at + 1) {
            Some((end, _)) => (start..*end, true),
            None => (start..self.samples.len(), false),
        })
    }

    /// `range` of the samples cut where an item's audio begins: each piece with its item.
    pub fn split_by_item(&self, range: Range<usize>) -> Vec<(&str, Range<usize>)> {
        let mut out = Vec::new();
        for (at, (start, id)) in self.items.iter().enumerate() {
            let end = self.items.get(at + 1).map_or(usize::MAX, |(e, _)| *e);
            let piece = range.start.max(*start)..range.end.min(end);
            if !piece.is_empty() {
                out.push((id.as_str(), piece));
            }
        }
        out
    }

    /// Samples sent so far.
    pub fn sent(&self) -> usize {
        self.sent
    }

    /// Add synthesized audio that speaks `text`.
    pub fn push(&mut self, samples: &[f32], text: &str) {
        self.samples.extend_from_slice(samples);
        let end = self.samples.len();
        match self.spoken.last_mut() {
            // Audio without words of its own (a filter tail) lengthens the chunk before it.
            Some(last) if text.trim().is_empty() => last.end = end,
            _ => self.spoken.push(Spoken {
                end,
                text: text.to_owned(),
            }),
        }
    }

    pub fn started(&self) -> bool {
        self.sent > 0
    }

    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// Samples the caller has heard by `now`.
    pub fn heard(&self, now: Instant) -> usize {
        let played = match self.since {
            Some(since) => self.played_base + self.to_samples(now - since),
            None => self.played_base,
        };
        played.min(self.sent)
    }

    /// Everything synthesized so far has been sent.
    pub fn all_sent(&self) -> bool {
        self.sent == self.samples.len()
    }

    /// Whether synthesis should wait: enough audio is queued ahead of the caller's ear.
    pub fn is_full(&self, now: Instant) -> bool {
        self.samples.len() - self.heard(now) > self.to_samples(MAX_AHEAD)
    }

    /// The audio due by `now`, if any. `finished`: no more audio will come, so a short tail
    /// goes out as is.
    pub fn due(&mut self, now: Instant, finished: bool) -> Option<Vec<f32>> {
        if self.paused || self.sent == self.samples.len() {
            return None;
        }
        match self.since {
            None => {
                self.since = Some(now);
            }
            // An underrun (synthesis slower than real time) stops the clock at what was sent,
            // so the caller is not assumed to have heard silence as speech.
            Some(_) if self.heard(now) >= self.sent && self.played_base < self.sent => {
                self.played_base = self.sent;
                self.since = Some(now);
            }
            Some(_) => {}
        }
        let target = (self.heard(now) + self.to_samples(LEAD)).min(self.samples.len());
        let frame = self.to_samples(FRAME).max(1);
        if target <= self.sent
            || (target - self.sent < frame && !finished && target < self.samples.len())
        {
            return None;
        }
        let out = self.samples[self.sent..target].to_vec();
        self.sent = target;
        Some(out)
    }

    /// Stop the clock at what was heard; audio sent beyond it counts as not sent.
    /// Returns the heard sample count.
    pub fn pause(&mut self, now: Instant) -> usize {
        let heard = self.heard(now);
        self.played_base = heard;
        self.sent = heard;
        self.since = None;
        self.paused = true;
        heard
    }

    pub fn resume(&mut self) {
        self.paused = false;
    }

    /// The text of the audio heard up to `heard` samples, of the chunks that begin within
    /// `span` (one item's audio): whole chunks, then the words of the chunk being spoken in
    /// proportion to how much of it was played.
    pub fn heard_text_in(&self, span: Range<usize>, heard: usize) -> String {
        let mut out: Vec<&str> = Vec::new();
        let mut start = 0;
        for s in &self.spoken {
            if !span.contains(&start) {
                start = s.end;
                continue;
            }
            if s.end <= heard {
                out.push(&s.text);
            } else {
                if heard > start && s.end > start {
                    let fraction = (heard - start) as f64 / (s.end - start) as f64;
                    let words: Vec<&str> = s.text.split_whitespace().collect();
                    let n = (words.len() as f64 * fraction).round() as usize;
                    let partial = words[..n.min(words.len())].join(" ");
                    if !partial.is_empty() {
                        return out.join(" ") + if out.is_empty() { "" } else { " " } + &partial;
                    }
                }
                break;
            }
            start = s.end;
        }
        out.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: u32 = 1000; // one sample per ms keeps the arithmetic readable

    impl Playback {
        /// What was heard of all the audio.
        fn heard_text(&self, heard: usize) -> String {
            self.heard_text_in(0..usize::MAX, heard)
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn paces_at_real_time_plus_lead() {
        let t0 = Instant::now();
        let mut p = Playback::new(RATE);
        p.push(&vec![0.0; 1000], "one two three four");
        assert_eq!(p.due(t0, false).map(|a| a.len()), Some(120));
        assert_eq!(p.due(t0 + ms(10), false), None, "less than a frame due");
        assert_eq!(p.due(t0 + ms(20), false).map(|a| a.len()), Some(20));
        assert_eq!(p.heard(t0 + ms(50)), 50);
        assert_eq!(p.heard(t0 + ms(500)), 140, "never more than was sent");
    }

    #[test]
    fn pause_rewinds_to_heard_and_resume_continues() {
        let t0 = Instant::now();
        let mut p = Playback::new(RATE);
        p.push(&vec![0.0; 500], "alpha beta");
        p.push(&vec![0.0; 500], "gamma delta");
        p.due(t0, false);
        for t in (20..=600).step_by(20) {
            p.due(t0 + ms(t), false);
        }
        let heard = p.pause(t0 + ms(750));
        assert_eq!(heard, 720, "clock stopped at the last sent sample");
        assert_eq!(p.due(t0 + ms(800), false), None, "paused");
        assert_eq!(p.heard_text(heard), "alpha beta gamma");
        p.resume();
        assert_eq!(p.due(t0 + ms(900), false).map(|a| a.len()), Some(120));
        assert_eq!(p.heard(t0 + ms(900)), 720);
    }

    #[test]
    fn heard_text_cuts_within_a_chunk() {
        let mut p = Playback::new(RATE);
        p.push(&vec![0.0; 400], "one two three four");
        assert_eq!(p.heard_text(0), "");
        assert_eq!(p.heard_text(100), "one");
        assert_eq!(p.heard_text(400), "one two three four");
    }

    #[test]
    fn items_are_spans_of_one_clock() {
        let t0 = Instant::now();
        let mut p = Playback::new(RATE);
        p.begin_item("a");
        p.push(&vec![0.0; 300], "let me check");
        p.push(&vec![0.0; 100], "");
        assert_eq!(p.item_span("a"), Some((0..400, false)));
        p.begin_item("b");
        p.begin_item("b");
        p.push(&vec![0.0; 400], "it has shipped");
        assert_eq!(p.item_span("a"), Some((0..400, true)), "whole once b began");
        assert_eq!(p.item_span("b"), Some((400..800, false)));
        assert_eq!(p.item_span("c"), None);
        assert_eq!(
            p.split_by_item(350..450),
            vec![("a", 350..400), ("b", 400..450)]
        );
        assert_eq!(p.split_by_item(500..520), vec![("b", 500..520)]);
        assert_eq!(p.due(t0, false).map(|a| a.len()), Some(120));
        assert_eq!(p.sent(), 120);
        // Heard up to 600: all of a, half of b.
        assert_eq!(p.heard_text_in(0..400, 600), "let me check");
        assert_eq!(p.heard_text_in(400..800, 600), "it has");
        assert_eq!(p.heard_text_in(400..800, 350), "");
        assert_eq!(p.heard_text(600), "let me check it has");
    }

    #[test]
    fn finished_tail_goes_out_and_full_queue_pushes_back() {
        let t0 = Instant::now();
        let mut p = Playback::new(RATE);
        p.push(&vec![0.0; 130], "short");
        assert_eq!(p.due(t0, false).map(|a| a.len()), Some(120));
        assert_eq!(p.due(t0 + ms(5), false), None);
        assert_eq!(p.due(t0 + ms(10), true).map(|a| a.len()), Some(10));
        assert!(p.all_sent());
        p.push(&vec![0.0; 9000], "long");
        assert!(p.is_full(t0 + ms(10)));
    }
}
