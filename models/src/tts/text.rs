//! Splitting reply text into pieces that can be spoken one after another.
//!
//! Sentences are the natural unit; the first piece is cut at the first clause boundary
//! ("Sure," in "Sure, your table is booked."), so the first audio is ready sooner. A lone
//! interjection or a short clause is a natural thing to say on its own, and Piper is about
//! 20x faster than real time, so the next chunk is ready before the first has been heard.

/// Words a leading clause needs before it is spoken on its own.
const MIN_FIRST_CLAUSE_WORDS: usize = 1;

fn is_sentence_end(c: char) -> bool {
    matches!(c, '.' | '!' | '?' | '…')
}

fn is_clause_end(c: char) -> bool {
    matches!(c, ',' | ';' | ':' | '—')
}

/// Split `text` into speakable chunks: the first clause (when long enough), then sentences.
pub fn speech_chunks(text: &str) -> Vec<String> {
    let mut chunker = SpeechChunker::default();
    let mut chunks = chunker.push(text);
    chunks.extend(chunker.finish());
    chunks
}

/// [`speech_chunks`] for text that arrives in pieces (an LLM stream): each chunk is released
/// as soon as the character after its boundary is seen, so speech can start mid-generation.
#[derive(Debug, Default)]
pub struct SpeechChunker {
    current: String,
    /// The last character, held back until the next one shows whether it ends a chunk.
    held: Option<char>,
    released: usize,
}

impl SpeechChunker {
    /// Feed more text; returns the chunks it completes.
    pub fn push(&mut self, text: &str) -> Vec<String> {
        let mut chunks = Vec::new();
        for next in text.chars() {
            if let Some(c) = self.held.replace(next) {
                self.step(c, Some(next), &mut chunks);
            }
        }
        chunks
    }

    /// End of text: the rest, if it has anything to say.
    pub fn finish(&mut self) -> Option<String> {
        let mut chunks = Vec::new();
        if let Some(c) = self.held.take() {
            self.step(c, None, &mut chunks);
        }
        let rest = std::mem::take(&mut self.current);
        push_chunk(&mut chunks, &rest);
        // The held character either closed a chunk (and `rest` is empty) or joined `rest`.
        debug_assert!(chunks.len() <= 1);
        self.released += chunks.len();
        chunks.pop()
    }

    fn step(&mut self, c: char, next: Option<char>, chunks: &mut Vec<String>) {
        self.current.push(c);
        let boundary_follows = next.is_none_or(char::is_whitespace);
        let sentence_end = is_sentence_end(c) && boundary_follows;
        let first_clause = self.released == 0
            && is_clause_end(c)
            && boundary_follows
            && self.current.split_whitespace().count() >= MIN_FIRST_CLAUSE_WORDS;
        if sentence_end || first_clause {
            let before = chunks.len();
            push_chunk(chunks, &self.current);
            self.released += chunks.len() - before;
            self.current.clear();
        }
    }
}

fn push_chunk(chunks: &mut Vec<String>, text: &str) {
    let t = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if t.chars().any(|c| c.is_alphanumeric()) {
        chunks.push(t);
    }
}

/// A clause and the punctuation that ended it (`None` at the very end without punctuation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clause {
    pub text: String,
    pub punctuation: Option<char>,
}

/// Split one chunk into clauses at , ; : . ! ? so each clause's pause can be restored.
pub fn clauses(chunk: &str) -> Vec<Clause> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = chunk.chars().peekable();
    while let Some(c) = chars.next() {
        let boundary_follows = chars.peek().is_none_or(|n| n.is_whitespace());
        let punct = match c {
            ',' | ';' | ':' | '.' | '!' | '?' if boundary_follows => Some(c),
            '…' if boundary_follows => Some('.'),
            '—' => Some(','),
            _ => None,
        };
        match punct {
            Some(p) => {
                if current.chars().any(|c| c.is_alphanumeric()) {
                    out.push(Clause {
                        text: current.trim().to_owned(),
                        punctuation: Some(p),
                    });
                }
                current.clear();
            }
            None => current.push(c),
        }
    }
    if current.chars().any(|c| c.is_alphanumeric()) {
        out.push(Clause {
            text: current.trim().to_owned(),
            punctuation: None,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn splits_first_clause_then_sentences() {
        assert_eq!(
            speech_chunks(
                "Sure, I can help with that, no problem. Your order ships Monday! Anything else?"
            ),
            vec![
                "Sure,",
                "I can help with that, no problem.",
                "Your order ships Monday!",
                "Anything else?"
            ]
        );
    }

    #[test]
    fn keeps_decimals_together_and_cuts_the_first_clause_early() {
        assert_eq!(
            speech_chunks("Yes, it costs 3.50 dollars, tax included."),
            vec!["Yes,", "it costs 3.50 dollars, tax included."]
        );
        assert_eq!(speech_chunks("  "), Vec::<String>::new());
        assert_eq!(
            speech_chunks("No punctuation at all"),
            vec!["No punctuation at all"]
        );
    }

    #[test]
    fn clauses_keep_their_punctuation() {
        assert_eq!(
            clauses("Hello, your table is ready."),
            vec![
                Clause {
                    text: "Hello".into(),
                    punctuation: Some(',')
                },
                Clause {
                    text: "your table is ready".into(),
                    punctuation: Some('.')
                }
            ]
        );
    }

    proptest! {
        #[test]
        fn chunks_lose_no_words(text in "[a-zA-Z ,.!?]{0,200}") {
            let words = |s: &str| s.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_owned).collect::<Vec<_>>();
            let joined = speech_chunks(&text).join(" ");
            prop_assert_eq!(words(&joined), words(&text));
        }

        #[test]
        fn streaming_chunks_equal_whole_text(text in "[a-zA-Z ,.!?]{0,200}", cuts in proptest::collection::vec(0usize..200, 0..8)) {
            let mut cuts: Vec<usize> = cuts.into_iter().filter(|&c| c < text.len()).collect();
            cuts.sort_unstable();
            let mut chunker = SpeechChunker::default();
            let mut streamed = Vec::new();
            let mut pos = 0;
            for cut in cuts.into_iter().chain([text.len()]) {
                streamed.extend(chunker.push(&text[pos..cut]));
                pos = cut;
            }
            streamed.extend(chunker.finish());
            prop_assert_eq!(streamed, speech_chunks(&text));
        }
    }
}
