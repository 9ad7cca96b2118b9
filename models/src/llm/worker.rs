//! The worker thread that owns the model and its KV caches (a few live sequences and one for
//! background work; one generation runs at a time) and the request queue in front of it.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc as std_mpsc;

use candle_core::quantized::gguf_file;
use tokenizers::Tokenizer;
use tokio::sync::mpsc;

use super::llama::{KvCache, Llama};
use super::sampler::Sampler;
use super::sequences::Sequences;
use super::{
    ChatRole, GenerateRequest, LlmError, LlmToken, LocalLlmConfig, TokenStream, tokenizer,
};

/// Recent tokens the repeat penalty looks at.
const REPEAT_WINDOW: usize = 64;

struct Work {
    request: GenerateRequest,
    tx: mpsc::Sender<Result<LlmToken, LlmError>>,
}

/// Handle to the embedded model's worker.
pub struct LocalLlm {
    queue: std_mpsc::SyncSender<Work>,
    queued: Arc<AtomicUsize>,
    /// Live (not background) requests waiting: background work gives way while any are.
    live_waiting: Arc<AtomicUsize>,
    capacity: usize,
    name: String,
}

impl std::fmt::Debug for LocalLlm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalLlm")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

struct Model {
    llama: Llama,
    /// The live conversations' sequences.
    live: Sequences,
    /// Background work's own sequence (made on first use), so it never evicts `live`.
    background: Option<KvCache>,
    tokenizer: Tokenizer,
    im_start: u32,
    im_end: u32,
    context: usize,
}

impl LocalLlm {
    /// Load the model (blocking, ~1 s) and start its worker.
    pub fn load(cfg: LocalLlmConfig) -> Result<Self, LlmError> {
        let model = Model::load(&cfg)?;
        let name = cfg
            .model
            .file_stem()
            .map_or_else(|| "embedded".into(), |s| s.to_string_lossy().into_owned());
        let (queue, rx) = std_mpsc::sync_channel::<Work>(cfg.queue);
        let queued = Arc::new(AtomicUsize::new(0));
        let live_waiting = Arc::new(AtomicUsize::new(0));
        let (counter, live) = (Arc::clone(&queued), Arc::clone(&live_waiting));
        std::thread::Builder::new()
            .name("llm-worker".into())
            .spawn(move || {
                let mut model = model;
                // Its threads: this one, a rayon pool of its own (prompts) and candle's pool
                // (Q8_0 products), all below the speech engines.
                lower_priority();
                lower_candle_pool_priority();
                let pool = rayon::ThreadPoolBuilder::new()
                    .thread_name(|i| format!("llm-{i}"))
                    .start_handler(|_| lower_priority())
                    .build();
                while let Ok(work) = rx.recv() {
                    counter.fetch_sub(1, Ordering::Relaxed);
                    if !work.request.background {
                        live.fetch_sub(1, Ordering::Relaxed);
                    }
                    if work.tx.is_closed() {
                        continue; // nobody waits for it any more
                    }
                    let mut generate = || model.generate(&work.request, &work.tx, &live);
                    let result = match &pool {
                        Ok(pool) => pool.install(generate),
                        Err(_) => generate(),
                    };
                    if let Err(e) = result {
                        let _ = work.tx.blocking_send(Err(e));
                    }
                }
            })
            .map_err(|e| LlmError::Model(format!("cannot start the LLM worker: {e}")))?;
        Ok(Self {
            queue,
            queued,
            live_waiting,
            capacity: cfg.queue,
            name,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Queue a generation. Refused at once (`Overloaded`) when the queue is full.
    pub fn generate(&self, request: GenerateRequest) -> TokenStream {
        let (tx, rx) = mpsc::channel(64);
        let live = !request.background;
        self.queued.fetch_add(1, Ordering::Relaxed);
        if live {
            self.live_waiting.fetch_add(1, Ordering::Relaxed);
        }
        let Err(refused) = self.queue.try_send(Work { request, tx }) else {
            return TokenStream { rx };
        };
        self.queued.fetch_sub(1, Ordering::Relaxed);
        if live {
            self.live_waiting.fetch_sub(1, Ordering::Relaxed);
        }
        TokenStream::failed(match refused {
            std_mpsc::TrySendError::Full(_) => LlmError::Overloaded(self.capacity),
            std_mpsc::TrySendError::Disconnected(_) => LlmError::WorkerGone,
        })
    }
}

/// How far below other threads the LLM's run (`nice`). On a small machine, decoding a reply
/// would otherwise take the cores from the speech of that reply's first sentence, and from
/// other callers' transcriptions.
const NICENESS: i32 = 10;

/// Lower the calling thread's scheduling priority (Linux: per thread; threads it starts
/// inherit it).
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: a plain system call for this thread's own id.
    lower_thread_priority(unsafe { libc::syscall(libc::SYS_gettid) } as libc::id_t);
}

/// Lower one of this process's threads to [`NICENESS`].
#[cfg(target_os = "linux")]
fn lower_thread_priority(tid: libc::id_t) {
    // SAFETY: a plain system call on one of this process's own threads.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, tid, NICENESS);
    }
}

/// candle's pool is one per process, made by the first thread that needs it, and its threads
/// keep that thread's priority: the loader's (loading the weights may run candle ops) or the
/// embedder's, loaded before the LLM. Make it if nobody has, then lower its threads by name.
fn lower_candle_pool_priority() {
    let _ = candle_core::utils::barrier_pool();
    #[cfg(target_os = "linux")]
    for task in std::fs::read_dir("/proc/self/task").into_iter().flatten() {
        let Ok(task) = task else { continue };
        let name = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        let tid = task
            .file_name()
            .to_str()
            .and_then(|t| t.parse::<libc::id_t>().ok());
        if let (true, Some(tid)) = (name.starts_with("candle-bp-"), tid) {
            lower_thread_priority(tid);
        }
    }
}

fn fail(e: impl std::fmt::Display) -> LlmError {
    LlmError::Inference(e.to_string())
}

impl Model {
    fn load(cfg: &LocalLlmConfig) -> Result<Self, LlmError> {
        let model_err =
            |e: &dyn std::fmt::Display| LlmError::Model(format!("{}: {e}", cfg.model.display()));
        let mut file = std::fs::File::open(&cfg.model).map_err(|e| model_err(&e))?;
        let content = gguf_file::Content::read(&mut file).map_err(|e| model_err(&e))?;
        let (tokenizer, special) = tokenizer::from_gguf(&content)?;
        let id = |t: &str, special: &HashMap<String, u32>| {
            special
                .get(t)
                .copied()
                .ok_or_else(|| LlmError::Model(format!("no {t} token: not a ChatML model")))
        };
        let im_start = id("<|im_start|>", &special)?;
        let im_end = id("<|im_end|>", &special)?;
        let llama = Llama::load(&content, &mut file, cfg.context_tokens)?;
        Ok(Self {
            live: Sequences::new(cfg.sequences),
            background: None,
            llama,
            tokenizer,
            im_start,
            im_end,
            context: cfg.context_tokens,
        })
    }

    fn encode(&self, text: &str) -> Result<Vec<u32>, LlmError> {
        Ok(self
            .tokenizer
            .encode(text, false)
            .map_err(fail)?
            .get_ids()
            .to_vec())
    }

    /// ChatML tokens for `messages`, dropping the oldest non-system turns until the prompt
    /// leaves room for `reply` tokens.
    fn prompt(&self, messages: &[(ChatRole, String)], reply: usize) -> Result<Vec<u32>, LlmError> {
        let turn = |role: ChatRole, text: &str| -> Result<Vec<u32>, LlmError> {
            let role = match role {
                ChatRole::System => "system",
                ChatRole::User => "user",
                ChatRole::Assistant => "assistant",
            };
            let mut ids = vec![self.im_start];
            ids.extend(self.encode(&format!("{role}\n{text}"))?);
            ids.push(self.im_end);
            ids.extend(self.encode("\n")?);
            Ok(ids)
        };
        let mut turns = messages
            .iter()
            .map(|(r, t)| Ok((*r, turn(*r, t)?)))
            .collect::<Result<Vec<_>, LlmError>>()?;
        let mut tail = vec![self.im_start];
        tail.extend(self.encode("assistant\n")?);
        let budget = self.context.saturating_sub(reply.min(self.context / 2));
        let total = |turns: &[(ChatRole, Vec<u32>)]| {
            turns.iter().map(|(_, t)| t.len()).sum::<usize>() + tail.len()
        };
        while total(&turns) > budget {
            // Oldest first, but keep the system prompt and the last turn.
            match turns.iter().position(|(r, _)| *r != ChatRole::System) {
                Some(i) if turns.len() - i > 1 => {
                    turns.remove(i);
                }
                _ => break,
            }
        }
        let mut ids: Vec<u32> = turns.into_iter().flat_map(|(_, t)| t).collect();
        ids.extend(tail);
        if ids.len() > budget {
            // One turn alone is too long: keep its end.
            ids.drain(..ids.len() - budget);
        }
        Ok(ids)
    }

    fn generate(
        &mut self,
        req: &GenerateRequest,
        tx: &mpsc::Sender<Result<LlmToken, LlmError>>,
        live_waiting: &AtomicUsize,
    ) -> Result<(), LlmError> {
        let gives_way = || req.background && live_waiting.load(Ordering::Relaxed) > 0;
        if gives_way() {
            return Err(LlmError::Preempted);
        }
        let prompt = self.prompt(&req.messages, req.max_tokens)?;
        let max_new = req.max_tokens.min(self.context - prompt.len());
        let mut sampler = Sampler::new(req.seed, req.temperature, req.top_p, req.repeat_penalty);
        let cache = match req.background {
            false => self
                .live
                .take(&self.llama, &prompt, req.conversation.as_deref()),
            true => match &mut self.background {
                Some(c) => c,
                slot => slot.insert(self.llama.new_cache()),
            },
        };
        let (mut logits, cached_tokens) = self.llama.prompt(cache, &prompt)?;
        let mut generated: Vec<u32> = Vec::new();
        let mut emitted = String::new();
        let mut context: Vec<u32> = prompt.clone();
        for _ in 0..max_new {
            let start = context.len().saturating_sub(REPEAT_WINDOW);
            let next = sampler.sample(logits, &context[start..]);
            if next == self.im_end {
                break;
            }
            generated.push(next);
            context.push(next);
            let text = self.tokenizer.decode(&generated, true).map_err(fail)?;
            // Hold back an incomplete UTF-8 sequence until its next token completes it.
            if !text.ends_with('\u{FFFD}')
                && text.len() > emitted.len()
                && text.starts_with(&emitted)
            {
                let delta = text[emitted.len()..].to_owned();
                emitted = text;
                if tx.blocking_send(Ok(LlmToken::Text(delta))).is_err() {
                    return Ok(()); // the stream was dropped: stop within one token
                }
            }
            if tx.is_closed() {
                return Ok(());
            }
            if gives_way() {
                return Err(LlmError::Preempted);
            }
            if generated.len() == max_new {
                break; // the last token allowed: nothing will read the logits after it
            }
            logits = self.llama.step(cache, next)?;
        }
        let _ = tx.blocking_send(Ok(LlmToken::Done {
            prompt_tokens: prompt.len(),
            cached_tokens,
            output_tokens: generated.len(),
        }));
        Ok(())
    }
}
