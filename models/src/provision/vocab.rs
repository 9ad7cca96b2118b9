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
    #[error("vocabulary line {line}: character {ch:?} is not GPT-2 byte-level")]
    NotByteLevel { line: usize, ch: char },
    #[error("vocabulary has no <|endoftext|> token")]
    NoEndOfText,
}

/// Decode the regular tokens of a one-token-per-line vocabulary: every line before `<|endoftext|>`.
pub fn regular_tokens(vocabulary: &str) -> Result<Vec<Vec<u8>>, VocabError> {
    let map = unicode_to_byte();
    let mut out = Vec::new();
    for (i, line) in vocabulary.lines().enumerate() {
        if line == "<|endoftext|>" {
            return Ok(out);
        }
        let bytes = line
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
    fn byte_map_is_a_bijection() {
        let map = unicode_to_byte();
        let mut seen: Vec<u8> = map.values().copied().collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 256);
    }
}
