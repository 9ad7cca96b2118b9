//! Splitting a document's text into retrieval chunks. Sections (Markdown `#` headings) are
//! never merged; inside a section, paragraphs are packed up to a target size, and a
//! paragraph longer than that is split at sentence ends (or at spaces, as a last resort).
//! Each chunk carries its section's heading path, so "## Refunds" stays attached to the
//! paragraphs under it.

/// Characters a chunk aims for (about 150 tokens: a paragraph or two).
pub const TARGET_CHARS: usize = 600;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// The section's heading path ("Returns > Refunds"), empty before the first heading.
    pub heading: String,
    pub text: String,
}

impl Chunk {
    /// What is indexed and embedded: the heading path, then the text.
    pub fn indexed_text(&self) -> String {
        if self.heading.is_empty() {
            self.text.clone()
        } else {
            format!("{}\n{}", self.heading, self.text)
        }
    }
}

fn heading(line: &str) -> Option<(usize, &str)> {
    let level = line.bytes().take_while(|&b| b == b'#').count();
    let rest = &line[level..];
    (level > 0 && level <= 6 && (rest.is_empty() || rest.starts_with(' ')))
        .then(|| (level, rest.trim()))
}

/// Chunks of at most about `target` characters (never more than `target` for a chunk's
/// text, except for a single word longer than that).
pub fn chunk(text: &str, target: usize) -> Vec<Chunk> {
    let target = target.max(16);
    let mut out = Vec::new();
    let mut path: Vec<(usize, String)> = Vec::new();
    let mut paragraphs: Vec<String> = Vec::new();
    let mut para = String::new();
    let flush_para = |para: &mut String, paragraphs: &mut Vec<String>| {
        let p = para.trim();
        if !p.is_empty() {
            paragraphs.push(p.to_owned());
        }
        para.clear();
    };
    for line in text.lines() {
        if let Some((level, title)) = heading(line.trim_start()) {
            flush_para(&mut para, &mut paragraphs);
            pack(&heading_path(&path), &paragraphs, target, &mut out);
            paragraphs.clear();
            path.retain(|(l, _)| *l < level);
            if !title.is_empty() {
                path.push((level, title.to_owned()));
            }
        } else if line.trim().is_empty() {
            flush_para(&mut para, &mut paragraphs);
        } else {
            if !para.is_empty() {
                para.push(' ');
            }
            para.push_str(line.trim());
        }
    }
    flush_para(&mut para, &mut paragraphs);
    pack(&heading_path(&path), &paragraphs, target, &mut out);
    out
}

fn heading_path(path: &[(usize, String)]) -> String {
    path.iter()
        .map(|(_, t)| t.as_str())
        .collect::<Vec<_>>()
        .join(" > ")
}

fn pack(heading: &str, paragraphs: &[String], target: usize, out: &mut Vec<Chunk>) {
    let mut current = String::new();
    let mut emit = |text: &mut String| {
        if !text.is_empty() {
            out.push(Chunk {
                heading: heading.to_owned(),
                text: std::mem::take(text),
            });
        }
    };
    for p in paragraphs {
        for piece in split_long(p, target) {
            let joined = current.len() + 2 + piece.len();
            if !current.is_empty() && joined > target {
                emit(&mut current);
            }
            if !current.is_empty() {
                current.push_str("\n\n");
            }
            current.push_str(&piece);
        }
    }
    emit(&mut current);
}

/// A paragraph in pieces of at most `target` bytes: whole sentences where they fit.
fn split_long(p: &str, target: usize) -> Vec<String> {
    if p.len() <= target {
        return vec![p.to_owned()];
    }
    let mut pieces = Vec::new();
    let mut current = String::new();
    for sentence in sentences(p) {
        for part in split_words(sentence, target) {
            if !current.is_empty() && current.len() + 1 + part.len() > target {
                pieces.push(std::mem::take(&mut current));
            }
            if !current.is_empty() {
                current.push(' ');
            }
            current.push_str(part);
        }
    }
    if !current.is_empty() {
        pieces.push(current);
    }
    pieces
}

fn sentences(p: &str) -> impl Iterator<Item = &str> {
    let mut start = 0;
    let bytes = p.as_bytes();
    let mut ends = Vec::new();
    for (i, &b) in bytes.iter().enumerate() {
        if matches!(b, b'.' | b'!' | b'?') && bytes.get(i + 1) == Some(&b' ') {
            ends.push(i + 1);
        }
    }
    ends.push(p.len());
    ends.into_iter().filter_map(move |end| {
        let s = p[start..end].trim();
        start = end;
        (!s.is_empty()).then_some(s)
    })
}

/// A sentence longer than `target` bytes in pieces cut at spaces (words stay whole).
fn split_words(sentence: &str, target: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = sentence;
    while rest.len() > target {
        let mut end = target + 1;
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        let cut = rest[..end]
            .rfind(' ')
            .filter(|&i| i > 0)
            .or_else(|| rest.find(' '))
            .unwrap_or(rest.len());
        out.push(rest[..cut].trim());
        rest = rest[cut..].trim_start();
    }
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sections_stay_apart_and_carry_their_heading_path() {
        let text = "Intro line.\n\n# Returns\n\n## Refunds\nRefunds take five days.\n\nKeep the receipt.\n\n## Exchanges\nSwap within 30 days.\n\n# Shipping\nFree over $50.";
        let chunks = chunk(text, 600);
        let got: Vec<(&str, &str)> = chunks
            .iter()
            .map(|c| (c.heading.as_str(), c.text.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("", "Intro line."),
                (
                    "Returns > Refunds",
                    "Refunds take five days.\n\nKeep the receipt."
                ),
                ("Returns > Exchanges", "Swap within 30 days."),
                ("Shipping", "Free over $50."),
            ]
        );
        assert_eq!(
            chunks[1].indexed_text(),
            "Returns > Refunds\nRefunds take five days.\n\nKeep the receipt."
        );
    }

    #[test]
    fn long_paragraphs_split_at_sentences() {
        let sentence = "This sentence has exactly forty-five chars. ";
        let text = sentence.repeat(30);
        let chunks = chunk(&text, 200);
        assert!(chunks.len() >= 6, "{}", chunks.len());
        for c in &chunks {
            assert!(c.text.len() <= 200, "{}", c.text.len());
            assert!(c.text.ends_with('.'), "{:?}", c.text);
        }
    }

    proptest! {
        #[test]
        fn no_words_lost_and_chunks_bounded(
            text in "[a-z]{1,12}([ .\n#]{1,3}[a-z]{1,12}){0,200}",
            target in 16usize..400,
        ) {
            let chunks = chunk(&text, target);
            let words = |s: &str| s.split(|c: char| !c.is_ascii_alphabetic()).filter(|w| !w.is_empty()).map(str::to_owned).collect::<Vec<_>>();
            let mut got = Vec::new();
            for c in &chunks {
                prop_assert!(c.text.len() <= target.max(16) || !c.text.contains(' '));
                got.extend(words(&c.heading));
                got.extend(words(&c.text));
            }
            // Every word of the body appears (a heading with no body under it may not).
            let body: Vec<&str> = text.lines().filter(|l| heading(l.trim_start()).is_none()).collect();
            for w in words(&body.join("\n")) {
                prop_assert!(got.contains(&w), "lost {}", w);
            }
        }
    }
}
