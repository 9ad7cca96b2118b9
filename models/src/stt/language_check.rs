//! Whether speech decoded in a conversation's language was in it: a caller who switches
//! language mid-call would otherwise stay transcribed in the first (a mangled translation,
//! or a loop).
//!
//! The check is one decoder step from start-of-transcript over the encoder output the
//! decoding just left, read over the language tokens, as whisper.cpp's own detection does
//! after its encoder pass: ~4 ms with base on two CPU cores, against ~1.75 s for the full
//! 30 s window's pass. On encoder output sized to the clip it is a weaker judge than the
//! full window (a German sentence: 0.67 German against 0.92), so it only decides whether to
//! ask the full window: when another language scores higher than the conversation's, the
//! audio goes to the detection state, and only a different language detected there
//! switches the conversation. BENCHMARKS.md "Language detection" has the figures.

use whisper_rs::{WhisperContext, WhisperState, WhisperTokenId};

use super::whisper::States;
use super::{ENGLISH, SttError};

/// The model's language tokens, by whisper.cpp language id.
pub(super) struct LanguageTokens {
    start: WhisperTokenId,
    languages: Vec<WhisperTokenId>,
}

impl LanguageTokens {
    pub(super) fn new(ctx: &WhisperContext) -> Self {
        Self {
            start: ctx.token_sot(),
            languages: (0..=whisper_rs::get_lang_max_id())
                .map(|id| ctx.token_lang(id))
                .collect(),
        }
    }

    /// Whether the decoder, from the encoder output `state`'s last run left, finds another
    /// language likelier than `language` (a Whisper code) for the speech.
    pub(super) fn prefer_another(
        &self,
        state: &mut WhisperState,
        language: &str,
        threads: usize,
    ) -> Result<bool, SttError> {
        let Some(id) = whisper_rs::get_lang_id(language) else {
            return Ok(true);
        };
        let failed = |e: whisper_rs::WhisperError| {
            SttError::Inference(format!("checking the language: {e}"))
        };
        state.decode(&[self.start], 0, threads).map_err(failed)?;
        let logits = state.get_logits().map_err(failed)?;
        let scores = self
            .languages
            .iter()
            .map(|&t| logits.get(t as usize).copied().unwrap_or(f32::NEG_INFINITY));
        Ok(best(scores) != Some(id as usize))
    }
}

/// The language `audio` was spoken in, when it was not the `language` the main state just
/// decoded it in (`looped`: that decoding fell into a loop). One decoder step asks whether
/// to doubt it; the full-window detection decides.
pub(super) fn spoken_instead(
    states: &mut States,
    audio: &[f32],
    language: &'static str,
    looped: bool,
    threads: usize,
) -> Result<Option<&'static str>, SttError> {
    let Some(tokens) = states.languages.as_ref() else {
        return Ok(None);
    };
    if !looped && !tokens.prefer_another(&mut states.main, language, threads)? {
        return Ok(None);
    }
    let spoken = detect_language(states, audio, threads)?;
    Ok((spoken != language).then_some(spoken))
}

/// The language spoken in `audio`, by the full-window detection state; English for a model
/// without one.
pub(super) fn detect_language(
    states: &mut States,
    audio: &[f32],
    threads: usize,
) -> Result<&'static str, SttError> {
    let Some(detect) = states.detect.as_mut() else {
        return Ok(ENGLISH);
    };
    let failed =
        |e: whisper_rs::WhisperError| SttError::Inference(format!("language detection: {e}"));
    detect.pcm_to_mel(audio, threads).map_err(failed)?;
    let (id, _) = detect.lang_detect(0, threads).map_err(failed)?;
    Ok(whisper_rs::get_lang_str(id).unwrap_or(ENGLISH))
}

/// The index of the highest score (the first of equals); `None` when there is none.
fn best(scores: impl IntoIterator<Item = f32>) -> Option<usize> {
    scores
        .into_iter()
        .enumerate()
        .filter(|(_, s)| !s.is_nan())
        .fold(None, |best: Option<(usize, f32)>, (i, s)| match best {
            Some((_, b)) if b >= s => best,
            _ => Some((i, s)),
        })
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_best_score_is_found() {
        assert_eq!(best([0.1, 2.0, -1.0]), Some(1));
        assert_eq!(best([1.0, 1.0]), Some(0));
        assert_eq!(best([f32::NAN, -3.0]), Some(1));
        assert_eq!(best([f32::NEG_INFINITY, 0.0]), Some(1));
        assert_eq!(best([]), None);
    }
}
