//! GPT-2 byte-level vocabulary strings (`Ġthe`) back to the raw bytes whisper.cpp wants.

use std::collections::HashMap;

/// The inverse of GPT-2's `bytes_to_unicode`: printable bytes stand for themselves, the other
/// 68 bytes were shifted to code points 256 and up, in byte order.
fn unicode_to_byte() -> HashMap<char, u8> {
    let printable = |b: u8| (b'!'..=b'~').contains(&b) || (0xA1..=0xAC).contains(&b) || b >= 0xAE;
    let mut map = HashMap::with_capacity(256);
    let mut shifted = 0u32;
    for b in 0..=255u8 {
        let c = if printable(b) {
            char::from(b)
        } else {
            shifted += 1;
            char::from_u32(255 + shifted).unwrap_or('\u{FFFD}')
        };
        map.insert(c, b);
    }
    map
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VocabError {
    #[error("vocabulary entry {line}: character {ch:?} is not GPT-2 byte-level")]
    NotByteLevel { line: usize, ch: char },
    #[error("vocabulary has no <|endoftext|> token")]
    NoEndOfText,
    #[error("vocabulary.json is not an array of strings: {0}")]
    Json(String),
}

/// Decode the regular tokens of a vocabulary: every token before `<|endoftext|>`.
///
/// CTranslate2 packages ship it either as `vocabulary.txt` (one token per line) or as
/// `vocabulary.json` (an array of strings). Text that starts with `[` and ends with `]` is the
/// JSON form (a line-per-token file ends with Whisper's special tokens, `<|...|>`); anything
/// else is read line by line.
pub fn regular_tokens(vocabulary: &str) -> Result<Vec<Vec<u8>>, VocabError> {
    let trimmed = vocabulary.trim();
    if trimmed.starts_with('[') && trimmed.ends_with(']') {
        let tokens = serde_json::from_str::<Vec<String>>(trimmed)
            .map_err(|e| VocabError::Json(e.to_string()))?;
        return decode(tokens.iter().map(String::as_str));
    }
    decode(vocabulary.lines())
}

fn decode<'a>(tokens: impl Iterator<Item = &'a str>) -> Result<Vec<Vec<u8>>, VocabError> {
    let map = unicode_to_byte();
    let mut out = Vec::new();
    for (i, token) in tokens.enumerate() {
        if token == "<|endoftext|>" {
            return Ok(out);
        }
        let bytes = token
            .chars()
            .map(|ch| {
                map.get(&ch)
                    .copied()
                    .ok_or(VocabError::NotByteLevel { line: i + 1, ch })
            })
            .collect::<Result<Vec<u8>, _>>()?;
        out.push(bytes);
    }
    Err(VocabError::NoEndOfText)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_space_and_newline_markers() {
        let toks = regular_tokens("!\nĠthe\nĊ\nÃ©\n<|endoftext|>\n<|startoftranscript|>").unwrap();
        assert_eq!(
            toks,
            vec![
                b"!".to_vec(),
                b" the".to_vec(),
                b"\n".to_vec(),
                "é".as_bytes().to_vec()
            ]
        );
    }

    #[test]
    fn rejects_foreign_characters_and_missing_eot() {
        assert!(matches!(
            regular_tokens("日本\n<|endoftext|>"),
            Err(VocabError::NotByteLevel { line: 1, .. })
        ));
        assert_eq!(regular_tokens("a\nb"), Err(VocabError::NoEndOfText));
    }

    #[test]
    fn reads_the_json_array_form_like_the_line_form() {
        let lines = regular_tokens("!\nĠthe\nĊ\n<|endoftext|>\n<|startoftranscript|>").unwrap();
        let json = regular_tokens(r#"["!", "Ġthe", "Ċ", "<|endoftext|>", "<|en|>"]"#).unwrap();
        assert_eq!(lines, json);
        assert_eq!(
            regular_tokens(r#"["a", 3]"#),
            Err(VocabError::Json(
                "invalid type: integer `3`, expected a string at line 1 column 7".into()
            ))
        );
        assert_eq!(regular_tokens(r#"["a"]"#), Err(VocabError::NoEndOfText));
        // A line-per-token file whose first token is `[` is still read as lines.
        assert_eq!(
            regular_tokens("[\n]\n<|endoftext|>").unwrap(),
            vec![b"[".to_vec(), b"]".to_vec()]
        );
    }

    proptest::proptest! {
        #[test]
        fn any_text_decodes_or_fails_cleanly(text in "\\PC{0,64}") {
            let _ = regular_tokens(&text);
        }

        #[test]
        fn json_and_lines_agree(tokens in proptest::collection::vec("[!-~¡-¬®-ÿĀ-Ń]{1,6}", 0..12)) {
            let mut with_eot = tokens.clone();
            with_eot.push("<|endoftext|>".to_owned());
            let json = serde_json::to_string(&with_eot).unwrap();
            let lines = with_eot.join("\n");
            let (a, b) = (regular_tokens(&json), regular_tokens(&lines));
            proptest::prop_assert_eq!(a, b);
        }
    }

    #[test]
    fn byte_map_is_a_bijection() {
        let map = unicode_to_byte();
        let mut seen: Vec<u8> = map.values().copied().collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 256);
    }
}
