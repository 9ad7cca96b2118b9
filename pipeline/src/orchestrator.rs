//! The orchestrator's stages for one user turn, shared by voice calls and text chat:
//!
//! 1. prepare: pick the persona;
//! 2. context: knowledge, memory and profile at once, each under its deadline, then the
//!    prompt assembled under the persona's token budget;
//! 3. tools: the offered tools the persona allows become the tool schema;
//! 4. generate: stream from the provider chain (fallback and the tool loop live there and
//!    in the caller);
//! 5. persist: the caller stores the turn once the reply is done (off the hot path).
//!
//! Each stage is timed in `switchboard_stage_seconds{stage}`.

use std::sync::Arc;
use std::time::Instant;

use prometheus::HistogramVec;

use crate::budget::{TokenBudget, estimate_prompt_tokens, metered};
use crate::context::summary::{OlderTurns, SUMMARY_DEADLINE, SummarySource};
use crate::context::{
    ContextOutcome, ContextStage, LookupCtx, PromptInputs, approx_tokens, assemble,
};
use crate::llm::{ChatMessage, ChatRequest, LlmError, LlmProvider, LlmStream, ToolChoice};
use crate::persona::{Persona, Personas};
use crate::tools::client_mcp::{ApprovedCall, ClientTools};
use crate::tools::engine::ToolScope;
use crate::tools::runner::ToolRun;
use crate::tools::{ToolDef, ToolEngine};

/// Who is talking and what they said: the input of one turn.
#[derive(Debug, Clone, Default)]
pub struct TurnRequest {
    pub tenant: String,
    /// Where the turn comes from: `phone`, `realtime`, `webrtc`, `chat`, `chat_ws`, `slack`...
    pub channel: String,
    pub user: Option<String>,
    pub session: Option<String>,
    /// Persona name; `None` or unknown: the default persona.
    pub persona: Option<String>,
    /// The conversation so far (the client's own system messages included), the tools the
    /// client offers, and its sampling settings.
    pub request: ChatRequest,
    /// An explicit answer to a pending action (`action_id`, approve) instead of reading
    /// the user's last message (a chat widget's approve/reject buttons).
    pub decision: Option<(String, bool)>,
    /// Whether the user's turn is final; see [`Speculation`].
    pub speculative: Speculation,
    /// The MCP servers the client declared (a Realtime session's), run by the gateway.
    pub client_mcp: ClientTools,
    /// Calls to those the client has approved since the last reply.
    pub approved: Vec<ApprovedCall>,
}

/// Whether a turn is final. A speculative turn (a call's caller has paused, not yet
/// stopped) is answered up to its first action (a tool to run, a pending action to settle)
/// and waits there until the turn is confirmed; if it never is, the reply is dropped.
#[derive(Debug, Clone, Default)]
pub struct Speculation(Option<tokio::sync::watch::Receiver<bool>>);

impl Speculation {
    /// A speculative turn, and what confirms it: `send(true)`; dropped unsent, never.
    pub fn pending() -> (tokio::sync::watch::Sender<bool>, Self) {
        let (tx, rx) = tokio::sync::watch::channel(false);
        (tx, Self(Some(rx)))
    }

    pub fn is_pending(&self) -> bool {
        self.0.as_ref().is_some_and(|rx| !*rx.borrow())
    }

    /// Wait until the turn is final; `false` when it never will be.
    pub async fn until_final(&mut self) -> bool {
        match &mut self.0 {
            None => true,
            Some(rx) => rx.wait_for(|done| *done).await.is_ok(),
        }
    }
}

/// A turn ready to generate.
#[derive(Debug, Clone)]
pub struct PreparedTurn {
    pub persona: String,
    pub request: ChatRequest,
    pub context: ContextOutcome,
    /// Messages of the conversation left out for lack of room.
    pub dropped_messages: usize,
    /// Whose turn it is, for server-side tools.
    pub scope: ToolScope,
    /// The server-side tools this turn may call (also in `request.tools`).
    pub server_tools: Vec<ToolDef>,
    pub decision: Option<(String, bool)>,
    /// See [`TurnRequest::speculative`].
    pub speculative: Speculation,
    /// See [`TurnRequest::client_mcp`] (the tools of theirs the persona allows are offered
    /// in `request.tools`).
    pub client_mcp: ClientTools,
    pub approved: Vec<ApprovedCall>,
    /// The tenant's token budget is spent: the reply is this refusal, and no LLM is asked.
    pub over_budget: Option<std::time::Duration>,
}

impl PreparedTurn {
    /// `degraded` and `degrade_reasons` as string pairs (the Realtime `metadata` shape).
    pub fn metadata(&self) -> Vec<(String, String)> {
        vec![
            ("persona".into(), self.persona.clone()),
            ("degraded".into(), self.context.degraded().to_string()),
            (
                "degrade_reasons".into(),
                self.context.degrade_codes().join(","),
            ),
            (
                "context_ms".into(),
                self.context.elapsed.as_millis().to_string(),
            ),
        ]
    }
}

#[derive(Clone)]
pub struct Orchestrator {
    pub personas: Arc<Personas>,
    pub context: ContextStage,
    pub llm: Arc<dyn LlmProvider>,
    /// Server-side tools; `None`: only the tools clients offer.
    pub tools: Option<Arc<ToolEngine>>,
    /// Where sessions' rolling summaries are read.
    pub summaries: Option<Arc<dyn SummarySource>>,
    /// Tokens each tenant may spend; `None`: no limit.
    pub budget: Option<Arc<dyn TokenBudget>>,
    stage_seconds: Option<HistogramVec>,
}

impl std::fmt::Debug for Orchestrator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Orchestrator")
            .field("context", &self.context)
            .field("llm", &self.llm.name())
            .finish_non_exhaustive()
    }
}

impl Orchestrator {
    pub fn new(
        personas: Arc<Personas>,
        context: ContextStage,
        llm: Arc<dyn LlmProvider>,
        stage_seconds: Option<HistogramVec>,
    ) -> Self {
        Self {
            personas,
            context,
            llm,
            tools: None,
            summaries: None,
            budget: None,
            stage_seconds,
        }
    }

    /// Read sessions' older-turn summaries from `source`.
    pub fn with_summaries(mut self, source: Arc<dyn SummarySource>) -> Self {
        self.summaries = Some(source);
        self
    }

    /// The session's summary of older turns, if it has one and it comes in time.
    async fn older_turns(&self, tenant: &str, session: Option<&str>) -> Option<OlderTurns> {
        let (source, session) = (self.summaries.as_ref()?, session?);
        match tokio::time::timeout(SUMMARY_DEADLINE, source.older_turns(tenant, session)).await {
            Ok(Ok(summary)) => summary,
            Ok(Err(e)) => {
                tracing::warn!(session, error = %e.0, "reading the session summary failed");
                None
            }
            Err(_) => {
                tracing::warn!(session, "the session summary came too late");
                None
            }
        }
    }

    /// Limit the tokens each tenant's replies may use.
    pub fn with_budget(mut self, budget: Arc<dyn TokenBudget>) -> Self {
        self.budget = Some(budget);
        self
    }

    /// `Err(retry_after)` while `tenant`'s token budget is spent.
    async fn admit(&self, tenant: &str) -> Result<(), std::time::Duration> {
        match &self.budget {
            Some(b) => b.admit(tenant).await,
            None => Ok(()),
        }
    }

    /// Give the orchestrator server-side tools.
    pub fn with_tools(mut self, engine: Arc<ToolEngine>) -> Self {
        self.tools = Some(engine);
        self
    }

    fn observe(&self, stage: &str, since: Instant) {
        if let Some(h) = &self.stage_seconds {
            h.with_label_values(&[stage])
                .observe(since.elapsed().as_secs_f64());
        }
    }

    /// Stages 1 to 3: persona, context and prompt, tools.
    pub async fn prepare(&self, turn: TurnRequest) -> PreparedTurn {
        let started = Instant::now();
        let persona: Persona = self.personas.pick(turn.persona.as_deref()).clone();
        self.observe("prepare", started);

        let started = Instant::now();
        let query = turn.request.latest_user_text().to_owned();
        let ChatRequest {
            messages,
            tools,
            tool_choice,
            temperature,
            top_p,
            max_tokens,
            seed,
            model,
            background,
            conversation,
        } = turn.request;
        let scope = ToolScope {
            tenant: turn.tenant.clone(),
            channel: turn.channel.clone(),
            session: turn.session.clone(),
            user: turn.user.clone(),
            persona: persona.name.clone(),
        };
        let lookup = LookupCtx {
            tenant: turn.tenant,
            user: turn.user,
            session: turn.session,
            query,
            query_vector: Default::default(),
        };
        let plan = persona.context_plan();
        let (context, summary, admitted) = tokio::join!(
            self.context.run(&lookup, &plan),
            self.older_turns(&lookup.tenant, lookup.session.as_deref()),
            self.admit(&lookup.tenant)
        );
        // The persona leads; the client's own system messages follow it.
        let (system, history): (Vec<ChatMessage>, Vec<ChatMessage>) = messages
            .into_iter()
            .partition(|m| matches!(m, ChatMessage::System(_)));
        let mut instructions = persona.instructions.clone();
        for m in system {
            if let ChatMessage::System(t) = m {
                if !instructions.is_empty() {
                    instructions.push_str("\n\n");
                }
                instructions.push_str(&t);
            }
        }
        let assembled = assemble(
            &PromptInputs {
                persona: &instructions,
                history: &history,
                context: &context.parts,
                summary: summary.as_ref(),
                budget: persona.prompt_budget,
            },
            &approx_tokens,
        );
        self.observe("context", started);
        let mut messages = assembled.messages;
        if matches!(messages.first(), Some(ChatMessage::System(s)) if s.is_empty()) {
            messages.remove(0);
        }

        // Server-side tools shadow client tools of the same name.
        let mut server_tools = self
            .tools
            .as_ref()
            .map(|e| e.tools_for(&scope.tenant, &persona))
            .unwrap_or_default();
        if self.tools.is_some() {
            server_tools.extend(crate::tools::builtin::tools_for(&persona, &turn.channel));
        }
        let mut tools = persona.allowed_tools(tools);
        tools.retain(|t| !server_tools.iter().any(|s| s.name == t.name));
        tools.extend(server_tools.iter().map(ToolDef::spec));
        // A client's MCP servers need the outbound guard that comes with server-side tools;
        // the persona's list of allowed tools covers theirs as it covers offered ones.
        let client_mcp = match self.tools {
            Some(_) => turn.client_mcp,
            None => ClientTools::default(),
        };
        let offered: Vec<_> = client_mcp
            .defs()
            .filter(|d| !server_tools.iter().any(|s| s.name == d.name))
            .map(ToolDef::spec)
            .collect();
        for t in persona.allowed_tools(offered) {
            tools.retain(|o| o.name != t.name);
            tools.push(t);
        }
        // A forced tool the persona does not allow, or no tools at all: answer in words.
        let tool_choice = match tool_choice {
            _ if tools.is_empty() => ToolChoice::None,
            ToolChoice::Function(name) if !tools.iter().any(|t| t.name == name) => ToolChoice::None,
            choice => choice,
        };
        PreparedTurn {
            persona: persona.name.clone(),
            request: ChatRequest {
                messages,
                tools,
                tool_choice,
                temperature: temperature.or(persona.temperature),
                top_p: top_p.or(persona.top_p),
                max_tokens: max_tokens.or(persona.max_tokens),
                seed,
                model: persona.model.clone().or(model),
                background,
                // Tenants name their sessions themselves: keep them apart.
                conversation: conversation.map(|c| format!("{}/{c}", scope.tenant)),
            },
            context,
            dropped_messages: assembled.dropped_messages,
            scope,
            server_tools,
            decision: turn.decision,
            speculative: turn.speculative,
            client_mcp,
            approved: turn.approved,
            over_budget: admitted.err(),
        }
    }

    /// Stage 4 for a prepared turn: the reply, with the persona's server-side tools run
    /// (and confirmed) inside the stream.
    pub fn respond(&self, turn: PreparedTurn) -> LlmStream {
        if let Some(retry_after) = turn.over_budget {
            return Box::pin(futures_util::stream::once(async move {
                Err(LlmError::TokenBudget { retry_after })
            }));
        }
        let Some(budget) = self.budget.clone() else {
            return self.respond_unmetered(turn);
        };
        let (tenant, prompt) = (
            turn.scope.tenant.clone(),
            estimate_prompt_tokens(&turn.request),
        );
        metered(self.respond_unmetered(turn), budget, tenant, prompt)
    }

    fn respond_unmetered(&self, turn: PreparedTurn) -> LlmStream {
        let runs_tools = !turn.server_tools.is_empty()
            || !turn.client_mcp.is_empty()
            || !turn.approved.is_empty();
        let Some(engine) = self.tools.clone().filter(|_| runs_tools) else {
            return self.generate(turn.request);
        };
        let run = ToolRun {
            llm: Arc::clone(&self.llm),
            engine,
            scope: turn.scope,
            tools: turn.server_tools,
            decision: turn.decision,
            speculative: turn.speculative,
            client_mcp: turn.client_mcp,
            approved: turn.approved,
        };
        self.timed(run.stream(turn.request))
    }

    /// Stage 4: stream the reply. The time to the first event is `generate` in the stage
    /// histogram.
    pub fn generate(&self, request: ChatRequest) -> LlmStream {
        self.timed(self.llm.stream(request))
    }

    fn timed(&self, stream: LlmStream) -> LlmStream {
        let Some(h) = self.stage_seconds.clone() else {
            return stream;
        };
        let started = Instant::now();
        let mut first = true;
        Box::pin(futures_util::StreamExt::inspect(stream, move |_| {
            if std::mem::take(&mut first) {
                h.with_label_values(&["generate"])
                    .observe(started.elapsed().as_secs_f64());
            }
        }))
    }
}
