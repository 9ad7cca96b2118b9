//! A small Realtime WebSocket client for tests and benchmarks (tokio-tungstenite).

use std::time::Duration;

use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long [`RealtimeClient::respond`] waits for a response's end.
const RESPONSE_WAIT: Duration = Duration::from_secs(30);

/// One received server event and when it arrived.
#[derive(Debug, Clone)]
pub struct Received {
    pub at: Instant,
    pub event: Value,
}

impl Received {
    pub fn kind(&self) -> &str {
        self.event["type"].as_str().unwrap_or_default()
    }
}

pub struct RealtimeClient {
    ws: Ws,
    /// Every event received so far, in order.
    pub log: Vec<Received>,
    /// `wait_for` looks at events from here on (earlier ones were waited for or skipped).
    cursor: usize,
}

pub fn b64(samples: &[i16]) -> String {
    let bytes: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

impl RealtimeClient {
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        Self::connect_with_key(url, None).await
    }

    /// Connect presenting `key` as `Authorization: Bearer` (none: anonymous).
    pub async fn connect_with_key(url: &str, key: Option<&str>) -> anyhow::Result<Self> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = url.into_client_request()?;
        if let Some(key) = key {
            request
                .headers_mut()
                .insert("authorization", format!("Bearer {key}").parse()?);
        }
        let (ws, _) = tokio_tungstenite::connect_async(request).await?;
        let mut c = Self {
            ws,
            log: Vec::new(),
            cursor: 0,
        };
        c.wait_for("session.created", Duration::from_secs(5))
            .await?;
        Ok(c)
    }

    pub async fn send(&mut self, event: Value) -> anyhow::Result<()> {
        self.ws
            .send(Message::Text(event.to_string().into()))
            .await?;
        Ok(())
    }

    pub async fn send_raw(&mut self, msg: Message) -> anyhow::Result<()> {
        self.ws.send(msg).await?;
        Ok(())
    }

    /// The next event, or `None` on timeout or close.
    pub async fn next(&mut self, timeout: Duration) -> Option<Received> {
        loop {
            let msg = tokio::time::timeout(timeout, self.ws.next())
                .await
                .ok()??
                .ok()?;
            if let Message::Text(t) = msg {
                let r = Received {
                    at: Instant::now(),
                    event: serde_json::from_str(&t).ok()?,
                };
                self.log.push(r.clone());
                return Some(r);
            }
        }
    }

    /// From now on, `wait_for` ignores the events already received.
    pub fn skip_seen(&mut self) {
        self.cursor = self.log.len();
    }

    /// The first event of `kind` not yet waited for: one already received (while streaming
    /// audio, say), else the next to arrive.
    pub async fn wait_for(&mut self, kind: &str, timeout: Duration) -> anyhow::Result<Received> {
        self.wait_where(kind, |_| true, timeout).await
    }

    /// The first event of `kind` not yet waited for that `matches` (the `response.done` of
    /// one response among several); waiting moves past the events before it.
    pub async fn wait_where(
        &mut self,
        kind: &str,
        matches: impl Fn(&Value) -> bool,
        timeout: Duration,
    ) -> anyhow::Result<Received> {
        let fits = |r: &Received| r.kind() == kind && matches(&r.event);
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(i) = self.log[self.cursor..].iter().position(fits) {
                self.cursor += i + 1;
                return Ok(self.log[self.cursor - 1].clone());
            }
            self.skip_seen();
            let left = deadline.saturating_duration_since(Instant::now());
            if self.next(left).await.is_none() {
                anyhow::bail!(
                    "no such {kind} within {timeout:?}; got {:?}; errors: {}",
                    self.kinds(),
                    self.errors()
                );
            }
        }
    }

    /// Stream 16-bit audio in 20 ms appends at real-time pace, reading events meanwhile.
    pub async fn stream_audio(&mut self, samples: &[i16], rate: u32) -> anyhow::Result<()> {
        let frame = (rate / 50) as usize;
        let frames: Vec<Vec<u8>> = samples
            .chunks(frame)
            .map(|c| c.iter().flat_map(|s| s.to_le_bytes()).collect())
            .collect();
        self.stream_encoded(&frames).await
    }

    /// Stream already-encoded 20 ms frames at real-time pace, reading events meanwhile.
    pub async fn stream_encoded(&mut self, frames: &[Vec<u8>]) -> anyhow::Result<()> {
        let start = Instant::now();
        for (i, chunk) in frames.iter().enumerate() {
            let audio = base64::engine::general_purpose::STANDARD.encode(chunk);
            self.send(json!({"type": "input_audio_buffer.append", "audio": audio}))
                .await?;
            let due = start + Duration::from_millis(20 * (i as u64 + 1));
            // Read whatever arrives until this frame's slot is over.
            while Instant::now() < due {
                let left = due.saturating_duration_since(Instant::now());
                if self.next(left).await.is_none() {
                    break;
                }
            }
        }
        Ok(())
    }

    /// Say `text` as the user (a text message) and ask for a response; every event from
    /// there to the response's end.
    pub async fn ask(&mut self, text: &str) -> anyhow::Result<Vec<Received>> {
        self.ask_with(text, json!({})).await
    }

    /// [`Self::ask`] with `response` as the `response.create`'s options.
    pub async fn ask_with(&mut self, text: &str, response: Value) -> anyhow::Result<Vec<Received>> {
        self.skip_seen();
        let from = self.log.len();
        self.say(text).await?;
        self.respond_with(from, response).await
    }

    /// Add `text` as the user's message, asking for nothing.
    pub async fn say(&mut self, text: &str) -> anyhow::Result<()> {
        self.send(
            json!({"type": "conversation.item.create", "item": {"type": "message",
            "role": "user", "content": [{"type": "input_text", "text": text}]}}),
        )
        .await
    }

    /// Ask for a response; every event from `from` (an index into the log) to its end.
    pub async fn respond(&mut self, from: usize) -> anyhow::Result<Vec<Received>> {
        self.respond_with(from, json!({})).await
    }

    /// [`Self::respond`] with `response` as the `response.create`'s options.
    pub async fn respond_with(
        &mut self,
        from: usize,
        response: Value,
    ) -> anyhow::Result<Vec<Received>> {
        self.send(json!({"type": "response.create", "response": response}))
            .await?;
        self.wait_for("response.done", RESPONSE_WAIT).await?;
        Ok(self.log[from..].to_vec())
    }

    pub fn kinds(&self) -> Vec<String> {
        self.log.iter().map(|r| r.kind().to_owned()).collect()
    }

    /// The `error` events received so far, as JSON (what a failed wait reports).
    pub fn errors(&self) -> String {
        let errors: Vec<&Value> = self
            .of_kind("error")
            .into_iter()
            .map(|r| &r.event["error"])
            .collect();
        serde_json::to_string(&errors).unwrap_or_default()
    }

    /// What the `delta`s of response `response_id`'s events of `kind` spell, in order (its
    /// text, or its audio's transcript).
    pub fn response_deltas(&self, kind: &str, response_id: &str) -> String {
        self.of_kind(kind)
            .iter()
            .filter(|r| r.event["response_id"] == response_id)
            .map(|r| r.event["delta"].as_str().expect("a delta is a string"))
            .collect()
    }

    pub fn of_kind(&self, kind: &str) -> Vec<&Received> {
        self.log.iter().filter(|r| r.kind() == kind).collect()
    }

    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

/// The output items of the last response among `events` (its `response.done`), in order.
pub fn output_items(events: &[Received]) -> Vec<&Value> {
    let done = events.iter().rev().find(|e| e.kind() == "response.done");
    done.and_then(|d| d.event["response"]["output"].as_array())
        .into_iter()
        .flatten()
        .collect()
}

/// Those of `kind`.
pub fn outputs_of<'a>(events: &'a [Received], kind: &str) -> Vec<&'a Value> {
    output_items(events)
        .into_iter()
        .filter(|i| i["type"] == kind)
        .collect()
}

/// The text the response's messages said (text sessions).
pub fn said(events: &[Received]) -> String {
    outputs_of(events, "message")
        .iter()
        .filter_map(|m| m["content"][0]["text"].as_str())
        .collect()
}
