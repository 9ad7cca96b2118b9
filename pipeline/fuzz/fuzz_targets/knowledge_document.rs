//! Uploaded knowledge documents: conversion to text (HTML, Markdown, plain, PDF) and
//! chunking must never panic (a panic inside the PDF parser is caught and becomes an error),
//! and no chunk may exceed the target size unless it is a single word.
#![no_main]
use libfuzzer_sys::fuzz_target;
use switchboard_pipeline::context::knowledge::{DocKind, chunk, to_text};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    let kind = match selector % 4 {
        0 => DocKind::Text,
        1 => DocKind::Markdown,
        2 => DocKind::Html,
        _ => DocKind::Pdf,
    };
    let target = 16 + usize::from(selector) * 4;
    if let Ok(text) = to_text(bytes, kind) {
        for c in chunk(&text, target) {
            assert!(c.text.len() <= target || !c.text.contains(' '));
        }
    }
});
