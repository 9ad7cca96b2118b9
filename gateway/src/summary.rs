//! Conversation summaries: when a call or chat-WebSocket session of a known user ends, the
//! LLM chain writes a short summary off the hot path, stored as a `summary` memory (embedded,
//! so later turns find it by relevance like any fact).

use std::time::Duration;

use futures_util::StreamExt;
use switchboard_pipeline::llm::{ChatMessage, ChatRequest, LlmEvent};

use crate::store::writer::Write;
use crate::store::{Memory, now_ms};
use crate::turns::{SessionInfo, TurnLog, new_id};

pub const SUMMARY_INSTRUCTIONS: &str = "Summarize this conversation for the assistant's long-term memory in at most two sentences: what the user wanted, what was settled, and any facts about the user. Reply with the summary only.";
/// Longest transcript sent for summarising, in characters (the end is kept).
const MAX_TRANSCRIPT_CHARS: usize = 6_000;
const SUMMARY_TIMEOUT: Duration = Duration::from_secs(60);

/// The conversation as plain lines, newest part kept when it is long.
pub fn transcript_text(messages: &[(&'static str, String)]) -> String {
    let text: String = messages
        .iter()
        .filter(|(_, t)| !t.trim().is_empty())
        .map(|(role, t)| {
            format!(
                "{}: {}\n",
                if *role == "user" { "User" } else { "Assistant" },
                t.trim()
            )
        })
        .collect();
    match text.char_indices().rev().nth(MAX_TRANSCRIPT_CHARS) {
        Some((cut, _)) => text[cut..].to_owned(),
        None => text,
    }
}

impl TurnLog {
    /// Summarise a finished session in the background and store it for the user.
    pub fn summarize(&self, s: &SessionInfo, messages: Vec<(&'static str, String)>) {
        let Some(user) = s.user.clone() else { return };
        if !messages.iter().any(|(role, _)| *role == "user") {
            return;
        }
        let (log, tenant, session_id) = (self.clone(), s.tenant.clone(), s.session_id.clone());
        tokio::spawn(async move {
            let request = ChatRequest {
                messages: vec![
                    ChatMessage::System(SUMMARY_INSTRUCTIONS.into()),
                    ChatMessage::User(transcript_text(&messages)),
                ],
                max_tokens: Some(120),
                temperature: Some(0.2),
                ..ChatRequest::default()
            };
            let mut stream = log.llm.stream(request);
            let mut summary = String::new();
            let collected = tokio::time::timeout(SUMMARY_TIMEOUT, async {
                while let Some(ev) = stream.next().await {
                    match ev {
                        Ok(LlmEvent::Text(t)) => summary.push_str(&t),
                        Ok(_) => {}
                        Err(e) => return Err(e.to_string()),
                    }
                }
                Ok(())
            })
            .await;
            let summary = summary.trim().to_owned();
            match collected {
                Ok(Ok(())) if !summary.is_empty() => {}
                Ok(Err(e)) => {
                    return tracing::warn!(session = %session_id, error = %e, "no conversation summary");
                }
                _ => {
                    return tracing::warn!(session = %session_id, "no conversation summary (timeout or empty)");
                }
            }
            let embedding = match log.embedder.get() {
                Some(e) => e
                    .embed(vec![summary.clone()])
                    .await
                    .ok()
                    .and_then(|mut v| v.pop()),
                None => None,
            };
            log.writer.send(Write::Memory {
                tenant,
                user,
                memory: Memory {
                    id: new_id("mem"),
                    kind: "summary".into(),
                    text: summary,
                    embedding: embedding.unwrap_or_default(),
                    session_id: Some(session_id),
                    created_at: now_ms(),
                },
            });
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transcripts_keep_the_end_of_long_conversations() {
        let t = transcript_text(&[
            ("user", "Hi there".into()),
            ("assistant", " Hello! ".into()),
            ("user", "".into()),
        ]);
        assert_eq!(t, "User: Hi there\nAssistant: Hello!\n");
        let long: Vec<(&'static str, String)> = (0..2000)
            .map(|i| ("user", format!("message {i}")))
            .collect();
        let t = transcript_text(&long);
        assert!(t.chars().count() <= MAX_TRANSCRIPT_CHARS + 1);
        assert!(t.ends_with("User: message 1999\n"));
    }
}
