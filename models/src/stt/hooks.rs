//! whisper.cpp's callbacks during one `whisper_full` run: stop when nobody wants the result,
//! end a segment whose decoding has fallen into a repetition loop (`repetition.rs`), and read
//! each segment (text, times, tokens) as soon as it is decoded, handing it out at once to a
//! caller who streams. This is the one place segments are read from whisper.cpp.
//!
//! whisper-rs's closure-based setters leak their closure on every call (and its abort setter
//! reads the box as the wrong type), so the callbacks here are plain functions whose user
//! data is a [`Hooks`] on the worker's stack, alive for exactly the `full` call.

use std::cell::{Cell, RefCell};
use std::ffi::{CStr, c_int, c_void};

use whisper_rs::FullParams;
use whisper_rs::whisper_rs_sys as sys;

use super::repetition::loop_at_end;
use super::{Segment, SegmentSink, Token};

/// What the callbacks of one run can reach.
pub(super) struct Hooks<'a> {
    /// Polled by whisper.cpp between graph computations: `true` stops the run.
    pub cancelled: &'a (dyn Fn() -> bool + Sync),
    pub segments: Option<&'a SegmentSink>,
    /// Where this run's audio starts in what the caller sent (a piece of a long upload).
    pub offset_ms: u64,
    /// Read each token's times (the run computes them).
    pub token_times: bool,
    /// Every segment of the run so far, on the caller's timeline.
    pub decoded: RefCell<Vec<Segment>>,
    /// Segments ended early because their decoding looped.
    pub loops_stopped: Cell<u32>,
}

impl<'a> Hooks<'a> {
    pub(super) fn new(
        cancelled: &'a (dyn Fn() -> bool + Sync),
        segments: Option<&'a SegmentSink>,
        offset_ms: u64,
        token_times: bool,
    ) -> Self {
        Self {
            cancelled,
            segments,
            offset_ms,
            token_times,
            decoded: RefCell::default(),
            loops_stopped: Cell::default(),
        }
    }

    /// Point `params`' abort, logits-filter and new-segment callbacks at `self`.
    ///
    /// # Safety
    /// `self` must outlive every use of `params` (the `full` call they are passed to).
    pub(super) unsafe fn install(&self, params: &mut FullParams) {
        let data = self as *const Hooks as *mut c_void;
        // SAFETY: the callbacks only read `data` as a `Hooks`, which the caller keeps alive.
        unsafe {
            params.set_abort_callback(Some(abort));
            params.set_abort_callback_user_data(data);
            params.set_filter_logits_callback(Some(stop_loops));
            params.set_filter_logits_callback_user_data(data);
            params.set_new_segment_callback(Some(new_segments));
            params.set_new_segment_callback_user_data(data);
        }
    }
}

unsafe extern "C" fn abort(data: *mut c_void) -> bool {
    // SAFETY: `data` is the `Hooks` given to `install`, alive during the run.
    let hooks = unsafe { &*(data as *const Hooks) };
    (hooks.cancelled)()
}

/// Before each token is chosen: once the tokens decoded so far end in a loop, only
/// end-of-text may come next, which ends the segment (whisper.cpp keeps its tokens).
unsafe extern "C" fn stop_loops(
    ctx: *mut sys::whisper_context,
    _state: *mut sys::whisper_state,
    tokens: *const sys::whisper_token_data,
    n_tokens: c_int,
    logits: *mut f32,
    data: *mut c_void,
) {
    if tokens.is_null() || logits.is_null() || n_tokens < 1 {
        return;
    }
    // SAFETY: `data` is the `Hooks` given to `install`; whisper.cpp passes the decoder's
    // `n_tokens` tokens so far and the next token's logits, one per vocabulary entry, for
    // this call only.
    let (hooks, decoded, logits) = unsafe {
        let n_vocab = sys::whisper_n_vocab(ctx) as usize;
        (
            &*(data as *const Hooks),
            std::slice::from_raw_parts(tokens, n_tokens as usize),
            std::slice::from_raw_parts_mut(logits, n_vocab),
        )
    };
    let ids: Vec<i32> = decoded.iter().map(|t| t.id).collect();
    if loop_at_end(&ids).is_none() {
        return;
    }
    // SAFETY: `ctx` is the running context.
    let eot = unsafe { sys::whisper_token_eot(ctx) } as usize;
    logits.fill(f32::NEG_INFINITY);
    if let Some(end) = logits.get_mut(eot) {
        *end = 0.0;
    }
    hooks.loops_stopped.set(hooks.loops_stopped.get() + 1);
}

unsafe extern "C" fn new_segments(
    ctx: *mut sys::whisper_context,
    state: *mut sys::whisper_state,
    n_new: c_int,
    data: *mut c_void,
) {
    // SAFETY: `data` is the `Hooks` given to `install`; `ctx` and `state` are the running
    // context and state, whose last `n_new` segments whisper.cpp has just finished. The
    // callback runs on the thread that called `full`, so nothing else borrows `decoded`.
    let hooks = unsafe { &*(data as *const Hooks) };
    let n = unsafe { sys::whisper_full_n_segments_from_state(state) };
    for i in (n - n_new).max(0)..n {
        let Some(segment) = (unsafe { read_segment(ctx, state, i, hooks.token_times) }) else {
            continue;
        };
        let segment = segment.later_by(hooks.offset_ms);
        if let Some(sink) = hooks.segments {
            // A receiver that went away only stops wanting the stream, not the result.
            let _ = sink.send(segment.clone());
        }
        hooks.decoded.borrow_mut().push(segment);
    }
}

/// Segment `i` of the run, with its text tokens (and their times, if `timed`); `None` for
/// empty text and annotations.
///
/// # Safety
/// `ctx` and `state` must be the live context and state of a run with more than `i` segments.
unsafe fn read_segment(
    ctx: *mut sys::whisper_context,
    state: *mut sys::whisper_state,
    i: c_int,
    timed: bool,
) -> Option<Segment> {
    // SAFETY: the caller vouches for `ctx`, `state` and `i`; token indices stay below the
    // segment's token count, and whisper.cpp's strings live as long as the state.
    unsafe {
        let text = sys::whisper_full_get_segment_text_from_state(state, i);
        if text.is_null() {
            return None;
        }
        let text = CStr::from_ptr(text).to_string_lossy();
        let t0 = sys::whisper_full_get_segment_t0_from_state(state, i);
        let t1 = sys::whisper_full_get_segment_t1_from_state(state, i);
        let no_speech = sys::whisper_full_get_segment_no_speech_prob_from_state(state, i);
        let mut segment = Segment::decoded(&text, t0, t1, no_speech)?;
        // Ids from end-of-text up are special: start, language, task, timestamps.
        let eot = sys::whisper_token_eot(ctx);
        for j in 0..sys::whisper_full_n_tokens_from_state(state, i) {
            let data = sys::whisper_full_get_token_data_from_state(state, i, j);
            if data.id >= eot {
                continue;
            }
            let piece = sys::whisper_full_get_token_text_from_state(ctx, state, i, j);
            let bytes = if piece.is_null() {
                Vec::new()
            } else {
                CStr::from_ptr(piece).to_bytes().to_vec()
            };
            segment.tokens.push(Token {
                id: data.id,
                bytes,
                logprob: data.plog,
                // whisper.cpp counts 10 ms steps from the run's start.
                span_ms: timed.then(|| (data.t0.max(0) as u64 * 10, data.t1.max(0) as u64 * 10)),
            });
        }
        segment.without_loop()
    }
}

impl Segment {
    /// A decoded segment as clients see it: trimmed, times in ms (whisper.cpp counts 10 ms
    /// steps), no tokens yet; `None` for empty text and non-speech annotations.
    pub(super) fn decoded(text: &str, t0: i64, t1: i64, no_speech_prob: f32) -> Option<Self> {
        let text = text.trim();
        (!text.is_empty() && !is_annotation(text)).then(|| Self {
            start_ms: t0.max(0) as u64 * 10,
            end_ms: t1.max(0) as u64 * 10,
            text: text.to_owned(),
            no_speech_prob,
            tokens: Vec::new(),
        })
    }

    /// The same segment, `ms` later (a piece's times on the whole file's timeline).
    pub(super) fn later_by(mut self, ms: u64) -> Self {
        self.start_ms += ms;
        self.end_ms += ms;
        for token in &mut self.tokens {
            token.span_ms = token.span_ms.map(|(start, end)| (start + ms, end + ms));
        }
        self
    }
}

/// Whisper's non-speech annotations: `[BLANK_AUDIO]`, `(music)`, `[ Silence ]`.
fn is_annotation(text: &str) -> bool {
    let t = text.trim();
    (t.starts_with('[') && t.ends_with(']')) || (t.starts_with('(') && t.ends_with(')'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_annotations() {
        assert!(is_annotation("[BLANK_AUDIO]"));
        assert!(is_annotation(" (music) "));
        assert!(!is_annotation("Hello (there) friend"));
    }
}
