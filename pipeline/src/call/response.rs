//! One response, run as its own task under the response's cancellation token:
//! LLM stream -> reply text (to the actor at once) -> sentence chunks -> streaming TTS ->
//! audio (to the actor, which paces it out). The first chunk is synthesized while the LLM
//! is still generating. Cancelling the token stops the LLM stream, synthesis and the
//! sends together; dropping the streams is what stops the work behind them. When an MCP
//! call starts, the words before it are spoken as they are (not joined to the words after)
//! and `AudioBreak` follows their audio: the reply's next message begins there.

use std::sync::Arc;
use std::time::Instant;

use futures_util::StreamExt;
use switchboard_models::audio::Resampler;
use switchboard_models::tts::text::SpeechChunker;
use switchboard_models::tts::{SpeakOptions, TextToSpeech};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::llm::{ActionNotice, ChatRequest, LlmError, LlmEvent, Usage};
use crate::metrics::CallMetrics;
use crate::orchestrator::{Orchestrator, Speculation, TurnRequest};
use crate::outbound::OutboundClient;
use crate::tools::client_mcp::{ApprovedCall, ClientMcpServer, ClientServer, ClientTools};

/// Spoken when every LLM provider fails, so the caller is not left in silence.
pub const APOLOGY: &str = "Sorry, I can't answer that right now. Please try again in a moment.";

#[derive(Debug)]
pub enum ResponseMsg {
    Text(String),
    /// Reply audio at the session's output rate and the words it speaks.
    Audio {
        samples: Vec<f32>,
        text: String,
    },
    /// The audio of the message before an MCP call has all been sent; the audio after
    /// this is the next message's.
    AudioBreak,
    ToolCallStart {
        index: u32,
        id: String,
        name: String,
    },
    ToolCallArguments {
        index: u32,
        delta: String,
    },
    Usage(Usage),
    /// The orchestrator's metadata for this turn, before any reply text.
    Context(Vec<(String, String)>),
    /// What the server-side tool loop did.
    Action(crate::llm::ActionNotice),
    /// A server the response declared is connected and has listed its tools, or why not
    /// (`response_mcp.rs`).
    McpListed {
        label: String,
        result: Result<Arc<ClientServer>, String>,
    },
    /// The last message of a response.
    Finished {
        error: Option<(&'static str, String)>,
    },
}

/// Messages tagged with the response generation they belong to (stale ones are dropped).
pub type ResponseTx = mpsc::Sender<(u64, ResponseMsg)>;

pub struct ResponseJob {
    pub generation: u64,
    pub request: ChatRequest,
    pub audio: bool,
    pub speed: f32,
    pub output_rate: u32,
    pub orchestrator: Orchestrator,
    pub tenant: String,
    pub channel: &'static str,
    pub persona: Option<String>,
    pub user: Option<String>,
    pub session: String,
    /// An explicit answer to a pending action, for this response to settle.
    pub decision: Option<(String, bool)>,
    /// Pending for a draft (see `draft.rs`): it takes no action before it is taken.
    pub speculative: Speculation,
    /// The client's MCP servers, and the calls to them it approved (`call/mcp.rs`).
    pub client_mcp: ClientTools,
    /// Servers the response declared, to connect before the model is asked.
    pub connect: Option<McpToConnect>,
    pub approved: Vec<ApprovedCall>,
    /// Say [`APOLOGY`] when every provider fails before a word (someone is listening).
    pub apologize: bool,
    pub tts: Arc<dyn TextToSpeech>,
    pub metrics: CallMetrics,
}

/// MCP servers a response declared that are not connected yet, and the outbound guard to
/// connect through (or why there is none).
pub struct McpToConnect {
    pub servers: Vec<ClientMcpServer>,
    pub guard: Result<OutboundClient, &'static str>,
}

impl McpToConnect {
    /// Connect them side by side, telling the actor of each as it is listed; the servers
    /// that could be, or `None` when the response is cancelled.
    async fn run(self, out: &Sender) -> Option<Vec<Arc<ClientServer>>> {
        let guard = &self.guard;
        let each = self.servers.into_iter().map(|d| async move {
            let label = d.label.clone();
            let result = match guard {
                Ok(guard) => ClientServer::connect(d, guard.clone()).await.map(Arc::new),
                Err(why) => Err((*why).to_owned()),
            };
            let listed = ResponseMsg::McpListed {
                label,
                result: result.clone(),
            };
            out.send(listed).await.then_some(result.ok())
        });
        let connected = futures_util::future::join_all(each).await;
        connected
            .into_iter()
            .collect::<Option<Vec<_>>>()
            .map(|servers| servers.into_iter().flatten().collect())
    }
}

struct Sender {
    tx: ResponseTx,
    generation: u64,
    token: CancellationToken,
}

impl Sender {
    /// Send unless cancelled; `false` means stop working.
    async fn send(&self, msg: ResponseMsg) -> bool {
        tokio::select! {
            biased;
            () = self.token.cancelled() => false,
            r = self.tx.send((self.generation, msg)) => r.is_ok(),
        }
    }
}

pub async fn run(job: ResponseJob, token: CancellationToken, tx: ResponseTx) {
    let out = Arc::new(Sender {
        tx,
        generation: job.generation,
        token: token.clone(),
    });
    let (chunk_tx, chunk_rx) = mpsc::channel::<Speak>(16);
    let speaker = job.audio.then(|| {
        tokio::spawn(speak(
            chunk_rx,
            Arc::clone(&job.tts),
            job.speed,
            job.output_rate,
            Arc::clone(&out),
            job.metrics.clone(),
        ))
    });
    let mut chunker = SpeechChunker::for_reply();
    let mut client_mcp = job.client_mcp;
    if let Some(connect) = job.connect {
        let connected = tokio::select! {
            biased;
            () = token.cancelled() => return,
            c = connect.run(&out) => c,
        };
        let Some(connected) = connected else {
            return;
        };
        client_mcp.servers.extend(connected);
    }
    // Persona, context engines (each under its deadline) and prompt, then the LLM.
    let prepared = tokio::select! {
        biased;
        () = token.cancelled() => return,
        p = job.orchestrator.prepare(TurnRequest {
            tenant: job.tenant,
            channel: job.channel.to_owned(),
            persona: job.persona,
            user: job.user,
            session: Some(job.session),
            request: job.request,
            decision: job.decision,
            speculative: job.speculative,
            client_mcp,
            approved: job.approved,
        }) => p,
    };
    if !out.send(ResponseMsg::Context(prepared.metadata())).await {
        return;
    }
    let mut stream = job.orchestrator.respond(prepared);
    let asked = Instant::now();
    let mut first_token = true;
    let mut said_anything = false;
    let mut error = None;
    loop {
        let next = tokio::select! {
            biased;
            () = token.cancelled() => return,
            next = stream.next() => next,
        };
        let msg = match next {
            None => break,
            Some(Err(e)) => {
                error = Some(e);
                break;
            }
            Some(Ok(LlmEvent::Text(text))) => {
                if first_token {
                    first_token = false;
                    job.metrics
                        .llm_first_token_seconds
                        .observe(asked.elapsed().as_secs_f64());
                }
                said_anything = true;
                for chunk in chunker.push(&text) {
                    let _ = chunk_tx.send(Speak::Words(chunk)).await;
                }
                ResponseMsg::Text(text)
            }
            Some(Ok(LlmEvent::ToolCallStart { index, id, name })) => {
                if first_token {
                    first_token = false;
                    job.metrics
                        .llm_first_token_seconds
                        .observe(asked.elapsed().as_secs_f64());
                }
                ResponseMsg::ToolCallStart { index, id, name }
            }
            Some(Ok(LlmEvent::ToolCallArguments { index, delta })) => {
                ResponseMsg::ToolCallArguments { index, delta }
            }
            Some(Ok(LlmEvent::Usage(u))) => ResponseMsg::Usage(u),
            Some(Ok(LlmEvent::Action(n))) => {
                if matches!(n, ActionNotice::McpCallStarted(_)) {
                    // What was said before the call is one message, spoken now.
                    if let Some(rest) = chunker.finish() {
                        let _ = chunk_tx.send(Speak::Words(rest)).await;
                    }
                    let _ = chunk_tx.send(Speak::Break).await;
                }
                ResponseMsg::Action(n)
            }
        };
        if !out.send(msg).await {
            return;
        }
    }
    drop(stream);
    let mut finish_error = None;
    if let Some(e) = error {
        tracing::warn!(error = %e, "response failed");
        job.metrics
            .errors_total
            .with_label_values(&[e.kind()])
            .inc();
        let code = match e {
            LlmError::TokenBudget { .. } => "rate_limit_exceeded",
            _ => "llm_failed",
        };
        finish_error = Some((code, e.to_string()));
        if !said_anything && job.apologize {
            // Nothing was said: apologise instead of leaving the caller in silence.
            if !out.send(ResponseMsg::Text(APOLOGY.into())).await {
                return;
            }
            for chunk in chunker.push(APOLOGY) {
                let _ = chunk_tx.send(Speak::Words(chunk)).await;
            }
        }
    }
    if let Some(rest) = chunker.finish() {
        let _ = chunk_tx.send(Speak::Words(rest)).await;
    }
    drop(chunk_tx);
    if let Some(speaker) = speaker {
        let spoke = tokio::select! {
            biased;
            () = token.cancelled() => return,
            r = speaker => r.unwrap_or(Err(("tts_failed", "speech task stopped".into()))),
        };
        if let Err(e) = spoke {
            finish_error.get_or_insert(e);
        }
    }
    out.send(ResponseMsg::Finished {
        error: finish_error,
    })
    .await;
}

/// What the speech task is given, in order.
enum Speak {
    Words(String),
    /// The message being spoken ends here (an MCP call starts).
    Break,
}

/// Synthesize chunks in order and send their audio, resampled to the output rate.
async fn speak(
    mut chunks: mpsc::Receiver<Speak>,
    tts: Arc<dyn TextToSpeech>,
    speed: f32,
    output_rate: u32,
    out: Arc<Sender>,
    metrics: CallMetrics,
) -> Result<(), (&'static str, String)> {
    let mut resampler = Resampler::new(tts.sample_rate(), output_rate)
        .map_err(|e| ("tts_failed", e.to_string()))?;
    while let Some(next) = chunks.recv().await {
        let chunk = match next {
            Speak::Words(chunk) => chunk,
            Speak::Break => {
                // The message's last audio (the resampler's delay) goes with it.
                let tail = resampler
                    .flush()
                    .map_err(|e| ("tts_failed", e.to_string()))?;
                resampler = Resampler::new(tts.sample_rate(), output_rate)
                    .map_err(|e| ("tts_failed", e.to_string()))?;
                let sent = (tail.is_empty()
                    || out
                        .send(ResponseMsg::Audio {
                            samples: tail,
                            text: String::new(),
                        })
                        .await)
                    && out.send(ResponseMsg::AudioBreak).await;
                if !sent {
                    return Ok(());
                }
                continue;
            }
        };
        let asked = Instant::now();
        let mut stream = tts.synthesize(&chunk, SpeakOptions::at_speed(speed));
        let mut first = true;
        loop {
            let next = tokio::select! {
                biased;
                () = out.token.cancelled() => return Ok(()),
                next = stream.next() => next,
            };
            let audio = match next {
                None => break,
                Some(Err(e)) => {
                    metrics
                        .errors_total
                        .with_label_values(&["tts_failed"])
                        .inc();
                    return Err(("tts_failed", e.to_string()));
                }
                Some(Ok(audio)) => audio,
            };
            if first {
                first = false;
                metrics
                    .tts_first_audio_seconds
                    .observe(asked.elapsed().as_secs_f64());
            }
            let samples = resampler
                .push(&audio.samples)
                .map_err(|e| ("tts_failed", e.to_string()))?;
            if !out
                .send(ResponseMsg::Audio {
                    samples,
                    text: audio.text,
                })
                .await
            {
                return Ok(());
            }
        }
    }
    let tail = resampler
        .flush()
        .map_err(|e| ("tts_failed", e.to_string()))?;
    if !tail.is_empty() {
        // The resampler's delay: the end of the last chunk, with no words of its own.
        out.send(ResponseMsg::Audio {
            samples: tail,
            text: String::new(),
        })
        .await;
    }
    Ok(())
}
