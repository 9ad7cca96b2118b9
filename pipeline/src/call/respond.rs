//! The response lifecycle inside the actor: start, reply text and audio as they arrive,
//! paced playback and completion (its messages are in `messages.rs`, cancellation and
//! barge-in in `interrupt.rs`). The generation itself runs in `response.rs` as a separate
//! task.

use std::collections::BTreeMap;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::actor::{ActiveResponse, CallActor, FunctionCallOut};
use super::draft::ResponsePlan;
use super::events::{
    CallError, CallEvent, PartRef, ResponseInput, ResponseOptions, ResponseStatus, ResponseSummary,
};
use super::playback::Playback;
use super::response::{self, McpToConnect, ResponseJob, ResponseMsg};
use crate::conversation::{Conversation, Item, ItemStatus};
use crate::llm::{ChatMessage, ChatRequest, ToolChoice};
use crate::metrics::CallMetrics;
use crate::orchestrator::Speculation;
use crate::tools::client_mcp::ClientMcpServer;

impl CallActor {
    /// A client's `response.create`: waits for transcriptions in flight, refuses a second one.
    pub(super) async fn request_response(
        &mut self,
        opts: ResponseOptions,
        v2v: Option<Instant>,
        event_id: Option<String>,
    ) {
        if self.config.transcription_only {
            let err = CallError::invalid(
                "transcription_session",
                "This is a transcription session: it transcribes the audio and never responds. Use a realtime session for responses.",
            );
            self.error(err, event_id).await;
            return;
        }
        if opts.out_of_band {
            // Beside the conversation's response, not after it.
            self.start_out_of_band(opts, event_id).await;
            return;
        }
        // Checked now, so that an error names the client's event.
        if let Err(err) = self.check_input(&opts) {
            self.error(err, event_id).await;
            return;
        }
        if opts.interrupt && self.response.is_some() {
            self.cancel_response("turn_detected").await;
        }
        if opts.queue && self.response.is_some() {
            // The conversation already holds the news; a response already waiting covers it.
            self.deferred_response.get_or_insert((opts, v2v));
            return;
        }
        if let Some(r) = &self.response {
            let err = CallError::invalid(
                "conversation_already_has_active_response",
                format!(
                    "Conversation already has an active response in progress: {}. Wait until the response is finished before creating a new one.",
                    r.id
                ),
            );
            self.error(err, event_id).await;
            return;
        }
        if self.pending_stt > 0 {
            self.deferred_response = Some((opts, v2v));
            return;
        }
        self.start_response(opts, v2v).await;
    }

    pub(super) async fn start_response(
        &mut self,
        opts: ResponseOptions,
        v2v_start: Option<Instant>,
    ) {
        if self.response.is_some() {
            // Interruptions are off and a response is playing: answer after it.
            self.deferred_response = Some((opts, v2v_start));
            return;
        }
        let plan = match self.plan_for(&opts) {
            Ok(plan) => plan,
            Err(err) => {
                // The items it named were deleted while it waited.
                self.error(err, None).await;
                return;
            }
        };
        self.idle_from_ms = None;
        let id = self.ids.next("resp");
        let audio = plan.audio;
        // A reply drafted while the caller paused serves if it answers exactly this (and so
        // declares no MCP servers). Those the response must connect first are listed as its
        // first items.
        let (generation, token, held, connecting) =
            match self.take_draft(&plan, opts.decision.is_none()) {
                Some(draft) => (draft.generation, draft.token, draft.held, Vec::new()),
                None => {
                    let (token, connecting) =
                        self.spawn_response(plan, opts.decision, Speculation::default());
                    (self.generation, token, Vec::new(), connecting)
                }
            };
        self.response = Some(ActiveResponse {
            id: id.clone(),
            generation,
            token,
            audio,
            messages: Vec::new(),
            text_segment: 0,
            audio_segment: 0,
            calls: BTreeMap::new(),
            mcp_calls: BTreeMap::new(),
            mcp_items: Vec::new(),
            mcp_listings: BTreeMap::new(),
            outputs: 0,
            playback: Playback::new(self.config.output_rate),
            generation_done: false,
            error: None,
            usage: Default::default(),
            metadata: opts.metadata.clone(),
            barge_in_at: None,
            v2v_start,
            last_audio_sent: None,
        });
        self.emit(CallEvent::ResponseCreated {
            response_id: id,
            audio_output: audio,
            metadata: opts.metadata.clone(),
            out_of_band: false,
        })
        .await;
        self.open_listings(&connecting).await;
        for msg in held {
            Box::pin(self.on_response_msg(generation, msg)).await;
        }
    }

    /// [`Self::plan_response`] for what `opts` answers ([`Self::response_context`]).
    pub(super) fn plan_for(&self, opts: &ResponseOptions) -> Result<ResponsePlan, CallError> {
        let context = self.response_context(opts)?;
        Ok(self.plan_response(&context, opts, None))
    }

    /// Refuse an `input` that refers to an item the conversation does not hold.
    fn check_input(&self, opts: &ResponseOptions) -> Result<(), CallError> {
        let references = opts.input.iter().flatten().filter_map(|entry| match entry {
            ResponseInput::Reference(id) => Some(id),
            ResponseInput::Item(_) => None,
        });
        for id in references {
            if self.conversation.get(id).is_none() {
                return Err(missing_input_item(id));
            }
        }
        Ok(())
    }

    /// What a response with `opts` answers: the conversation, or its own `input` (new items
    /// and the conversation's by reference, in the order given).
    pub(super) fn response_context(
        &self,
        opts: &ResponseOptions,
    ) -> Result<std::borrow::Cow<'_, Conversation>, CallError> {
        let Some(input) = &opts.input else {
            return Ok(std::borrow::Cow::Borrowed(&self.conversation));
        };
        let mut items = Vec::with_capacity(input.len());
        for entry in input {
            items.push(match entry {
                ResponseInput::Item(item) => item.clone(),
                ResponseInput::Reference(id) => self
                    .conversation
                    .get(id)
                    .cloned()
                    .ok_or_else(|| missing_input_item(id))?,
            });
        }
        Ok(std::borrow::Cow::Owned(Conversation::from_items(items)))
    }

    /// What a response with `opts` would ask and how it would speak. `then_user` is a user
    /// message the conversation does not hold yet (the transcript a draft answers).
    pub(super) fn plan_response(
        &self,
        conversation: &Conversation,
        opts: &ResponseOptions,
        then_user: Option<&str>,
    ) -> ResponsePlan {
        let audio = opts.audio_output.unwrap_or(self.config.audio_output);
        let instructions = opts
            .instructions
            .clone()
            .unwrap_or_else(|| self.config.instructions.clone());
        // A new user message ends the tool rounds before it.
        let rounds = match then_user {
            Some(_) => 0,
            None => conversation.trailing_tool_rounds(),
        };
        let tool_choice = if rounds >= self.config.max_tool_rounds {
            tracing::warn!(rounds, "tool round limit reached: answering without tools");
            ToolChoice::None
        } else {
            opts.tool_choice
                .clone()
                .unwrap_or_else(|| self.config.tool_choice.clone())
        };
        let mut messages = conversation.chat_messages(&instructions);
        messages.extend(then_user.map(|t| ChatMessage::User(t.to_owned())));
        let request = ChatRequest {
            messages,
            tools: opts
                .tools
                .clone()
                .unwrap_or_else(|| self.config.tools.clone()),
            tool_choice,
            temperature: opts.temperature.or(self.config.temperature),
            max_tokens: opts.max_output_tokens.or(self.config.max_output_tokens),
            top_p: None,
            seed: None,
            model: None,
            background: false,
            conversation: Some(self.call_id.clone()),
        };
        ResponsePlan {
            request,
            mcp: opts.mcp.clone(),
            audio,
            speed: self.config.speed,
            output_rate: self.config.output_rate,
        }
    }

    /// Start generating `plan` under a new generation number; returns its token and the MCP
    /// servers it declares that its task connects first.
    pub(super) fn spawn_response(
        &mut self,
        plan: ResponsePlan,
        decision: Option<(String, bool)>,
        speculative: Speculation,
    ) -> (CancellationToken, Vec<ClientMcpServer>) {
        self.generation += 1;
        let token = self.token.child_token();
        let tx = match speculative.is_pending() {
            true => self.draft_tx.clone(),
            false => self.resp_tx.clone(),
        };
        let (client_mcp, servers) = self.response_tools(&plan.mcp);
        let connect = (!servers.is_empty()).then(|| McpToConnect {
            servers: servers.clone(),
            guard: self.mcp_guard(),
        });
        let job = ResponseJob {
            decision,
            speculative,
            client_mcp,
            connect,
            approved: self.approved_mcp_calls(),
            ..self.response_job(self.generation, plan)
        };
        tokio::spawn(response::run(job, token.clone(), tx));
        (token, servers)
    }

    /// A job generating `plan` for this call, with no tools of the client's MCP servers, no
    /// decision to settle and nothing to wait for.
    pub(super) fn response_job(&self, generation: u64, plan: ResponsePlan) -> ResponseJob {
        ResponseJob {
            generation,
            request: plan.request,
            audio: plan.audio,
            speed: plan.speed,
            output_rate: plan.output_rate,
            orchestrator: self.deps.orchestrator.clone(),
            tenant: self.deps.tenant.clone(),
            channel: self.deps.channel,
            persona: self.deps.persona.clone(),
            user: self.deps.user.clone(),
            session: self.call_id.clone(),
            decision: None,
            speculative: Speculation::default(),
            client_mcp: Default::default(),
            connect: None,
            approved: Vec::new(),
            apologize: true,
            tts: self.deps.tts.clone(),
            metrics: self.deps.metrics.clone(),
        }
    }

    /// Take more from the response task only while playback is not far behind.
    pub(super) fn accepts_response_audio(&self) -> bool {
        self.response
            .as_ref()
            .is_none_or(|r| !r.playback.is_full(Instant::now()))
    }

    pub(super) fn needs_pacing(&self) -> bool {
        self.response
            .as_ref()
            .is_some_and(|r| r.audio && !r.playback.is_paused() && !r.playback.all_sent())
    }

    pub(super) async fn on_response_msg(&mut self, generation: u64, msg: ResponseMsg) {
        let Some(msg) = self.hold_for_draft(generation, msg) else {
            return;
        };
        if self
            .response
            .as_ref()
            .is_none_or(|r| r.generation != generation)
        {
            return; // from a response already cancelled
        }
        match msg {
            ResponseMsg::Text(delta) => {
                let Some(segment) = self.response.as_ref().map(|r| r.text_segment) else {
                    return;
                };
                self.ensure_message(segment).await;
                let Some(r) = self.response.as_mut() else {
                    return;
                };
                let Some(m) = r.messages.iter_mut().find(|m| m.segment == segment) else {
                    return;
                };
                let event = m.push_text(&r.id, r.audio, delta);
                self.emit(event).await;
            }
            ResponseMsg::Audio { samples, text } => {
                let Some(segment) = self.response.as_ref().map(|r| r.audio_segment) else {
                    return;
                };
                self.ensure_message(segment).await;
                if let Some(r) = self.response.as_mut()
                    && let Some(m) = r.messages.iter().find(|m| m.segment == segment)
                {
                    r.playback.begin_item(&m.item_id);
                    r.playback.push(&samples, &text);
                }
                self.pace().await;
            }
            ResponseMsg::AudioBreak => {
                if let Some(r) = self.response.as_mut() {
                    r.audio_segment += 1;
                }
                self.close_said_messages().await;
            }
            ResponseMsg::ToolCallStart { index, id, name } => {
                let Some(r) = self.response.as_mut() else {
                    return;
                };
                let c = FunctionCallOut {
                    item_id: self.ids.next("item"),
                    output_index: r.outputs,
                    call_id: id,
                    name,
                    arguments: String::new(),
                };
                r.outputs += 1;
                let started = c.started(&r.id);
                r.calls.insert(index, c);
                self.emit(started).await;
            }
            ResponseMsg::ToolCallArguments { index, delta } => {
                let Some(r) = self.response.as_mut() else {
                    return;
                };
                let Some(c) = r.calls.get_mut(&index) else {
                    return;
                };
                let event = c.push_arguments(&r.id, delta);
                self.emit(event).await;
            }
            ResponseMsg::Context(metadata) => {
                if let Some(r) = &mut self.response {
                    merge_metadata(&mut r.metadata, metadata);
                }
            }
            ResponseMsg::Usage(u) => {
                if let Some(r) = self.response.as_mut() {
                    r.usage = u;
                }
            }
            ResponseMsg::Action(notice) => self.on_mcp_notice(notice).await,
            ResponseMsg::McpListed { label, result } => {
                self.on_response_listed(&label, result).await;
            }
            ResponseMsg::Finished { error } => {
                if let Some(r) = self.response.as_mut() {
                    r.generation_done = true;
                    r.error = error;
                }
                self.maybe_complete().await;
            }
        }
    }

    /// Send the reply audio that is due.
    pub(super) async fn pace(&mut self) {
        let now = Instant::now();
        let Some(r) = self.response.as_mut() else {
            return;
        };
        let from = r.playback.sent();
        let Some(samples) = r.playback.due(now, r.generation_done) else {
            return;
        };
        let first = r.last_audio_sent.is_none();
        r.last_audio_sent = Some(now);
        // Each piece with its message (a new one begins after an MCP call).
        let pieces: Vec<(PartRef, Vec<f32>)> = r
            .playback
            .split_by_item(from..from + samples.len())
            .into_iter()
            .filter_map(|(item_id, span)| {
                let m = r.messages.iter().find(|m| m.item_id == item_id)?;
                let piece = samples[span.start - from..span.end - from].to_vec();
                Some((Self::part(r, m), piece))
            })
            .collect();
        let response_id = r.id.clone();
        if first {
            if let Some(start) = r.v2v_start {
                self.deps
                    .metrics
                    .voice_to_voice_seconds
                    .observe((now - start).as_secs_f64());
            }
            self.emit(CallEvent::PlaybackStarted { response_id }).await;
        }
        let mut previous: Option<String> = None;
        for (part, samples) in pieces {
            if previous.as_ref().is_some_and(|p| *p != part.item_id) {
                // The frame crosses into the next message: the one before has all been sent
                // and is done before the next one's audio.
                self.close_said_messages().await;
            }
            previous = Some(part.item_id.clone());
            self.emit(CallEvent::AudioDelta { part, samples }).await;
        }
        self.close_said_messages().await;
        self.maybe_complete().await;
    }

    async fn maybe_complete(&mut self) {
        let done = self.response.as_ref().is_some_and(|r| {
            r.generation_done && (!r.audio || r.playback.all_sent()) && r.barge_in_at.is_none()
        });
        if done {
            let status = if self.response.as_ref().is_some_and(|r| r.error.is_some()) {
                ResponseStatus::Failed
            } else {
                ResponseStatus::Completed
            };
            self.finish(status, None).await;
        }
    }

    /// Close every output item and send `response.done`.
    pub(super) async fn finish(&mut self, status: ResponseStatus, reason: Option<&'static str>) {
        let Some(r) = self.response.take() else {
            return;
        };
        r.token.cancel();
        let item_status = if status == ResponseStatus::Completed {
            ItemStatus::Completed
        } else {
            ItemStatus::Incomplete
        };
        let mut output: Vec<(u32, Item)> = Vec::new();
        for m in &r.messages {
            let item = match m.closed {
                true => self.conversation.get(&m.item_id).cloned(),
                false => self.close_message(&r.id, r.audio, m, item_status).await,
            };
            output.extend(item.map(|item| (m.output_index, item)));
        }
        for c in r.calls.values() {
            let (item, events) = c.closed(&r.id, item_status);
            let _ = self.conversation.insert(item.clone(), None);
            output.push((c.output_index, item));
            for event in events {
                self.emit(event).await;
            }
        }
        let open: Vec<_> = r
            .mcp_calls
            .into_values()
            .chain(r.mcp_listings.into_values())
            .collect();
        output.extend(self.close_mcp_items(&r.id, &r.mcp_items, &open).await);
        output.sort_by_key(|(i, _)| *i);
        let output: Vec<Item> = output.into_iter().map(|(_, item)| item).collect();
        if status == ResponseStatus::Completed && r.playback.started() {
            self.emit(CallEvent::PlaybackStopped {
                response_id: r.id.clone(),
            })
            .await;
        }
        let (code, message) = conclude(&self.deps.metrics, status, r.error, reason);
        let summary = ResponseSummary {
            id: r.id.clone(),
            status,
            reason: code,
            error_message: message,
            output,
            usage: r.usage,
            audio_output: r.audio,
            metadata: r.metadata.clone(),
            out_of_band: false,
        };
        let last_item = summary.output.last().map(|i| i.id.clone());
        self.persist_through(last_item.as_deref(), false);
        self.emit(CallEvent::ResponseDone(Box::new(summary))).await;
        if !r.messages.is_empty() {
            self.last_playback = Some(r.playback);
        }
        // Its audio has all been sent at real-time pace: the caller's silence counts from here.
        self.idle_from_ms = Some(self.input.now_ms());
        if self.pending_stt == 0
            && let Some((opts, v2v)) = self.deferred_response.take()
        {
            Box::pin(self.start_response(opts, v2v)).await;
        }
    }
}

fn missing_input_item(id: &str) -> CallError {
    CallError::invalid(
        "item_not_found",
        format!("'response.input' refers to item {id}, which does not exist"),
    )
    .with_param("response.input")
}

/// Add the orchestrator's metadata (persona, degraded) under the keys the client left free.
pub(super) fn merge_metadata(into: &mut Vec<(String, String)>, from: Vec<(String, String)>) {
    for (key, value) in from {
        if !into.iter().any(|(k, _)| *k == key) {
            into.push((key, value));
        }
    }
}

/// Count a finished response and say why it ended, as `response.done`'s `reason` and
/// `error_message`: its error's code and message, else `reason`.
pub(super) fn conclude(
    metrics: &CallMetrics,
    status: ResponseStatus,
    error: Option<(&'static str, String)>,
    reason: Option<&'static str>,
) -> (Option<String>, Option<String>) {
    metrics
        .responses_total
        .with_label_values(&[status.as_str()])
        .inc();
    match error {
        Some((code, message)) => (Some(code.to_owned()), Some(message)),
        None => (reason.map(str::to_owned), None),
    }
}
