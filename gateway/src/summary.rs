//! Conversation summaries, written off the hot path by the same LLM chain that answers,
//! marked as background work (the embedded model stops it for any live turn).
//!
//! - Rolling: once a session has grown [`ROLL_EVERY`] messages past its summary (beyond
//!   the [`KEEP_RECENT`] newest), the older ones are folded into the session's summary. The
//!   orchestrator puts it in the prompt's lowest-priority slot when the prompt lacks the
//!   messages it covers. Chat-completion sessions, which never end, are summarised this way.
//! - At the end of a call or chat-WebSocket session, the whole conversation is summarised.
//!
//! For a known user, the latest summary is also their `summary` memory for that session
//! (one per session, replaced as it is rewritten), found by relevance like any fact.

use std::time::Duration;

use futures_util::StreamExt;
use switchboard_pipeline::llm::{ChatMessage, ChatRequest, LlmEvent};

use crate::store::writer::Write;
use crate::store::{Memory, MessageRecord, now_ms};
use crate::turns::{SessionInfo, TurnLog};

pub const SUMMARY_INSTRUCTIONS: &str = "Summarize this conversation for the assistant's long-term memory in at most two sentences: what the user wanted, what was settled, and any facts about the user. Reply with the summary only.";
const ROLLING_INSTRUCTIONS: &str = "Update the summary of a conversation with what followed it, in at most three sentences: what the user wanted, what was settled, and any facts about the user. Reply with the summary only.";
/// Longest transcript sent for summarising, in characters (the end is kept).
const MAX_TRANSCRIPT_CHARS: usize = 6_000;
const SUMMARY_TIMEOUT: Duration = Duration::from_secs(60);
/// Newest messages never folded into the rolling summary (they stay in the prompt).
pub const KEEP_RECENT: usize = 6;
/// Messages past the summary (beyond the newest) that start a new rolling summary.
pub const ROLL_EVERY: usize = 10;

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

/// Which stored messages a new rolling summary should fold in, if it is time for one:
/// those after the `covered` ones, up to the [`KEEP_RECENT`] newest.
pub fn roll_range(stored: usize, covered: usize) -> Option<std::ops::Range<usize>> {
    let upto = stored.saturating_sub(KEEP_RECENT);
    (upto >= covered + ROLL_EVERY).then_some(covered..upto)
}

/// The memory id of a session's summary: one per session, replaced when rewritten.
fn summary_memory_id(session_id: &str) -> String {
    format!("mem_summary_{session_id}")
}

fn lines(messages: &[MessageRecord]) -> Vec<(&'static str, String)> {
    messages
        .iter()
        .map(|m| {
            let role = if m.role == "user" {
                "user"
            } else {
                "assistant"
            };
            (role, m.content.clone())
        })
        .collect()
}

impl TurnLog {
    /// Ask the LLM chain for a summary, as background work.
    async fn write_summary(&self, instructions: &str, text: String) -> Result<String, String> {
        let request = ChatRequest {
            messages: vec![
                ChatMessage::System(instructions.into()),
                ChatMessage::User(text),
            ],
            max_tokens: Some(120),
            temperature: Some(0.2),
            background: true,
            ..ChatRequest::default()
        };
        let mut stream = self.llm.stream(request);
        let mut summary = String::new();
        tokio::time::timeout(SUMMARY_TIMEOUT, async {
            while let Some(ev) = stream.next().await {
                match ev {
                    Ok(LlmEvent::Text(t)) => summary.push_str(&t),
                    Ok(_) => {}
                    Err(e) => return Err(e.to_string()),
                }
            }
            Ok(())
        })
        .await
        .map_err(|_| "timed out".to_owned())??;
        let summary = summary.trim().to_owned();
        match summary.is_empty() {
            true => Err("the model wrote nothing".into()),
            false => Ok(summary),
        }
    }

    /// Store `summary` as the user's memory of the session (embedded when the model is up).
    async fn remember_summary(&self, s: &SessionInfo, summary: String) {
        let Some(user) = s.user.clone() else { return };
        let embedding = match self.embedder.get() {
            Some(e) => e
                .embed(vec![summary.clone()])
                .await
                .ok()
                .and_then(|mut v| v.pop()),
            None => None,
        };
        self.writer.send(Write::Memory {
            tenant: s.tenant.clone(),
            user,
            memory: Memory {
                id: summary_memory_id(&s.session_id),
                kind: "summary".into(),
                text: summary,
                embedding: embedding.unwrap_or_default(),
                session_id: Some(s.session_id.clone()),
                created_at: now_ms(),
            },
        });
    }

    /// Summarise a finished session in the background and store it for the user.
    pub fn summarize(&self, s: &SessionInfo, messages: Vec<(&'static str, String)>) {
        if s.user.is_none() || !messages.iter().any(|(role, _)| *role == "user") {
            return;
        }
        let (log, s) = (self.clone(), s.clone());
        tokio::spawn(async move {
            match log
                .write_summary(SUMMARY_INSTRUCTIONS, transcript_text(&messages))
                .await
            {
                Ok(summary) => log.remember_summary(&s, summary).await,
                Err(e) => {
                    tracing::warn!(session = %s.session_id, error = %e, "no conversation summary")
                }
            }
        });
    }

    /// After a turn: fold older messages into the session's rolling summary when it is
    /// time (one summary at a time per session).
    pub fn roll_summary(&self, s: &SessionInfo) {
        let key = (s.tenant.clone(), s.session_id.clone());
        let started = self
            .rolling
            .lock()
            .map(|mut set| set.insert(key.clone()))
            .unwrap_or(false);
        if !started {
            return;
        }
        let (log, s) = (self.clone(), s.clone());
        tokio::spawn(async move {
            if let Err(e) = log.roll(&s).await {
                tracing::warn!(session = %s.session_id, error = %e, "rolling summary not written");
            }
            if let Ok(mut set) = log.rolling.lock() {
                set.remove(&key);
            }
        });
    }

    async fn roll(&self, s: &SessionInfo) -> Result<(), String> {
        let err = |e: crate::store::StoreError| e.to_string();
        let (previous, covered) = self
            .store
            .session_summary(&s.tenant, &s.session_id)
            .await
            .map_err(err)?
            .unwrap_or_default();
        // Most turns are not due: count first, read the messages only when one is.
        let stored = self
            .store
            .message_count(&s.tenant, &s.session_id)
            .await
            .map_err(err)?;
        if roll_range(stored, covered).is_none() {
            return Ok(());
        }
        let messages = self
            .store
            .messages(&s.tenant, &s.session_id)
            .await
            .map_err(err)?;
        let Some(range) = roll_range(messages.len(), covered) else {
            return Ok(());
        };
        let mut text = String::new();
        if !previous.is_empty() {
            text = format!("Summary so far: {previous}\n\nWhat followed:\n");
        }
        text.push_str(&transcript_text(&lines(&messages[range.clone()])));
        let summary = self.write_summary(ROLLING_INSTRUCTIONS, text).await?;
        self.writer.send(Write::SessionSummary {
            tenant: s.tenant.clone(),
            session_id: s.session_id.clone(),
            summary: summary.clone(),
            covers: range.end,
        });
        self.remember_summary(s, summary).await;
        Ok(())
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

    #[test]
    fn summaries_roll_every_few_messages_and_keep_the_newest_out() {
        assert_eq!(roll_range(15, 0), None);
        assert_eq!(roll_range(16, 0), Some(0..10));
        assert_eq!(roll_range(25, 10), None);
        assert_eq!(roll_range(26, 10), Some(10..20));
        assert_eq!(roll_range(3, 40), None);
    }
}
