//! Rendering the call's events as Realtime server events (GA names and shapes).

use base64::Engine;
use serde_json::{Value, json};
use switchboard_pipeline::call::{CallError, CallEvent, PartRef, ResponseStatus, ResponseSummary};

use super::session::{RealtimeSession, format_json};
use super::transcription::logprobs_json;
use switchboard_pipeline::conversation::{Content, ItemKind, ItemStatus};

/// Numbers server events (`event_id`).
#[derive(Debug, Default)]
pub struct EventIds(u64);

impl EventIds {
    pub(super) fn next(&mut self) -> String {
        self.0 += 1;
        format!("event_{:06}", self.0)
    }
}

/// Which transport the events travel on: WebRTC also reports its output audio buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    WebSocket,
    WebRtc,
}

pub fn error_event(ids: &mut EventIds, e: &CallError) -> Value {
    json!({
        "type": "error",
        "event_id": ids.next(),
        "error": {
            "type": e.kind,
            "code": e.code,
            "message": e.message,
            "param": e.param,
            "event_id": e.event_id,
        }
    })
}

fn part_fields(p: &PartRef) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    m.insert("response_id".into(), json!(p.response_id));
    m.insert("item_id".into(), json!(p.item_id));
    m.insert("output_index".into(), json!(p.output_index));
    m.insert("content_index".into(), json!(p.content_index));
    m
}

fn with(kind: &str, ids: &mut EventIds, mut fields: serde_json::Map<String, Value>) -> Value {
    fields.insert("type".into(), json!(kind));
    fields.insert("event_id".into(), json!(ids.next()));
    Value::Object(fields)
}

fn obj(v: Value) -> serde_json::Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => serde_json::Map::new(),
    }
}

pub fn response_json(session: &RealtimeSession, r: &ResponseSummary) -> Value {
    let status_details = match r.status {
        ResponseStatus::Cancelled => json!({"type": "cancelled", "reason": r.reason}),
        ResponseStatus::Failed => {
            json!({"type": "failed", "error": {"type": "server_error", "code": r.reason, "message": r.error_message}})
        }
        ResponseStatus::Incomplete => json!({"type": "incomplete", "reason": r.reason}),
        _ => Value::Null,
    };
    json!({
        "object": "realtime.response",
        "id": r.id,
        "status": r.status.as_str(),
        "status_details": status_details,
        "output": r.output,
        "output_modalities": if r.audio_output { json!(["audio"]) } else { json!(["text"]) },
        "conversation_id": if r.out_of_band { Value::Null } else {
            json!(format!("conv_{}", session.id.trim_start_matches("sess_")))
        },
        "audio": {"output": {"format": format_json(session.output_format), "voice": session.config.voice}},
        "max_output_tokens": session.config.max_output_tokens.map_or(json!("inf"), |m| json!(m)),
        "metadata": if r.metadata.is_empty() { Value::Null } else {
            r.metadata.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect::<serde_json::Map<_, _>>().into()
        },
        "usage": {
            "total_tokens": r.usage.input_tokens + r.usage.output_tokens,
            "input_tokens": r.usage.input_tokens,
            "output_tokens": r.usage.output_tokens,
            "input_token_details": {"text_tokens": r.usage.input_tokens, "audio_tokens": 0, "cached_tokens": r.usage.cached_input_tokens},
            "output_token_details": {"text_tokens": r.usage.output_tokens, "audio_tokens": 0},
        },
    })
}

/// Our custom events for the agent's own tools (documented in ARCHITECTURE.md), named under
/// `switchboard.` so no OpenAI client mistakes them for its own:
/// `switchboard.action.confirmation_requested` (`action`: id, tool, effect, prompt,
/// expires_at), `switchboard.action.resolved` (`action_id`, `status`) and
/// `switchboard.tool.completed` (`name`, `error`).
fn action_event(
    ids: &mut EventIds,
    notice: &switchboard_pipeline::llm::ActionNotice,
) -> Option<Value> {
    use switchboard_pipeline::llm::ActionNotice;
    Some(match notice {
        ActionNotice::ConfirmationRequested(a) => with(
            "switchboard.action.confirmation_requested",
            ids,
            obj(
                json!({"action": {"id": a.id, "tool": a.tool, "effect": a.effect.as_str(),
                       "prompt": a.prompt, "expires_at": a.expires_at}}),
            ),
        ),
        ActionNotice::Resolved { action_id, status } => with(
            "switchboard.action.resolved",
            ids,
            obj(json!({"action_id": action_id, "status": status})),
        ),
        ActionNotice::ToolRan { name, error } => with(
            "switchboard.tool.completed",
            ids,
            obj(json!({"name": name, "error": error})),
        ),
        // Call control is the phone channel's; Realtime clients end calls themselves. MCP
        // calls become items and their own events (`CallEvent::Mcp*`) in the call.
        ActionNotice::CallControl(_)
        | ActionNotice::McpCallStarted(_)
        | ActionNotice::McpCallDone { .. }
        | ActionNotice::McpApprovalRequested(_) => return None,
    })
}

/// The server events for one call event (none for events this transport does not show).
pub fn render(
    ev: &CallEvent,
    session: &RealtimeSession,
    ids: &mut EventIds,
    transport: Transport,
) -> Vec<Value> {
    let one = |v: Value| vec![v];
    match ev {
        CallEvent::SessionUpdated(_) => one(with(
            "session.updated",
            ids,
            obj(json!({"session": session.to_json()})),
        )),
        CallEvent::SpeechStarted {
            audio_start_ms,
            item_id,
        } => one(with(
            "input_audio_buffer.speech_started",
            ids,
            obj(json!({"audio_start_ms": audio_start_ms, "item_id": item_id})),
        )),
        CallEvent::SpeechStopped {
            audio_end_ms,
            item_id,
        } => one(with(
            "input_audio_buffer.speech_stopped",
            ids,
            obj(json!({"audio_end_ms": audio_end_ms, "item_id": item_id})),
        )),
        CallEvent::IdleTimeout {
            audio_start_ms,
            audio_end_ms,
            item_id,
        } => one(with(
            "input_audio_buffer.timeout_triggered",
            ids,
            obj(
                json!({"audio_start_ms": audio_start_ms, "audio_end_ms": audio_end_ms,
                       "item_id": item_id}),
            ),
        )),
        CallEvent::AudioCommitted {
            item_id,
            previous_item_id,
        } => one(with(
            "input_audio_buffer.committed",
            ids,
            obj(json!({"item_id": item_id, "previous_item_id": previous_item_id})),
        )),
        CallEvent::AudioCleared => one(with("input_audio_buffer.cleared", ids, Default::default())),
        CallEvent::ItemCreated {
            previous_item_id,
            item,
        } => {
            let fields = || obj(json!({"previous_item_id": previous_item_id, "item": item}));
            let mut out = vec![with("conversation.item.added", ids, fields())];
            // A user audio item is done once transcribed, an MCP listing once listed; anything
            // else is done at once.
            let listing = matches!(&item.kind, ItemKind::McpListTools { .. });
            let pending = (listing && item.status == ItemStatus::InProgress)
                || matches!(&item.kind, ItemKind::Message { content, .. }
                if content.iter().any(|c| matches!(c, Content::InputAudio { transcript: None })));
            if !pending {
                out.push(with("conversation.item.done", ids, fields()));
            }
            out
        }
        CallEvent::ItemRetrieved { item } => one(with(
            "conversation.item.retrieved",
            ids,
            obj(json!({"item": item})),
        )),
        CallEvent::ItemDeleted { item_id } => one(with(
            "conversation.item.deleted",
            ids,
            obj(json!({"item_id": item_id})),
        )),
        CallEvent::ItemTruncated {
            item_id,
            content_index,
            audio_end_ms,
        } => one(with(
            "conversation.item.truncated",
            ids,
            obj(
                json!({"item_id": item_id, "content_index": content_index, "audio_end_ms": audio_end_ms}),
            ),
        )),
        CallEvent::InputTranscriptCompleted {
            item_id,
            content_index,
            transcript,
            audio_seconds,
            tokens,
        } => {
            // Whisper gives a turn's words at once: one delta holds all of them (as OpenAI's
            // whisper-1 does), for clients that show deltas as they come.
            let mut delta = obj(
                json!({"item_id": item_id, "content_index": content_index, "delta": transcript}),
            );
            let mut completed = obj(
                json!({"item_id": item_id, "content_index": content_index, "transcript": transcript,
                       "usage": {"type": "duration", "seconds": audio_seconds}}),
            );
            if session.transcript_logprobs {
                let logprobs = logprobs_json(tokens);
                delta.insert("logprobs".into(), logprobs.clone());
                completed.insert("logprobs".into(), logprobs);
            }
            let delta = with(
                "conversation.item.input_audio_transcription.delta",
                ids,
                delta,
            );
            let completed = with(
                "conversation.item.input_audio_transcription.completed",
                ids,
                completed,
            );
            // The user's audio item is complete now that it has its transcript.
            let item = json!({"id": item_id, "object": "realtime.item", "type": "message", "role": "user",
                "status": "completed", "content": [{"type": "input_audio", "transcript": transcript}]});
            let done = with(
                "conversation.item.done",
                ids,
                obj(json!({"previous_item_id": null, "item": item})),
            );
            vec![delta, completed, done]
        }
        CallEvent::InputTranscriptFailed {
            item_id,
            content_index,
            message,
        } => one(with(
            "conversation.item.input_audio_transcription.failed",
            ids,
            obj(
                json!({"item_id": item_id, "content_index": content_index, "error": {"type": "server_error", "code": "transcription_failed", "message": message}}),
            ),
        )),
        CallEvent::ResponseCreated {
            response_id,
            audio_output,
            metadata,
            out_of_band,
        } => {
            let summary = ResponseSummary {
                id: response_id.clone(),
                status: ResponseStatus::InProgress,
                reason: None,
                error_message: None,
                output: Vec::new(),
                usage: Default::default(),
                audio_output: *audio_output,
                metadata: metadata.clone(),
                out_of_band: *out_of_band,
            };
            let mut r = response_json(session, &summary);
            r["usage"] = Value::Null;
            one(with("response.created", ids, obj(json!({"response": r}))))
        }
        CallEvent::OutputItemAdded {
            response_id,
            output_index,
            item,
        } => one(with(
            "response.output_item.added",
            ids,
            obj(json!({"response_id": response_id, "output_index": output_index, "item": item})),
        )),
        CallEvent::OutputItemDone {
            response_id,
            output_index,
            item,
        } => one(with(
            "response.output_item.done",
            ids,
            obj(json!({"response_id": response_id, "output_index": output_index, "item": item})),
        )),
        CallEvent::McpListTools { item, status } => {
            let mut out = vec![with(
                &format!("mcp_list_tools.{status}"),
                ids,
                obj(json!({"item_id": item.id})),
            )];
            if *status != "in_progress" {
                out.push(with(
                    "conversation.item.done",
                    ids,
                    obj(json!({"previous_item_id": null, "item": item})),
                ));
            }
            out
        }
        CallEvent::McpCallArguments { part, arguments } => {
            let mut delta = part_fields(part);
            delta.remove("content_index");
            let mut done = delta.clone();
            delta.insert("delta".into(), json!(arguments));
            done.insert("arguments".into(), json!(arguments));
            vec![
                with("response.mcp_call_arguments.delta", ids, delta),
                with("response.mcp_call_arguments.done", ids, done),
            ]
        }
        CallEvent::McpCallStatus { part, status } => one(with(
            &format!("response.mcp_call.{status}"),
            ids,
            obj(json!({"item_id": part.item_id, "output_index": part.output_index})),
        )),
        CallEvent::ContentPartAdded { part, audio } => {
            let mut f = part_fields(part);
            f.insert(
                "part".into(),
                if *audio {
                    json!({"type": "audio", "transcript": ""})
                } else {
                    json!({"type": "text", "text": ""})
                },
            );
            one(with("response.content_part.added", ids, f))
        }
        CallEvent::ContentPartDone { part, audio, text } => {
            let mut f = part_fields(part);
            f.insert(
                "part".into(),
                if *audio {
                    json!({"type": "audio", "transcript": text})
                } else {
                    json!({"type": "text", "text": text})
                },
            );
            one(with("response.content_part.done", ids, f))
        }
        CallEvent::TextDelta { part, audio, delta } => {
            let mut f = part_fields(part);
            f.insert("delta".into(), json!(delta));
            one(with(
                if *audio {
                    "response.output_audio_transcript.delta"
                } else {
                    "response.output_text.delta"
                },
                ids,
                f,
            ))
        }
        CallEvent::TextDone { part, audio, text } => {
            let mut f = part_fields(part);
            if *audio {
                f.insert("transcript".into(), json!(text));
                one(with("response.output_audio_transcript.done", ids, f))
            } else {
                f.insert("text".into(), json!(text));
                one(with("response.output_text.done", ids, f))
            }
        }
        // Over WebRTC the reply audio is on the media track, not in the events.
        CallEvent::AudioDelta { .. } if transport == Transport::WebRtc => vec![],
        CallEvent::AudioDelta { part, samples } => {
            let mut f = part_fields(part);
            let bytes = session.output_format.encode(samples);
            f.insert(
                "delta".into(),
                json!(base64::engine::general_purpose::STANDARD.encode(bytes)),
            );
            one(with("response.output_audio.delta", ids, f))
        }
        CallEvent::AudioDone { part } => {
            one(with("response.output_audio.done", ids, part_fields(part)))
        }
        CallEvent::FunctionCallArgumentsDelta {
            part,
            call_id,
            delta,
        } => {
            let mut f = part_fields(part);
            f.remove("content_index");
            f.insert("call_id".into(), json!(call_id));
            f.insert("delta".into(), json!(delta));
            one(with("response.function_call_arguments.delta", ids, f))
        }
        CallEvent::FunctionCallArgumentsDone {
            part,
            call_id,
            name,
            arguments,
        } => {
            let mut f = part_fields(part);
            f.remove("content_index");
            f.insert("call_id".into(), json!(call_id));
            f.insert("name".into(), json!(name));
            f.insert("arguments".into(), json!(arguments));
            one(with("response.function_call_arguments.done", ids, f))
        }
        CallEvent::ResponseDone(summary) => vec![
            with(
                "response.done",
                ids,
                obj(json!({"response": response_json(session, summary)})),
            ),
            // The connection fills in where it stands against its limits
            // (`Connection`'s limits); an empty list when no limit applies.
            with("rate_limits.updated", ids, obj(json!({"rate_limits": []}))),
        ],
        CallEvent::PlaybackStarted { response_id } if transport == Transport::WebRtc => one(with(
            "output_audio_buffer.started",
            ids,
            obj(json!({"response_id": response_id})),
        )),
        CallEvent::PlaybackStopped { response_id } if transport == Transport::WebRtc => one(with(
            "output_audio_buffer.stopped",
            ids,
            obj(json!({"response_id": response_id})),
        )),
        CallEvent::PlaybackCleared { response_id } if transport == Transport::WebRtc => one(with(
            "output_audio_buffer.cleared",
            ids,
            obj(json!({"response_id": response_id})),
        )),
        CallEvent::PlaybackStarted { .. }
        | CallEvent::PlaybackStopped { .. }
        | CallEvent::PlaybackCleared { .. } => Vec::new(),
        CallEvent::Error(e) => one(error_event(ids, e)),
        CallEvent::Action(notice) => action_event(ids, notice).into_iter().collect(),
    }
}
