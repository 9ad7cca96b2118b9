//! Splitting reply text into pieces that can be spoken one after another.
//!
//! Sentences are the natural unit; the first piece is cut at the first clause boundary
//! ("Sure," in "Sure, your table is booked."), so the first audio is ready sooner. A lone
//! interjection or a short clause is a natural thing to say on its own, and Piper is about
//! 20x faster than real time, so the next chunk is ready before the first has been heard.
//!
//! A live reply's first sentence may run long without a comma ("The weather in Paris can vary
//! greatly depending on the time of year"), and waiting for its end costs the caller the time
//! the LLM takes to write all of it. [`SpeechChunker::for_reply`] also ends the first chunk at
//! a phrase boundary: before a word that opens a phrase (a conjunction, preposition or relative
//! pronoun) once the chunk holds [`MIN_FIRST_PHRASE_WORDS`] words. The cut is spoken as a
//! comma, a short phrase break, and the chunk's text carries that comma, so what the caller
//! heard is recorded as it was spoken.

/// Words a leading clause needs before it is spoken on its own.
const MIN_FIRST_CLAUSE_WORDS: usize = 1;

/// Words a first chunk holds before it may end at a phrase boundary.
pub const MIN_FIRST_PHRASE_WORDS: usize = 6;

/// Words that open a phrase, so a pause before them sounds natural. English, the language of
/// the shipped voice; in other languages they rarely occur and the first chunk then ends at
/// its first clause, as without phrase cuts. Not "of" or "to", which bind too tightly to the
/// word before them ("a cup of", "want to").
const PHRASE_OPENERS: &[&str] = &[
    "about", "after", "although", "and", "as", "at", "because", "before", "but", "by", "during",
    "for", "from", "if", "in", "into", "on", "or", "since", "so", "than", "that", "then", "though",
    "through", "unless", "until", "when", "where", "whether", "which", "while", "who", "with",
    "without",
];

fn opens_phrase(word: &str) -> bool {
    PHRASE_OPENERS
        .iter()
        .any(|opener| opener.eq_ignore_ascii_case(word))
}

fn is_sentence_end(c: char) -> bool {
    matches!(c, '.' | '!' | '?' | '…')
}

fn is_clause_end(c: char) -> bool {
    matches!(c, ',' | ';' | ':' | '—')
}

/// Split `text` into speakable chunks: the first clause (when long enough), then sentences.
pub fn speech_chunks(text: &str) -> Vec<String> {
    SpeechChunker::default().chunks(text)
}

/// [`speech_chunks`] for text that arrives in pieces (an LLM stream): each chunk is released
/// as soon as the character after its boundary is seen, so speech can start mid-generation.
#[derive(Debug, Default)]
pub struct SpeechChunker {
    current: String,
    /// The last character, held back until the next one shows whether it ends a chunk.
    held: Option<char>,
    released: usize,
    /// Whether the first chunk may also end at a phrase boundary.
    phrases: bool,
}

impl SpeechChunker {
    /// A chunker for a live reply: as [`speech_chunks`], but a long first clause is also cut at
    /// a phrase boundary (module docs).
    pub fn for_reply() -> Self {
        Self {
            phrases: true,
            ..Self::default()
        }
    }

    /// All the chunks of a whole text.
    pub fn chunks(mut self, text: &str) -> Vec<String> {
        let mut chunks = self.push(text);
        chunks.extend(self.finish());
        chunks
    }

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
        self.release(&mut chunks, &rest);
        // The held character either closed a chunk (and `rest` is empty) or joined `rest`.
        debug_assert!(chunks.len() <= 1);
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
            let text = std::mem::take(&mut self.current);
            self.release(chunks, &text);
        } else if self.phrases && self.released == 0 && c.is_whitespace() && next.is_some() {
            self.cut_before_phrase(chunks);
        }
    }

    /// `current` just ended a word: when that word opens a phrase and enough words came before
    /// it, speak those words as the first chunk, ended by a comma.
    fn cut_before_phrase(&mut self, chunks: &mut Vec<String>) {
        let text = self.current.trim_end();
        let start = text.rfind(char::is_whitespace).map_or(0, |i| i + 1);
        let (head, word) = text.split_at(start);
        if !opens_phrase(word) || head.split_whitespace().count() < MIN_FIRST_PHRASE_WORDS {
            return;
        }
        let (head, rest) = (format!("{},", head.trim_end()), format!("{word} "));
        self.current = rest;
        self.release(chunks, &head);
    }

    /// Add `text` as a chunk, whitespace normalised, if it has anything to say.
    fn release(&mut self, chunks: &mut Vec<String>, text: &str) {
        let t = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if t.chars().any(|c| c.is_alphanumeric()) {
            chunks.push(t);
            self.released += 1;
        }
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

    #[test]
    fn a_reply_cuts_a_long_first_clause_before_a_phrase() {
        let reply = "The weather in Paris can vary greatly depending on the time of year \
                     and the season. It is warm in summer and cold in winter.";
        assert_eq!(
            SpeechChunker::for_reply().chunks(reply),
            vec![
                "The weather in Paris can vary greatly depending,",
                "on the time of year and the season.",
                "It is warm in summer and cold in winter."
            ]
        );
        // Text that is not a live reply keeps its sentences whole.
        assert_eq!(
            speech_chunks(reply),
            vec![
                "The weather in Paris can vary greatly depending on the time of year and the season.",
                "It is warm in summer and cold in winter."
            ]
        );
    }

    #[test]
    fn a_reply_keeps_short_and_punctuated_first_clauses() {
        for reply in [
            "Sure, I can book a table for you and your friends tonight.",
            "I can book it for you.",
            "Yes it is open on Sunday",
            "Your booking is confirmed for tonight.",
        ] {
            assert_eq!(
                SpeechChunker::for_reply().chunks(reply),
                speech_chunks(reply),
                "{reply}"
            );
        }
        // A phrase word at the very end of the text is not cut off on its own.
        assert_eq!(
            SpeechChunker::for_reply().chunks("One two three four five six and "),
            vec!["One two three four five six and"]
        );
    }

    fn words(s: &str) -> Vec<String> {
        s.split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// Text made of words that include phrase openers, so phrase cuts happen.
    fn reply_text() -> impl Strategy<Value = String> {
        let word = prop_oneof![
            proptest::sample::select(PHRASE_OPENERS.to_vec()).prop_map(str::to_owned),
            "[a-zA-Z]{1,8}[,.!?]?",
        ];
        proptest::collection::vec(word, 0..40).prop_map(|w| w.join(" "))
    }

    fn streamed(mut chunker: SpeechChunker, text: &str, cuts: Vec<usize>) -> Vec<String> {
        let mut cuts: Vec<usize> = cuts
            .into_iter()
            .filter(|&c| c < text.len() && text.is_char_boundary(c))
            .collect();
        cuts.sort_unstable();
        let mut out = Vec::new();
        let mut pos = 0;
        for cut in cuts.into_iter().chain([text.len()]) {
            out.extend(chunker.push(&text[pos..cut]));
            pos = cut;
        }
        out.extend(chunker.finish());
        out
    }

    proptest! {
        #[test]
        fn chunks_lose_no_words(text in "[a-zA-Z ,.!?]{0,200}", reply in reply_text()) {
            prop_assert_eq!(words(&speech_chunks(&text).join(" ")), words(&text));
            let chunks = SpeechChunker::for_reply().chunks(&reply);
            prop_assert_eq!(words(&chunks.join(" ")), words(&reply));
        }

        #[test]
        fn streaming_chunks_equal_whole_text(text in "[a-zA-Z ,.!?]{0,200}", cuts in proptest::collection::vec(0usize..200, 0..8)) {
            prop_assert_eq!(streamed(SpeechChunker::default(), &text, cuts), speech_chunks(&text));
        }

        #[test]
        fn streaming_reply_chunks_equal_whole_reply(reply in reply_text(), cuts in proptest::collection::vec(0usize..300, 0..8)) {
            prop_assert_eq!(
                streamed(SpeechChunker::for_reply(), &reply, cuts),
                SpeechChunker::for_reply().chunks(&reply)
            );
        }

        #[test]
        fn only_the_first_chunk_is_cut_at_a_phrase(reply in reply_text()) {
            let chunks = SpeechChunker::for_reply().chunks(&reply);
            if chunks == speech_chunks(&reply) {
                return Ok(());
            }
            let head = chunks[0].strip_suffix(',').expect("a phrase cut ends with a comma");
            prop_assert!(head.split_whitespace().count() >= MIN_FIRST_PHRASE_WORDS);
            prop_assert!(reply.starts_with(head));
            // After the first chunk, the rest is chunked as any text after a first chunk is.
            let rest = SpeechChunker { released: 1, ..SpeechChunker::default() };
            let rest = rest.chunks(&reply[head.len()..]);
            prop_assert_eq!(&chunks[1..], rest.as_slice());
        }
    }
}
