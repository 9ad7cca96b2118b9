//! Out-of-band responses (`response.conversation: "none"`): a client's side question (classify
//! the caller's mood, summarise so far) answered beside the conversation's response, from the
//! conversation as it stands or from the response's own `input`, in text, and written to no
//! conversation. Each runs as two tasks: the generation (`response.rs`) and a writer that turns
//! its messages into the response's events. The writer owns everything the response has, so
//! the actor keeps only a way to cancel it.
//!
//! On a Realtime WebSocket it may speak: its audio goes to the client as its own
//! `response.output_audio.delta` events, as fast as it is synthesized, and is never played
//! into the call (the client decides what to do with it). On a WebRTC call its audio could
//! only go into the call's track, over the conversation's voice, so there it answers in
//! text and asking it for audio is refused. It cannot use MCP servers or run the operator's
//! server-side tools (their results belong in the conversation), refused by name. The
//! client's function tools are offered; a call comes back as an output item, for the client
//! to act on.

use std::collections::BTreeMap;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::actor::{CallActor, FunctionCallOut, MessageOut};
use super::events::{CallError, CallEvent, ResponseOptions, ResponseStatus, ResponseSummary};
use super::respond::{conclude, merge_metadata};
use super::response::{self, ResponseJob, ResponseMsg};
use crate::conversation::{Item, ItemStatus};
use crate::llm::Usage;
use crate::metrics::CallMetrics;

/// Out-of-band responses one call may run at once.
pub(super) const MAX_OUT_OF_BAND: usize = 4;

/// The channels (`CallDeps::channel`) whose client gets reply audio as events, so that an
/// out-of-band response's audio reaches the client alone: the Realtime WebSocket.
const EVENT_AUDIO_CHANNELS: &[&str] = &["realtime"];

/// A running out-of-band response, as the actor knows it.
#[derive(Debug)]
pub(super) struct OutOfBand {
    pub id: String,
    token: CancellationToken,
    writer: JoinHandle<()>,
}

impl CallActor {
    /// Start an out-of-band response, or say why not. Its `response.created` is sent here,
    /// so that responses appear in the order they were asked for.
    pub(super) async fn start_out_of_band(
        &mut self,
        opts: ResponseOptions,
        event_id: Option<String>,
    ) {
        let (job, writer) = match self.prepare_out_of_band(opts) {
            Ok(prepared) => prepared,
            Err(err) => {
                self.error(err, event_id).await;
                return;
            }
        };
        self.emit(CallEvent::ResponseCreated {
            response_id: writer.id.clone(),
            audio_output: writer.audio,
            metadata: writer.metadata.clone(),
            out_of_band: true,
        })
        .await;
        let token = self.token.child_token();
        let (tx, rx) = mpsc::channel(32);
        tokio::spawn(response::run(job, token.clone(), tx));
        let id = writer.id.clone();
        let writer = tokio::spawn(writer.run(rx, token.clone()));
        self.out_of_band.push(OutOfBand { id, token, writer });
    }

    fn prepare_out_of_band(
        &mut self,
        opts: ResponseOptions,
    ) -> Result<(ResponseJob, Writer), CallError> {
        let speaks_to_client = EVENT_AUDIO_CHANNELS.contains(&self.deps.channel);
        if opts.audio_output == Some(true) && !speaks_to_client {
            return Err(CallError::invalid(
                "invalid_value",
                "An out-of-band response ('conversation': 'none') on this call answers in text: its audio would go into the call over the conversation's voice. Use 'output_modalities': ['text'].",
            )
            .with_param("response.output_modalities"));
        }
        if !opts.mcp.is_empty() {
            return Err(CallError::invalid(
                "invalid_value",
                "An out-of-band response ('conversation': 'none') calls no MCP servers; offer it function tools.",
            )
            .with_param("response.tools"));
        }
        self.out_of_band.retain(|r| !r.writer.is_finished());
        if self.out_of_band.len() >= MAX_OUT_OF_BAND {
            return Err(CallError::invalid(
                "too_many_active_responses",
                format!(
                    "This call already runs {MAX_OUT_OF_BAND} out-of-band responses; wait for one to finish or cancel one."
                ),
            ));
        }
        let mut plan = self.plan_for(&opts)?;
        plan.audio &= speaks_to_client;
        let audio = plan.audio;
        let mut job = self.response_job(0, plan);
        // No server-side tools: what they did would belong in the conversation.
        job.orchestrator.tools = None;
        job.apologize = false;
        let writer = Writer {
            id: self.ids.next("resp"),
            events: self.events.clone(),
            metadata: opts.metadata,
            audio,
            message: None,
            calls: BTreeMap::new(),
            outputs: 0,
            usage: Usage::default(),
            metrics: self.deps.metrics.clone(),
        };
        Ok((job, writer))
    }

    /// A client's `response.cancel`: the response it names (out-of-band or not), else the
    /// conversation's.
    pub(super) async fn cancel_requested(
        &mut self,
        response_id: Option<String>,
        event_id: Option<String>,
    ) {
        self.out_of_band.retain(|r| !r.writer.is_finished());
        let named = |id: &str| response_id.as_deref().is_none_or(|named| named == id);
        if let Some(r) = self
            .out_of_band
            .iter()
            .find(|r| response_id.as_deref() == Some(&r.id))
        {
            // Its writer sends `response.done` (cancelled).
            r.token.cancel();
        } else if self.response.as_ref().is_some_and(|r| named(&r.id)) {
            self.cancel_response("client_cancelled").await;
        } else {
            let message = match &response_id {
                Some(id) => format!("There is no active response {id} to cancel."),
                None => "There is no active response to cancel.".to_owned(),
            };
            let err = CallError::invalid("response_cancel_not_active", message);
            self.error(err, event_id).await;
        }
    }
}

/// Turns one out-of-band generation into its events; ids of its items derive from its own.
struct Writer {
    id: String,
    events: mpsc::Sender<CallEvent>,
    metadata: Vec<(String, String)>,
    /// It speaks: its message is audio with a transcript.
    audio: bool,
    message: Option<MessageOut>,
    calls: BTreeMap<u32, FunctionCallOut>,
    outputs: u32,
    usage: Usage,
    metrics: CallMetrics,
}

impl Writer {
    async fn run(mut self, mut rx: mpsc::Receiver<(u64, ResponseMsg)>, token: CancellationToken) {
        let (status, error) = loop {
            let msg = tokio::select! {
                biased;
                () = token.cancelled() => break (ResponseStatus::Cancelled, None),
                msg = rx.recv() => msg,
            };
            match msg.map(|(_, m)| m) {
                // The generation stopped without finishing (it panicked).
                None => {
                    let why = (
                        "server_error",
                        "The response stopped unexpectedly.".to_owned(),
                    );
                    break (ResponseStatus::Failed, Some(why));
                }
                Some(ResponseMsg::Finished { error: None }) => {
                    break (ResponseStatus::Completed, None);
                }
                Some(ResponseMsg::Finished { error: Some(e) }) => {
                    break (ResponseStatus::Failed, Some(e));
                }
                Some(m) => {
                    if !self.on_msg(m).await {
                        return;
                    }
                }
            }
        };
        token.cancel();
        self.finish(status, error).await;
    }

    /// Send an event; `false` when the call's channel is gone.
    async fn emit(&self, event: CallEvent) -> bool {
        self.events.send(event).await.is_ok()
    }

    fn next_item_id(&mut self) -> String {
        let output_index = self.outputs;
        self.outputs += 1;
        format!(
            "item_{}_{output_index}",
            self.id.trim_start_matches("resp_")
        )
    }

    /// Open its message on its first words or audio; `false` when the call's channel is gone.
    async fn open_message(&mut self) -> bool {
        if self.message.is_some() {
            return true;
        }
        let output_index = self.outputs;
        let m = MessageOut {
            item_id: self.next_item_id(),
            output_index,
            text: String::new(),
            segment: 0,
            closed: false,
        };
        let (_, events) = m.opened(&self.id, self.audio);
        self.message = Some(m);
        for event in events {
            if !self.emit(event).await {
                return false;
            }
        }
        true
    }

    async fn on_msg(&mut self, msg: ResponseMsg) -> bool {
        match msg {
            ResponseMsg::Text(delta) => {
                if !self.open_message().await {
                    return false;
                }
                let Some(m) = self.message.as_mut() else {
                    return true;
                };
                let event = m.push_text(&self.id, self.audio, delta);
                self.emit(event).await
            }
            ResponseMsg::Audio { samples, .. } => {
                // Its words came as text before it (the transcript's deltas).
                if !self.open_message().await {
                    return false;
                }
                let Some(m) = self.message.as_ref() else {
                    return true;
                };
                let part = m.part(&self.id);
                self.emit(CallEvent::AudioDelta { part, samples }).await
            }
            ResponseMsg::ToolCallStart { index, id, name } => {
                let output_index = self.outputs;
                let c = FunctionCallOut {
                    item_id: self.next_item_id(),
                    output_index,
                    call_id: id,
                    name,
                    arguments: String::new(),
                };
                let started = c.started(&self.id);
                self.calls.insert(index, c);
                self.emit(started).await
            }
            ResponseMsg::ToolCallArguments { index, delta } => {
                let Some(c) = self.calls.get_mut(&index) else {
                    return true;
                };
                let event = c.push_arguments(&self.id, delta);
                self.emit(event).await
            }
            ResponseMsg::Usage(u) => {
                self.usage = u;
                true
            }
            ResponseMsg::Context(metadata) => {
                merge_metadata(&mut self.metadata, metadata);
                true
            }
            // No MCP servers and no server-side tools: none of these come.
            ResponseMsg::AudioBreak
            | ResponseMsg::Action(_)
            | ResponseMsg::McpListed { .. }
            | ResponseMsg::Finished { .. } => true,
        }
    }

    /// Close its items and send `response.done`.
    async fn finish(self, status: ResponseStatus, error: Option<(&'static str, String)>) {
        let item_status = match status {
            ResponseStatus::Completed => ItemStatus::Completed,
            _ => ItemStatus::Incomplete,
        };
        let mut output: Vec<(u32, Item)> = Vec::new();
        let mut events = Vec::new();
        if let Some(m) = &self.message {
            events.extend(m.part_closed(&self.id, self.audio));
            let item = m.item(self.audio, item_status);
            events.push(m.done(&self.id, item.clone()));
            output.push((m.output_index, item));
        }
        for c in self.calls.values() {
            let (item, closing) = c.closed(&self.id, item_status);
            events.extend(closing);
            output.push((c.output_index, item));
        }
        output.sort_by_key(|(i, _)| *i);
        let cancelled = (status == ResponseStatus::Cancelled).then_some("client_cancelled");
        let (reason, error_message) = conclude(&self.metrics, status, error, cancelled);
        events.push(CallEvent::ResponseDone(Box::new(ResponseSummary {
            id: self.id.clone(),
            status,
            reason,
            error_message,
            output: output.into_iter().map(|(_, item)| item).collect(),
            usage: self.usage,
            audio_output: self.audio,
            metadata: self.metadata.clone(),
            out_of_band: true,
        })));
        for event in events {
            if !self.emit(event).await {
                return;
            }
        }
    }
}
