//! whisper.cpp's callbacks during one `whisper_full` run: stop when nobody wants the result,
//! and hand each segment out as soon as it is decoded.
//!
//! whisper-rs's closure-based setters leak their closure on every call (and its abort setter
//! reads the box as the wrong type), so the callbacks here are plain functions whose user
//! data is a [`Hooks`] on the worker's stack, alive for exactly the `full` call.

use std::ffi::{CStr, c_int, c_void};

use whisper_rs::FullParams;
use whisper_rs::whisper_rs_sys as sys;

use super::{Segment, SegmentSink};

/// What the callbacks of one run can reach.
pub(super) struct Hooks<'a> {
    /// Polled by whisper.cpp between graph computations: `true` stops the run.
    pub cancelled: &'a (dyn Fn() -> bool + Sync),
    pub segments: Option<&'a SegmentSink>,
    /// Where this run's audio starts in what the caller sent (a piece of a long upload).
    pub offset_ms: u64,
}

impl Hooks<'_> {
    /// Point `params`' abort and new-segment callbacks at `self`.
    ///
    /// # Safety
    /// `self` must outlive every use of `params` (the `full` call they are passed to).
    pub(super) unsafe fn install(&self, params: &mut FullParams) {
        let data = self as *const Hooks as *mut c_void;
        // SAFETY: the callbacks only read `data` as a `Hooks`, which the caller keeps alive.
        unsafe {
            params.set_abort_callback(Some(abort));
            params.set_abort_callback_user_data(data);
            if self.segments.is_some() {
                params.set_new_segment_callback(Some(new_segments));
                params.set_new_segment_callback_user_data(data);
            }
        }
    }
}

unsafe extern "C" fn abort(data: *mut c_void) -> bool {
    // SAFETY: `data` is the `Hooks` given to `install`, alive during the run.
    let hooks = unsafe { &*(data as *const Hooks) };
    (hooks.cancelled)()
}

unsafe extern "C" fn new_segments(
    _ctx: *mut sys::whisper_context,
    state: *mut sys::whisper_state,
    n_new: c_int,
    data: *mut c_void,
) {
    // SAFETY: `data` is the `Hooks` given to `install`; `state` is the running state, whose
    // last `n_new` segments whisper.cpp has just finished.
    let hooks = unsafe { &*(data as *const Hooks) };
    let Some(sink) = hooks.segments else { return };
    let n = unsafe { sys::whisper_full_n_segments_from_state(state) };
    for i in (n - n_new).max(0)..n {
        let text = unsafe { sys::whisper_full_get_segment_text_from_state(state, i) };
        if text.is_null() {
            continue;
        }
        let text = unsafe { CStr::from_ptr(text) }.to_string_lossy();
        let (t0, t1, no_speech) = unsafe {
            (
                sys::whisper_full_get_segment_t0_from_state(state, i),
                sys::whisper_full_get_segment_t1_from_state(state, i),
                sys::whisper_full_get_segment_no_speech_prob_from_state(state, i),
            )
        };
        if let Some(segment) =
            Segment::decoded(&text, t0, t1, no_speech).map(|s| s.later_by(hooks.offset_ms))
        {
            // A receiver that went away only stops wanting the stream, not the result.
            let _ = sink.send(segment);
        }
    }
}
