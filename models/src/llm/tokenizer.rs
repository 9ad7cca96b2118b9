//! The tokenizer of a llama-family GGUF, rebuilt from the file's own metadata as a
//! `tokenizers` BPE: `tokenizer.ggml.tokens` (id = index, already in GPT-2 byte-level form),
//! `tokenizer.ggml.merges` (`"a b"`, rank = index), digits split one by one, byte-level
//! pre-tokenizer and decoder, and every `token_type == 3` (control) token added as special.
//!
//! candle's own GGUF tokenizer is not used: for SmolLM2 it adds a prefix space and does not
//! split digits, so its ids differ from the ones the model was trained on.

use std::collections::HashMap;

use candle_core::quantized::gguf_file::{Content, Value};
use tokenizers::models::bpe::{BPE, Vocab};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::{AddedToken, Tokenizer};

use super::LlmError;

fn strings(content: &Content, key: &str) -> Result<Vec<String>, LlmError> {
    match content.metadata.get(key) {
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.to_string()
                    .cloned()
                    .map_err(|e| LlmError::Model(format!("{key}: {e}")))
            })
            .collect(),
        _ => Err(LlmError::Model(format!("GGUF metadata has no {key} array"))),
    }
}

fn token_types(content: &Content) -> Vec<i32> {
    match content.metadata.get("tokenizer.ggml.token_type") {
        Some(Value::Array(items)) => items.iter().map(|v| v.to_i32().unwrap_or(1)).collect(),
        _ => Vec::new(),
    }
}

/// The tokenizer, and the ids of its control tokens by text (`<|im_end|>` and friends).
pub fn from_gguf(content: &Content) -> Result<(Tokenizer, HashMap<String, u32>), LlmError> {
    let tokens = strings(content, "tokenizer.ggml.tokens")?;
    let merges = strings(content, "tokenizer.ggml.merges")?;
    let vocab: Vocab = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), i as u32))
        .collect();
    let merges = merges
        .iter()
        .map(|m| {
            m.split_once(' ')
                .map(|(a, b)| (a.to_owned(), b.to_owned()))
                .ok_or_else(|| LlmError::Model(format!("bad merge rule {m:?}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .build()
        .map_err(|e| LlmError::Model(format!("tokenizer: {e}")))?;
    let mut tokenizer = Tokenizer::new(bpe);
    tokenizer.with_pre_tokenizer(Some(Sequence::new(vec![
        Digits::new(true).into(),
        ByteLevel::new(false, true, true).into(),
    ])));
    tokenizer.with_decoder(Some(ByteLevel::default()));
    let mut special = HashMap::new();
    let control: Vec<AddedToken> = token_types(content)
        .iter()
        .enumerate()
        .filter(|(_, t)| **t == 3)
        .filter_map(|(i, _)| tokens.get(i).map(|t| (i, t)))
        .map(|(i, t)| {
            special.insert(t.clone(), i as u32);
            AddedToken::from(t.clone(), true)
        })
        .collect();
    tokenizer.add_special_tokens(&control);
    Ok((tokenizer, special))
}
