//! Uploaded documents to plain text with Markdown-style headings kept (`# Title` lines), so
//! the chunker can keep sections apart. Plain text and Markdown pass through; HTML loses its
//! tags, scripts and styles, keeps its headings, and has its entities decoded; PDF gives its
//! text page by page (`pdf-extract`; no headings: PDF text has no structure to keep).

use crate::context::find_ci;

/// The document types the knowledge base accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocKind {
    Text,
    Markdown,
    Html,
    Pdf,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocError {
    #[error(
        "unsupported document type {0:?}: upload text/plain, text/markdown, text/html or application/pdf"
    )]
    Unsupported(String),
    #[error("the PDF could not be read: {0}")]
    Pdf(String),
    #[error("the document is not valid UTF-8 text")]
    NotUtf8,
    #[error("the document has no text")]
    Empty,
}

impl DocKind {
    /// From a MIME type (parameters ignored), falling back to the file name's extension
    /// when the type is missing or generic.
    /// The MIME type stored with a document of this kind.
    pub fn mime(self) -> &'static str {
        match self {
            Self::Text => "text/plain",
            Self::Markdown => "text/markdown",
            Self::Html => "text/html",
            Self::Pdf => "application/pdf",
        }
    }

    pub fn detect(content_type: Option<&str>, filename: Option<&str>) -> Result<Self, DocError> {
        let mime = content_type
            .map(|c| {
                c.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            })
            .unwrap_or_default();
        match mime.as_str() {
            "text/plain" => return Ok(Self::Text),
            "text/markdown" | "text/x-markdown" => return Ok(Self::Markdown),
            "text/html" | "application/xhtml+xml" => return Ok(Self::Html),
            "application/pdf" => return Ok(Self::Pdf),
            "" | "application/octet-stream" => {}
            other => return Err(DocError::Unsupported(other.to_owned())),
        }
        let ext = filename
            .and_then(|f| f.rsplit_once('.'))
            .map(|(_, e)| e.to_ascii_lowercase())
            .unwrap_or_default();
        match ext.as_str() {
            "txt" | "text" => Ok(Self::Text),
            "md" | "markdown" => Ok(Self::Markdown),
            "html" | "htm" => Ok(Self::Html),
            "pdf" => Ok(Self::Pdf),
            "" => Err(DocError::Unsupported(
                "unknown (no content type or extension)".into(),
            )),
            other => Err(DocError::Unsupported(format!(".{other}"))),
        }
    }
}

/// The document's text, headings as `#` lines. PDF parsing is CPU work: call it off the
/// async workers.
pub fn to_text(bytes: &[u8], kind: DocKind) -> Result<String, DocError> {
    let utf8 = || {
        let raw = std::str::from_utf8(bytes).map_err(|_| DocError::NotUtf8)?;
        Ok::<_, DocError>(raw.strip_prefix('\u{feff}').unwrap_or(raw))
    };
    let text = match kind {
        DocKind::Text | DocKind::Markdown => utf8()?.replace("\r\n", "\n"),
        DocKind::Html => html_to_text(utf8()?),
        DocKind::Pdf => pdf_to_text(bytes)?,
    };
    if text.trim().is_empty() {
        return Err(DocError::Empty);
    }
    Ok(text)
}

/// A PDF's text, pages separated by blank lines, each page's lines tidied.
fn pdf_to_text(bytes: &[u8]) -> Result<String, DocError> {
    if !bytes.starts_with(b"%PDF-") {
        return Err(DocError::Pdf("no %PDF- header".into()));
    }
    // pdf-extract can panic on damaged files; a bad upload must not take the server down.
    let pages = std::panic::catch_unwind(|| pdf_extract::extract_text_from_mem_by_pages(bytes))
        .map_err(|_| DocError::Pdf("the file is damaged".into()))?
        .map_err(|e| DocError::Pdf(e.to_string()))?;
    let text = pages
        .iter()
        .map(|page| tidy(page))
        .filter(|page| !page.is_empty())
        .collect::<Vec<_>>()
        .join("\n\n");
    Ok(text)
}

/// Tags that separate paragraphs.
const BLOCK_TAGS: &[&str] = &[
    "p",
    "div",
    "ul",
    "ol",
    "table",
    "section",
    "article",
    "header",
    "footer",
    "blockquote",
    "pre",
    "hr",
    "main",
    "nav",
    "aside",
    "dl",
];
/// Tags that start a new line within a paragraph.
const LINE_TAGS: &[&str] = &["br", "li", "tr", "dt", "dd"];

fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        out.push_str(&decode_entities(&rest[..lt]));
        rest = &rest[lt..];
        if let Some(body) = rest.strip_prefix("<!--") {
            // Comments may contain '>': skip to the real end.
            match body.find("-->") {
                Some(end) => rest = &body[end + 3..],
                None => return tidy(&out),
            }
            continue;
        }
        let Some(gt) = rest.find('>') else {
            // A lone '<' is text.
            out.push_str(&decode_entities(rest));
            return tidy(&out);
        };
        let tag = &rest[1..gt];
        rest = &rest[gt + 1..];
        let closing = tag.starts_with('/');
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        if !closing && matches!(name.as_str(), "script" | "style" | "title" | "template") {
            let end = format!("</{name}");
            match find_ci(rest, &end) {
                Some(at) => {
                    rest = &rest[at..];
                    rest = rest.find('>').map_or("", |g| &rest[g + 1..]);
                }
                None => return tidy(&out),
            }
            continue;
        }
        if let Some(level) = heading_level(&name) {
            if closing {
                out.push('\n');
            } else {
                out.push_str("\n\n");
                out.push_str(&"#".repeat(level));
                out.push(' ');
            }
        } else if LINE_TAGS.contains(&name.as_str()) {
            // A list item or row starts a line; its end adds nothing.
            if !closing {
                out.push('\n');
            }
        } else if BLOCK_TAGS.contains(&name.as_str()) {
            out.push_str("\n\n");
        } else if name == "td" || name == "th" {
            out.push(' ');
        }
    }
    out.push_str(&decode_entities(rest));
    tidy(&out)
}

fn heading_level(name: &str) -> Option<usize> {
    let b = name.as_bytes();
    (b.len() == 2 && b[0] == b'h' && (b'1'..=b'6').contains(&b[1])).then(|| (b[1] - b'0') as usize)
}

fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let end = rest[1..].find(';').map(|i| i + 1).filter(|&i| i <= 10);
        let decoded = end.and_then(|end| entity(&rest[1..end]).map(|c| (c, end)));
        match decoded {
            Some((c, end)) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn entity(name: &str) -> Option<char> {
    if let Some(num) = name.strip_prefix('#') {
        let code = match num.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => num.parse().ok()?,
        };
        return char::from_u32(code);
    }
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => ' ',
        "mdash" => '—',
        "ndash" => '–',
        "hellip" => '…',
        "rsquo" | "lsquo" => '\'',
        "rdquo" | "ldquo" => '"',
        "euro" => '€',
        "copy" => '©',
        _ => return None,
    })
}

/// Collapse runs of spaces inside lines and of blank lines between them.
fn tidy(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank = 0;
    for line in text.lines() {
        let line = line.split_whitespace().collect::<Vec<_>>().join(" ");
        if line.is_empty() {
            blank += 1;
            continue;
        }
        if !out.is_empty() {
            out.push_str(if blank > 0 { "\n\n" } else { "\n" });
        }
        blank = 0;
        out.push_str(&line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn detects_types_from_mime_then_extension() {
        assert_eq!(
            DocKind::detect(Some("text/markdown; charset=utf-8"), None),
            Ok(DocKind::Markdown)
        );
        assert_eq!(DocKind::detect(None, Some("faq.HTML")), Ok(DocKind::Html));
        assert_eq!(
            DocKind::detect(Some("application/octet-stream"), Some("a.txt")),
            Ok(DocKind::Text)
        );
        assert!(matches!(
            DocKind::detect(Some("application/msword"), Some("a.doc")),
            Err(DocError::Unsupported(_))
        ));
        assert!(DocKind::detect(None, Some("notes.docx")).is_err());
    }

    #[test]
    fn html_keeps_headings_and_text_only() {
        let html = r#"<html><head><title>x</title><style>p { color: red }</style>
            <script>var a = "<p>not text</p>";</script></head><body>
            <h1>Returns</h1><p>Refunds take <b>5&nbsp;days</b> &amp; need a receipt.</p>
            <!-- hidden > comment --><h2>Shipping</h2><ul><li>Free over &#36;50</li><li>Express &#x2013; 1 day</li></ul>
            </body></html>"#;
        let text = to_text(html.as_bytes(), DocKind::Html).expect("text");
        assert!(text.contains("# Returns\n"), "{text}");
        assert!(
            text.contains("Refunds take 5 days & need a receipt."),
            "{text}"
        );
        assert!(text.contains("## Shipping\n"), "{text}");
        assert!(text.contains("Free over $50\nExpress – 1 day"), "{text}");
        assert!(!text.contains("color") && !text.contains("not text") && !text.contains("hidden"));
    }

    /// A minimal uncompressed PDF: one page per entry of `pages`, each a list of lines in
    /// Helvetica.
    fn tiny_pdf(pages: &[&[&str]]) -> Vec<u8> {
        let mut objects = vec![
            "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
            format!(
                "<< /Type /Pages /Kids [{}] /Count {} >>",
                (0..pages.len())
                    .map(|i| format!("{} 0 R", 4 + 2 * i))
                    .collect::<Vec<_>>()
                    .join(" "),
                pages.len()
            ),
            "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
                .to_owned(),
        ];
        for (i, lines) in pages.iter().enumerate() {
            let mut content = String::from("BT /F1 12 Tf 72 720 Td 16 TL\n");
            for line in *lines {
                content.push_str(&format!("({line}) Tj T*\n"));
            }
            content.push_str("ET");
            objects.push(format!(
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] \
                 /Resources << /Font << /F1 3 0 R >> >> /Contents {} 0 R >>",
                5 + 2 * i
            ));
            objects.push(format!(
                "<< /Length {} >>\nstream\n{content}\nendstream",
                content.len()
            ));
        }
        let mut out = b"%PDF-1.4\n".to_vec();
        let mut offsets = Vec::new();
        for (i, o) in objects.iter().enumerate() {
            offsets.push(out.len());
            out.extend(format!("{} 0 obj\n{o}\nendobj\n", i + 1).bytes());
        }
        let xref = out.len();
        out.extend(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).bytes());
        for off in offsets {
            out.extend(format!("{off:010} 00000 n \n").bytes());
        }
        out.extend(
            format!(
                "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
                objects.len() + 1
            )
            .bytes(),
        );
        out
    }

    #[test]
    fn pdf_text_comes_out_page_by_page() {
        let pdf = tiny_pdf(&[
            &["Returns", "Refunds take five days."],
            &["Shipping is free over fifty dollars."],
        ]);
        assert_eq!(
            DocKind::detect(Some("application/pdf"), None),
            Ok(DocKind::Pdf)
        );
        assert_eq!(DocKind::detect(None, Some("Guide.PDF")), Ok(DocKind::Pdf));
        let text = to_text(&pdf, DocKind::Pdf).expect("text");
        let returns = text.find("Refunds take five days.").expect("page one");
        let shipping = text.find("Shipping is free").expect("page two");
        assert!(returns < shipping, "{text}");
        assert!(
            text[returns..shipping].contains("\n\n"),
            "pages apart: {text:?}"
        );
    }

    #[test]
    fn damaged_and_fake_pdfs_are_refused_without_panicking() {
        let pdf = tiny_pdf(&[&["Hello"]]);
        assert!(matches!(
            to_text(b"not a pdf", DocKind::Pdf),
            Err(DocError::Pdf(_))
        ));
        for cut in [9, pdf.len() / 3, pdf.len() / 2] {
            assert!(to_text(&pdf[..cut], DocKind::Pdf).is_err(), "cut at {cut}");
        }
        assert_eq!(
            to_text(&tiny_pdf(&[&[]]), DocKind::Pdf),
            Err(DocError::Empty)
        );
    }

    #[test]
    fn bad_input_is_refused_clearly() {
        assert_eq!(
            to_text(&[0xff, 0xfe, 0x00], DocKind::Text),
            Err(DocError::NotUtf8)
        );
        assert_eq!(to_text(b"  \n\n ", DocKind::Markdown), Err(DocError::Empty));
        assert_eq!(to_text(b"<p> </p>", DocKind::Html), Err(DocError::Empty));
    }

    proptest! {
        #[test]
        fn damaged_pdfs_never_panic(cut in 0usize..2000, flips in proptest::collection::vec((0usize..2000, any::<u8>()), 0..6)) {
            let mut pdf = tiny_pdf(&[&["Opening hours", "Nine to five."]]);
            for (at, byte) in flips {
                let at = at % pdf.len();
                pdf[at] = byte;
            }
            pdf.truncate(cut.max(1));
            let _ = to_text(&pdf, DocKind::Pdf);
        }

        #[test]
        fn html_conversion_never_panics_and_drops_all_tags(s in "[<>a-z/!&#;0-9 \\-\"=hp]{0,200}") {
            let text = to_text(s.as_bytes(), DocKind::Html);
            if let (Ok(text), false) = (text, s.contains('&')) {
                // Without entities that decode to '<', no complete tag is left.
                prop_assert!(!text.contains("<p>") && !text.contains("<script"));
            }
        }

        #[test]
        fn plain_text_round_trips(s in "[a-zA-Z0-9 .,\n]{1,200}") {
            prop_assume!(!s.trim().is_empty());
            prop_assert_eq!(to_text(s.as_bytes(), DocKind::Text).expect("text"), s);
        }
    }
}
