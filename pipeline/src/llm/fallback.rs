//! An ordered list of providers used as one: for each request the first provider is tried;
//! one that errors, sends nothing within the first-token timeout, or drops mid-stream is
//! replaced by the next for the rest of that request. The switch is logged and counted.
//!
//! After a mid-stream drop the next provider is asked again with the text already streamed
//! as a trailing assistant message, so it continues the reply instead of starting over.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use prometheus::IntCounterVec;
use tokio::sync::mpsc;

use super::{ChatMessage, ChatRequest, LlmError, LlmEvent, LlmProvider, LlmStream};

pub struct FallbackChain {
    providers: Vec<Arc<dyn LlmProvider>>,
    first_token_timeout: Duration,
    /// `switchboard_llm_fallbacks_total{provider, reason}`.
    switches: Option<IntCounterVec>,
    name: String,
}

impl std::fmt::Debug for FallbackChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FallbackChain")
            .field("name", &self.name)
            .finish()
    }
}

impl FallbackChain {
    pub fn new(providers: Vec<Arc<dyn LlmProvider>>, first_token_timeout: Duration) -> Self {
        let name = providers
            .iter()
            .map(|p| p.name())
            .collect::<Vec<_>>()
            .join(" > ");
        Self {
            providers,
            first_token_timeout,
            switches: None,
            name,
        }
    }

    /// Count switches in `counter` (labels: the provider given up on, and why).
    pub fn with_switch_counter(mut self, counter: IntCounterVec) -> Self {
        self.switches = Some(counter);
        self
    }
}

impl LlmProvider for FallbackChain {
    fn name(&self) -> &str {
        &self.name
    }

    fn stream(&self, request: ChatRequest) -> LlmStream {
        let (tx, rx) = mpsc::channel(32);
        let providers = self.providers.clone();
        let timeout = self.first_token_timeout;
        let switches = self.switches.clone();
        tokio::spawn(run_chain(providers, request, timeout, switches, tx));
        Box::pin(futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        }))
    }
}

type Tx = mpsc::Sender<Result<LlmEvent, LlmError>>;

async fn run_chain(
    providers: Vec<Arc<dyn LlmProvider>>,
    request: ChatRequest,
    timeout: Duration,
    switches: Option<IntCounterVec>,
    tx: Tx,
) {
    let mut streamed_text = String::new();
    let mut last_error = LlmError::Provider {
        provider: "none".into(),
        message: "no LLM provider configured".into(),
    };
    for provider in &providers {
        let mut req = request.clone();
        if !streamed_text.is_empty() {
            req.messages.push(ChatMessage::Assistant {
                content: streamed_text.clone(),
                tool_calls: Vec::new(),
            });
        }
        match run_one(provider.as_ref(), req, timeout, &tx, &mut streamed_text).await {
            Attempt::Finished | Attempt::ConsumerGone => return,
            Attempt::Failed(err) => {
                tracing::warn!(provider = provider.name(), error = %err, "LLM provider failed; trying the next");
                if let Some(c) = &switches {
                    c.with_label_values(&[provider.name(), err.kind()]).inc();
                }
                last_error = err;
            }
        }
    }
    let _ = tx
        .send(Err(LlmError::AllFailed(Box::new(last_error))))
        .await;
}

enum Attempt {
    Finished,
    ConsumerGone,
    Failed(LlmError),
}

async fn run_one(
    provider: &dyn LlmProvider,
    request: ChatRequest,
    timeout: Duration,
    tx: &Tx,
    streamed_text: &mut String,
) -> Attempt {
    let mut stream = provider.stream(request);
    let deadline = tokio::time::Instant::now() + timeout;
    let mut started = false;
    loop {
        let next = if started {
            stream.next().await
        } else {
            tokio::select! {
                next = stream.next() => next,
                () = tokio::time::sleep_until(deadline) => {
                    return Attempt::Failed(LlmError::FirstTokenTimeout {
                        provider: provider.name().to_owned(),
                        timeout_ms: timeout.as_millis() as u64,
                    });
                }
                () = tx.closed() => return Attempt::ConsumerGone,
            }
        };
        let event = match next {
            None => return Attempt::Finished,
            Some(Err(e)) => return Attempt::Failed(e),
            Some(Ok(event)) => event,
        };
        match &event {
            LlmEvent::Text(t) => {
                started = true;
                streamed_text.push_str(t);
            }
            LlmEvent::ToolCallStart { .. } | LlmEvent::ToolCallArguments { .. } => started = true,
            LlmEvent::Usage(_) | LlmEvent::Action(_) => {}
        }
        if tx.send(Ok(event)).await.is_err() {
            return Attempt::ConsumerGone;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A provider that replays a script: events with delays, then an optional error or a stall.
    #[derive(Default)]
    struct Scripted {
        name: String,
        steps: Vec<(u64, Result<LlmEvent, LlmError>)>,
        stall_after: bool,
        seen: std::sync::Mutex<Vec<ChatRequest>>,
    }

    impl LlmProvider for Scripted {
        fn name(&self) -> &str {
            &self.name
        }
        fn stream(&self, req: ChatRequest) -> LlmStream {
            self.seen.lock().unwrap().push(req);
            let steps = self.steps.clone();
            let stall = self.stall_after;
            Box::pin(
                futures_util::stream::iter(steps)
                    .then(|(ms, item)| async move {
                        tokio::time::sleep(Duration::from_millis(ms)).await;
                        item
                    })
                    .chain(futures_util::stream::once(async move {
                        if stall {
                            std::future::pending::<()>().await;
                        }
                        Err(LlmError::Provider { provider: "end".into(), message: "end".into() })
                    }))
                    .take_while(|item| {
                        let keep = !matches!(item, Err(LlmError::Provider { provider, .. }) if provider == "end");
                        async move { keep }
                    }),
            )
        }
    }

    fn text(s: &str) -> Result<LlmEvent, LlmError> {
        Ok(LlmEvent::Text(s.into()))
    }

    fn failing(name: &str) -> Arc<dyn LlmProvider> {
        Arc::new(Scripted {
            name: name.into(),
            steps: vec![(
                10,
                Err(LlmError::Provider {
                    provider: name.into(),
                    message: "500".into(),
                }),
            )],
            ..Scripted::default()
        })
    }

    async fn collect(chain: &FallbackChain) -> Vec<Result<LlmEvent, LlmError>> {
        chain.stream(ChatRequest::default()).collect().await
    }

    #[tokio::test(start_paused = true)]
    async fn error_then_stall_then_success() {
        let stalling: Arc<dyn LlmProvider> = Arc::new(Scripted {
            name: "slow".into(),
            stall_after: true,
            ..Scripted::default()
        });
        let good: Arc<dyn LlmProvider> = Arc::new(Scripted {
            name: "good".into(),
            steps: vec![(50, text("Hello")), (50, text(" there."))],
            ..Scripted::default()
        });
        let counter =
            IntCounterVec::new(prometheus::Opts::new("f", "f"), &["provider", "reason"]).unwrap();
        let chain =
            FallbackChain::new(vec![failing("bad"), stalling, good], Duration::from_secs(3))
                .with_switch_counter(counter.clone());
        let started = tokio::time::Instant::now();
        let out = collect(&chain).await;
        let events: Vec<LlmEvent> = out.into_iter().map(|r| r.unwrap()).collect();
        assert_eq!(
            events,
            vec![
                LlmEvent::Text("Hello".into()),
                LlmEvent::Text(" there.".into())
            ]
        );
        // 10 ms error + 3 s timeout + 100 ms of good tokens: nothing waits longer than the timeout.
        assert_eq!(started.elapsed(), Duration::from_millis(3_110));
        assert_eq!(
            counter.with_label_values(&["bad", "provider_error"]).get(),
            1
        );
        assert_eq!(
            counter
                .with_label_values(&["slow", "first_token_timeout"])
                .get(),
            1
        );
    }

    #[tokio::test(start_paused = true)]
    async fn all_failing_ends_in_one_error() {
        let chain = FallbackChain::new(vec![failing("a"), failing("b")], Duration::from_secs(3));
        let out = collect(&chain).await;
        assert_eq!(out.len(), 1);
        assert!(matches!(&out[0], Err(LlmError::AllFailed(_))));
    }

    #[tokio::test(start_paused = true)]
    async fn a_drop_mid_stream_continues_on_the_next_provider() {
        let dropping = Arc::new(Scripted {
            name: "drops".into(),
            steps: vec![
                (10, text("The answer")),
                (
                    10,
                    Err(LlmError::Provider {
                        provider: "drops".into(),
                        message: "reset".into(),
                    }),
                ),
            ],
            ..Scripted::default()
        });
        let next = Arc::new(Scripted {
            name: "next".into(),
            steps: vec![(10, text(" is 42."))],
            ..Scripted::default()
        });
        let chain =
            FallbackChain::new(vec![dropping.clone(), next.clone()], Duration::from_secs(3));
        let request = ChatRequest {
            messages: vec![ChatMessage::User("q".into())],
            ..ChatRequest::default()
        };
        let out: Vec<LlmEvent> = chain.stream(request).map(|r| r.unwrap()).collect().await;
        assert_eq!(
            out,
            vec![
                LlmEvent::Text("The answer".into()),
                LlmEvent::Text(" is 42.".into())
            ]
        );
        // The next provider was asked to continue what the caller already heard.
        let seen = next.seen.lock().unwrap();
        assert_eq!(
            seen[0].messages.last(),
            Some(&ChatMessage::Assistant {
                content: "The answer".into(),
                tool_calls: vec![]
            })
        );
    }
}
