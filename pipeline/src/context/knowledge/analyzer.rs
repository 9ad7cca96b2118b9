//! How chunk text and queries become BM25 terms: words, lower-cased, English function words
//! dropped, stemmed (so "refunds" finds "refund").

use tantivy::tokenizer::{
    Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer, StopWordFilter, TextAnalyzer,
};

/// The analyzer's name in the index's tokenizer registry.
pub const ANALYZER: &str = "switchboard_en";

/// Function words of English questions and statements. Lucene's list (tantivy's default)
/// keeps pronouns and auxiliaries ("you", "my", "do", "can"), which then match every
/// chunk and drown the content words of a spoken question.
const STOP_WORDS: &[&str] = &[
    "a", "about", "after", "again", "all", "am", "an", "and", "any", "are", "as", "at", "be",
    "been", "before", "being", "both", "but", "by", "can", "could", "did", "do", "does", "doing",
    "for", "from", "get", "got", "had", "has", "have", "having", "he", "her", "here", "him", "his",
    "how", "i", "if", "in", "into", "is", "it", "its", "just", "let", "like", "me", "more", "most",
    "my", "no", "not", "now", "of", "on", "or", "other", "our", "out", "own", "please", "s",
    "same", "she", "should", "so", "some", "such", "t", "than", "that", "the", "their", "them",
    "then", "there", "these", "they", "this", "those", "to", "too", "up", "us", "very", "want",
    "was", "we", "were", "what", "when", "where", "which", "while", "who", "whom", "why", "will",
    "with", "would", "you", "your", "yours", "m", "ve", "ll", "re", "d",
];

pub fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .filter(StopWordFilter::remove(
            STOP_WORDS.iter().map(|w| (*w).to_owned()),
        ))
        .filter(Stemmer::new(Language::English))
        .build()
}
