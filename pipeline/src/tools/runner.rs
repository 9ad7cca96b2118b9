//! The server-side tool loop around one reply. Consumers (chat, chat socket, calls, IM)
//! read the same [`LlmStream`] as before: reply text, client tool calls and usage pass
//! through; calls to server-side tools are taken out of the stream and handled here.
//!
//! Per turn:
//! 1. If the session has an action whose outcome the model has not seen, settle it first:
//!    a pending one is approved or rejected by the caller's reply (or an explicit decision),
//!    or cancelled when the caller moved on; the outcome goes to the model as the answer
//!    to its tool call.
//! 2. Generate. Read tools run at once and the model continues with their answers (10 rounds
//!    at most). The first `write`/`dangerous` call becomes a pending action; the caller is
//!    asked in our words (not the model's) and the reply ends there, until they answer.
//!
//! The loop runs on its own task so an approved action always finishes and is recorded,
//! even if the caller hangs up or barges in. The rounds after it (generation and the calls
//! it makes) stop as soon as the stream is dropped: nobody would hear their answers, and the
//! tool calls in flight are dropped with them (an MCP server is told to cancel). A round's
//! reads, and its calls to the client's MCP servers, run side by side, so three lookups take
//! as long as the slowest, not the sum.
//!
//! A speculative reply (asked for while a caller has only paused) takes no step with an
//! effect before the turn is final: where step 1 has an action to settle, or step 2 a
//! server tool to run, it waits until then, and ends if the turn never is.

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::StreamExt;
use serde_json::json;
use tokio::sync::mpsc;

use super::builtin::{Builtin, CallControl};
use super::client_mcp::{
    ApprovedCall, ClientCallRecord, ClientServer, ClientTool, ClientTools, model_call,
};
use super::confirm::{Decision, decide, question};
use super::engine::{Resolution, ResolveError, ToolEngine, ToolScope};
use super::http::ToolOutput;
use super::{PendingAction, ToolDef};
use crate::llm::{
    ActionNotice, ChatMessage, ChatRequest, LlmError, LlmEvent, LlmProvider, LlmStream,
    McpCallNotice, ToolCall, ToolChoice,
};
use crate::orchestrator::Speculation;

/// Model rounds in one reply before tools are withheld.
pub const MAX_TOOL_ROUNDS: usize = 10;

/// One reply with server-side tools.
pub struct ToolRun {
    pub llm: Arc<dyn LlmProvider>,
    pub engine: Arc<ToolEngine>,
    pub scope: ToolScope,
    /// The server-side tools this turn may call (already in the request's tool list).
    pub tools: Vec<ToolDef>,
    /// An explicit answer to a pending action (`action_id`, approve), instead of reading
    /// the caller's last message.
    pub decision: Option<(String, bool)>,
    /// Whether the caller's turn is final: before its first action, a speculative reply
    /// waits until it is.
    pub speculative: Speculation,
    /// The tools of the MCP servers the client declared (a Realtime session's), also in the
    /// request's tool list: run here, each call shown to the client as an `mcp_call`.
    pub client_mcp: ClientTools,
    /// Calls to those the client approved since the last reply: run before the model goes on.
    pub approved: Vec<ApprovedCall>,
}

type Tx = mpsc::Sender<Result<LlmEvent, LlmError>>;

impl ToolRun {
    pub fn stream(self, request: ChatRequest) -> LlmStream {
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(async move { self.drive(request, tx).await });
        Box::pin(futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|ev| (ev, rx))
        }))
    }

    async fn drive(mut self, mut request: ChatRequest, tx: Tx) {
        if let Some(session) = self.scope.session.clone() {
            if self.speculative.is_pending()
                && self.open_action(&session).await.is_some()
                && !until_final(&mut self.speculative, &tx).await
            {
                return;
            }
            if !self.settle_open_action(&session, &mut request, &tx).await {
                return;
            }
        }
        if !self.approved.is_empty() {
            let go_on = until_final(&mut self.speculative, &tx).await
                && self.run_approved(&mut request, &tx).await;
            if !go_on {
                return;
            }
        }
        // Nobody waits for the rounds' answers once the stream is dropped.
        tokio::select! {
            () = self.rounds(request, &tx) => {}
            () = tx.closed() => {}
        }
    }

    /// Generate, run the calls the model makes, and go on with their answers, until the
    /// model answers in words, asks for confirmation or runs out of rounds.
    async fn rounds(&mut self, mut request: ChatRequest, tx: &Tx) {
        let server: HashMap<&str, &ToolDef> = self
            .client_mcp
            .defs()
            .chain(&self.tools)
            .map(|t| (t.name.as_str(), t))
            .collect();
        for _round in 0..MAX_TOOL_ROUNDS {
            let Some(round) = self.generate(&request, &server, tx).await else {
                return;
            };
            if round.calls.is_empty() || round.client_calls {
                if !round.calls.is_empty() {
                    tracing::warn!(
                        "model mixed client and server tool calls; server calls skipped"
                    );
                }
                return;
            }
            if !until_final(&mut self.speculative, tx).await {
                return;
            }
            let (reads, client) = tokio::join!(
                self.run_reads(&round.calls),
                self.run_client_calls(&round.calls, tx)
            );
            let mut answers = Vec::new();
            let mut asked: Option<PendingAction> = None;
            let mut client_asked = false;
            for ((call, client), read) in round.calls.iter().zip(client).zip(reads) {
                match client {
                    ClientCall::NotClient => {}
                    ClientCall::Gone => return,
                    ClientCall::Asked => {
                        client_asked = true;
                        continue;
                    }
                    ClientCall::Answered(content) => {
                        answers.push((call.id.clone(), content));
                        continue;
                    }
                }
                let Some(tool) = server.get(call.name.as_str()) else {
                    continue;
                };
                let content = if let Some(out) = read {
                    let notice = ActionNotice::ToolRan {
                        name: tool.name.clone(),
                        error: out.error.map(str::to_owned),
                    };
                    if !send(tx, LlmEvent::Action(notice)).await {
                        return;
                    }
                    let control = match &tool.builtin {
                        Some(Builtin::EndCall) => Some(CallControl::Hangup),
                        Some(Builtin::Escalate {
                            transfer_to: Some(to),
                            ..
                        }) => Some(CallControl::Transfer { to: to.clone() }),
                        _ => None,
                    };
                    if let Some(c) = control.filter(|_| out.error.is_none())
                        && !send(tx, LlmEvent::Action(ActionNotice::CallControl(c))).await
                    {
                        return;
                    }
                    out.content
                } else if asked.is_some() {
                    json!({"status": "not_run", "message": "Only one change can wait for confirmation at a time; ask again after this one is answered."}).to_string()
                } else {
                    match self.engine.propose(&self.scope, tool, call).await {
                        Ok(a) => {
                            asked = Some(a);
                            continue;
                        }
                        Err(e) => json!({"error": "not_run", "message": e}).to_string(),
                    }
                };
                answers.push((call.id.clone(), content));
            }
            if let Some(action) = asked {
                // The caller answers first; the model is not asked again until then.
                let spacer = if round.text.is_empty() || round.text.ends_with(char::is_whitespace) {
                    ""
                } else {
                    " "
                };
                let q = format!("{spacer}{}", question(&action.prompt));
                let _ = send(
                    tx,
                    LlmEvent::Action(ActionNotice::ConfirmationRequested(Box::new(action))),
                )
                .await
                    && send(tx, LlmEvent::Text(q)).await;
                return;
            }
            if client_asked {
                // The client answers with `mcp_approval_response` and asks for a new response.
                return;
            }
            request.messages.push(ChatMessage::Assistant {
                content: round.text,
                tool_calls: round.calls,
            });
            for (call_id, content) in answers {
                request
                    .messages
                    .push(ChatMessage::Tool { call_id, content });
            }
        }
        // Out of rounds: answer in words.
        request
            .tools
            .retain(|t| !server.contains_key(t.name.as_str()));
        request.tool_choice = ToolChoice::None;
        let _ = self.generate(&request, &server, tx).await;
    }

    /// Run the calls among `calls` to the operator's tools that only read, side by side:
    /// each one's output at its place (`None` for the others).
    async fn run_reads(&self, calls: &[ToolCall]) -> Vec<Option<ToolOutput>> {
        let reads = calls.iter().map(|call| async move {
            let tool = self.tools.iter().find(|t| t.name == call.name)?;
            if tool.effect.needs_confirmation() {
                return None;
            }
            Some(self.engine.run(&self.scope, tool, call, None).await)
        });
        futures_util::future::join_all(reads).await
    }

    /// Ask the client to approve, or run side by side, the calls among `calls` to its MCP
    /// servers (the operator's tools shadow a client's of the same name); each call's
    /// outcome at its place. The items appear in the model's order as the calls start.
    async fn run_client_calls(&self, calls: &[ToolCall], tx: &Tx) -> Vec<ClientCall> {
        let runs = calls.iter().map(|call| async move {
            if self.tools.iter().any(|t| t.name == call.name) {
                return ClientCall::NotClient;
            }
            let Some((server, tool)) = self.client_mcp.by_model_name(&call.name) else {
                return ClientCall::NotClient;
            };
            let notice = McpCallNotice {
                call_id: call.id.clone(),
                server_label: tool.server_label.clone(),
                server_url: server.declared.url.clone(),
                name: tool.name.clone(),
                arguments: call.arguments.clone(),
                approval_request_id: None,
            };
            if tool.needs_approval {
                let ask = ActionNotice::McpApprovalRequested(notice);
                return if send(tx, LlmEvent::Action(ask)).await {
                    ClientCall::Asked
                } else {
                    ClientCall::Gone
                };
            }
            match self.run_client_call(notice, Some((server, tool)), tx).await {
                Some(content) => ClientCall::Answered(content),
                None => ClientCall::Gone,
            }
        });
        futures_util::future::join_all(runs).await
    }

    /// Run the calls the client approved, side by side, and give the model their answers. `false` when the
    /// consumer has gone.
    async fn run_approved(&mut self, request: &mut ChatRequest, tx: &Tx) -> bool {
        let approved = std::mem::take(&mut self.approved);
        let runs = approved.iter().map(|a| {
            let found = self
                .client_mcp
                .by_label(&a.server_label, a.server_url.as_deref(), &a.name);
            let notice = McpCallNotice {
                call_id: a.approval_request_id.clone(),
                server_label: a.server_label.clone(),
                server_url: found.map_or_else(String::new, |(s, _)| s.declared.url.clone()),
                name: a.name.clone(),
                arguments: a.arguments.clone(),
                approval_request_id: Some(a.approval_request_id.clone()),
            };
            self.run_client_call(notice, found, tx)
        });
        let answers = futures_util::future::join_all(runs).await;
        for (a, content) in approved.iter().zip(answers) {
            let Some(content) = content else {
                return false;
            };
            let call = model_call(
                &a.approval_request_id,
                &a.server_label,
                &a.name,
                &a.arguments,
            );
            request
                .messages
                .extend(ChatMessage::tool_exchange(call, content));
        }
        true
    }

    /// Run one call to a client's MCP server's tool (`found`; `None`: no longer declared),
    /// telling the client as it starts and ends; the answer for the model, or `None` when
    /// the consumer has gone.
    async fn run_client_call(
        &self,
        notice: McpCallNotice,
        found: Option<(&Arc<ClientServer>, &ClientTool)>,
        tx: &Tx,
    ) -> Option<String> {
        if !send(
            tx,
            LlmEvent::Action(ActionNotice::McpCallStarted(notice.clone())),
        )
        .await
        {
            return None;
        }
        let started = std::time::Instant::now();
        let result = match found {
            Some((server, tool)) => server.call(tool, &notice.arguments).await,
            None => Err(json!({"type": "protocol_error", "code": -32000,
                "message": "The tool's server is no longer declared in this session."})),
        };
        let record = ClientCallRecord {
            server_label: &notice.server_label,
            tool: &notice.name,
            arguments: &notice.arguments,
            approval_request_id: notice.approval_request_id.as_deref(),
            error: result.as_ref().err().and_then(|e| e["type"].as_str()),
            elapsed: started.elapsed(),
        };
        self.engine.note_client_call(&self.scope, &record);
        let call_id = notice.call_id;
        let content = match &result {
            Ok(output) => output.clone(),
            Err(error) => json!({"error": error}).to_string(),
        };
        let done = ActionNotice::McpCallDone { call_id, result };
        send(tx, LlmEvent::Action(done)).await.then_some(content)
    }

    /// The action [`Self::settle_open_action`] would settle, looked up without settling it.
    async fn open_action(&self, session: &str) -> Option<super::PendingAction> {
        let tenant = &self.scope.tenant;
        let open = match &self.decision {
            Some((id, _)) => self.engine.actions().get(tenant, id).await,
            None => {
                self.engine
                    .actions()
                    .latest_unreported(tenant, session)
                    .await
            }
        };
        match open {
            Ok(Some(a)) if a.session_id == session => Some(a),
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(error = %e, "could not read pending actions");
                None
            }
        }
    }

    /// Step 1. `false` when the consumer has gone.
    async fn settle_open_action(&self, session: &str, request: &mut ChatRequest, tx: &Tx) -> bool {
        let tenant = &self.scope.tenant;
        let Some(action) = self.open_action(session).await else {
            return true;
        };
        let decision = match &self.decision {
            Some((_, approve)) => {
                if *approve {
                    Decision::Approve
                } else {
                    Decision::Reject
                }
            }
            None => decide(request.latest_user_text()),
        };
        use super::ActionStatus::Pending;
        let outcome = match (action.status, decision) {
            (Pending, Decision::Unclear) => {
                self.engine.supersede(&action).await;
                let _ = self.engine.actions().mark_reported(tenant, &action.id).await;
                return send(tx, resolved(&action.id, "superseded")).await;
            }
            (Pending, d) => match self.engine.resolve(tenant, &action.id, d == Decision::Approve, "reply").await {
                Ok(Resolution::Executed { action, output }) => (action.status.as_str(), output.content),
                Ok(Resolution::Rejected(_)) => ("rejected", json!({"status": "rejected", "message": "The caller said no, so nothing was done."}).to_string()),
                Err(ResolveError::Expired(_)) => ("expired", expired_note()),
                Err(ResolveError::AlreadyResolved(a)) => (a.status.as_str(), json!({"status": a.status.as_str(), "message": "This action was already handled."}).to_string()),
                Err(e) => {
                    tracing::warn!(error = %e, "could not resolve a pending action");
                    ("failed", json!({"error": "unavailable", "message": "The action could not be completed."}).to_string())
                }
            },
            // Resolved elsewhere (the actions API, expiry): tell the model how it ended.
            (status, _) => (
                status.as_str(),
                match status {
                    super::ActionStatus::Expired => expired_note(),
                    _ => action.result.clone().unwrap_or_else(|| json!({"status": status.as_str()}).to_string()),
                },
            ),
        };
        let _ = self
            .engine
            .actions()
            .mark_reported(tenant, &action.id)
            .await;
        let call = ToolCall {
            id: action.call_id.clone(),
            name: action.tool.clone(),
            arguments: action.arguments.clone(),
        };
        let exchange = ChatMessage::tool_exchange(call, outcome.1);
        // An answer follows the question; news from elsewhere goes before the caller's new
        // message, or last when no new message asked for this response (an expiry notice).
        let end = request.messages.len();
        let at = match request
            .messages
            .iter()
            .rposition(|m| matches!(m, ChatMessage::User(_)))
        {
            Some(i) if decision == Decision::Unclear && i + 1 == end => i,
            _ => end,
        };
        request.messages.splice(at..at, exchange);
        send(tx, resolved(&action.id, outcome.0)).await
    }

    /// One model round: pass text and client tool calls through, keep server tool calls.
    /// `None` when the consumer has gone or the provider failed (the error was passed on).
    async fn generate(
        &self,
        request: &ChatRequest,
        server: &HashMap<&str, &ToolDef>,
        tx: &Tx,
    ) -> Option<Round> {
        let mut stream = self.llm.stream(request.clone());
        let mut round = Round::default();
        // Stream index -> position in `round.calls` (server calls) or `None` (client calls).
        let mut slots: HashMap<u32, Option<usize>> = HashMap::new();
        loop {
            let next = tokio::select! {
                biased;
                () = tx.closed() => return None,
                next = stream.next() => next,
            };
            let ev = match next {
                None => return Some(round),
                Some(Err(e)) => {
                    let _ = tx.send(Err(e)).await;
                    return None;
                }
                Some(Ok(ev)) => ev,
            };
            let pass = match &ev {
                LlmEvent::Text(t) => {
                    round.text.push_str(t);
                    true
                }
                LlmEvent::ToolCallStart { index, id, name }
                    if server.contains_key(name.as_str()) =>
                {
                    slots.insert(*index, Some(round.calls.len()));
                    round.calls.push(ToolCall {
                        id: id.clone(),
                        name: name.clone(),
                        arguments: String::new(),
                    });
                    false
                }
                LlmEvent::ToolCallStart { index, .. } => {
                    slots.insert(*index, None);
                    round.client_calls = true;
                    true
                }
                LlmEvent::ToolCallArguments { index, delta } => match slots.get(index) {
                    Some(Some(at)) => {
                        round.calls[*at].arguments.push_str(delta);
                        false
                    }
                    _ => true,
                },
                LlmEvent::Usage(_) | LlmEvent::Action(_) => true,
            };
            if pass && !send(tx, ev).await {
                return None;
            }
        }
    }
}

/// What became of one of a round's calls, as a call to the client's MCP servers.
enum ClientCall {
    /// Not one: the operator's tool, or no tool at all.
    NotClient,
    /// Waits for the client's approval.
    Asked,
    /// Ran; the answer for the model.
    Answered(String),
    /// The consumer has gone.
    Gone,
}

#[derive(Default)]
struct Round {
    text: String,
    calls: Vec<ToolCall>,
    client_calls: bool,
}

fn expired_note() -> String {
    json!({"status": "expired", "message": "The confirmation window closed before the caller answered, so the action was cancelled and nothing was done. Offer to start again."}).to_string()
}

fn resolved(id: &str, status: &str) -> LlmEvent {
    LlmEvent::Action(ActionNotice::Resolved {
        action_id: id.to_owned(),
        status: status.to_owned(),
    })
}

/// A speculative reply waits here, before an action, until its turn is final; `false` when
/// it never will be or the consumer has gone.
async fn until_final(speculation: &mut Speculation, tx: &Tx) -> bool {
    tokio::select! {
        done = speculation.until_final() => done,
        () = tx.closed() => false,
    }
}

async fn send(tx: &Tx, ev: LlmEvent) -> bool {
    tx.send(Ok(ev)).await.is_ok()
}
