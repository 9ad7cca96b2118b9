//! A stand-in for Twilio's side of a Media Stream, for tests: it sends `connected`, `start`
//! and the caller's speech as mu-law `media` at real-time pace, and plays what the gateway
//! sends the way Twilio does: reply audio is consumed at 8 kHz, each `mark` is echoed once
//! the audio before it has played, and `clear` drops what has not played (and its marks).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

pub const RATE: u32 = 8_000;
const FRAME: usize = 160;

/// G.711 mu-law encoding of one sample (ITU-T G.711, written here independently of the
/// gateway's codec so the test does not check the gateway against itself).
pub fn mulaw(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32_635;
    let mut s = sample as i32;
    let sign = if s < 0 { 0x80 } else { 0 };
    s = s.abs().min(CLIP) + BIAS;
    let mut exponent = 7;
    let mut mask = 0x4000;
    while exponent > 0 && s & mask == 0 {
        exponent -= 1;
        mask >>= 1;
    }
    let mantissa = (s >> (exponent + 3)) & 0x0F;
    !(sign | (exponent << 4) | mantissa) as u8
}

/// Loud mu-law audio: any byte far from mu-law's silence codes (0xFF / 0x7F).
fn is_loud(mulaw: &[u8]) -> bool {
    mulaw.iter().any(|&b| (b & 0x7F) < 0x50)
}

enum Queued {
    Audio(Vec<u8>),
    Mark(String),
}

/// What the "phone" has seen and played.
#[derive(Debug, Default)]
pub struct PhoneLog {
    pub messages: Vec<(Instant, Value)>,
    /// When each `media` message with loud audio arrived.
    pub loud_received: Vec<Instant>,
    /// Reply audio played, in ms, and when each loud 20 ms frame played.
    pub played_ms: u64,
    pub loud_played: Vec<Instant>,
    pub marks_echoed: Vec<String>,
    pub clears: Vec<Instant>,
}

pub struct PhoneClient {
    out: mpsc::UnboundedSender<Message>,
    pub log: Arc<Mutex<PhoneLog>>,
    stream_sid: String,
}

impl PhoneClient {
    /// Connect to `url` (the gateway's `/telephony/twilio/stream`) and start a stream with
    /// these custom parameters.
    pub async fn connect(url: &str, parameters: Value) -> anyhow::Result<Self> {
        Self::connect_signed(url, parameters, None).await
    }

    /// Connect with an `X-Twilio-Signature` on the upgrade, as Twilio sends it.
    pub async fn connect_signed(
        url: &str,
        parameters: Value,
        signature: Option<&str>,
    ) -> anyhow::Result<Self> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = url.into_client_request()?;
        if let Some(sig) = signature {
            request
                .headers_mut()
                .insert("x-twilio-signature", sig.parse()?);
        }
        let (ws, _) = tokio_tungstenite::connect_async(request).await?;
        let (mut sink, mut stream) = ws.split();
        let (out, mut out_rx) = mpsc::unbounded_channel::<Message>();
        tokio::spawn(async move {
            while let Some(m) = out_rx.recv().await {
                if sink.send(m).await.is_err() {
                    break;
                }
            }
            let _ = sink.close().await;
        });
        let log = Arc::new(Mutex::new(PhoneLog::default()));
        let queue = Arc::new(Mutex::new(VecDeque::<Queued>::new()));
        let stream_sid = "MZ00000000000000000000000000000001".to_owned();
        {
            let (log, queue) = (Arc::clone(&log), Arc::clone(&queue));
            tokio::spawn(async move {
                // Pings (a server's keep-alive) are answered by tungstenite; only text matters.
                while let Some(Ok(m)) = stream.next().await {
                    let t = match m {
                        Message::Text(t) => t,
                        Message::Close(_) => break,
                        _ => continue,
                    };
                    let Ok(v) = serde_json::from_str::<Value>(&t) else {
                        continue;
                    };
                    let mut q = queue.lock().expect("queue");
                    match v["event"].as_str() {
                        Some("media") => {
                            let payload = v["media"]["payload"].as_str().unwrap_or_default();
                            let bytes = base64::engine::general_purpose::STANDARD
                                .decode(payload)
                                .unwrap_or_default();
                            if is_loud(&bytes) {
                                log.lock().expect("log").loud_received.push(Instant::now());
                            }
                            q.push_back(Queued::Audio(bytes));
                        }
                        Some("mark") => {
                            let name = v["mark"]["name"].as_str().unwrap_or_default();
                            q.push_back(Queued::Mark(name.to_owned()));
                        }
                        Some("clear") => {
                            q.clear();
                            log.lock().expect("log").clears.push(Instant::now());
                        }
                        _ => {}
                    }
                    log.lock().expect("log").messages.push((Instant::now(), v));
                }
            });
        }
        {
            // The playout: 20 ms of audio per tick; marks echo as playback passes them.
            let (log, queue, out, sid) = (
                Arc::clone(&log),
                Arc::clone(&queue),
                out.clone(),
                stream_sid.clone(),
            );
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(20));
                let mut pending: Vec<u8> = Vec::new();
                loop {
                    tick.tick().await;
                    let mut q = queue.lock().expect("queue");
                    while pending.len() < FRAME {
                        match q.pop_front() {
                            Some(Queued::Audio(a)) => pending.extend(a),
                            Some(Queued::Mark(name)) if pending.is_empty() => {
                                let echo = json!({"event": "mark", "sequenceNumber": "0",
                                    "streamSid": sid, "mark": {"name": name}});
                                if out.send(Message::Text(echo.to_string().into())).is_err() {
                                    return;
                                }
                                log.lock().expect("log").marks_echoed.push(name);
                            }
                            Some(Queued::Mark(name)) => {
                                q.push_front(Queued::Mark(name));
                                break;
                            }
                            None => break,
                        }
                    }
                    drop(q);
                    if pending.is_empty() {
                        continue;
                    }
                    let n = pending.len().min(FRAME);
                    let frame: Vec<u8> = pending.drain(..n).collect();
                    let loud = is_loud(&frame);
                    let mut l = log.lock().expect("log");
                    l.played_ms += (n as u64) * 1000 / RATE as u64;
                    if loud {
                        l.loud_played.push(Instant::now());
                    }
                }
            });
        }
        let client = Self {
            out,
            log,
            stream_sid,
        };
        client.send(json!({"event": "connected", "protocol": "Call", "version": "1.0.0"}))?;
        client.send(
            json!({"event": "start", "sequenceNumber": "1", "streamSid": client.stream_sid,
            "start": {"accountSid": "AC0", "streamSid": client.stream_sid, "callSid": "CA0",
                "tracks": ["inbound"], "customParameters": parameters,
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}}),
        )?;
        Ok(client)
    }

    pub fn send(&self, v: Value) -> anyhow::Result<()> {
        self.send_raw(v.to_string())
    }

    pub fn send_raw(&self, text: String) -> anyhow::Result<()> {
        self.out
            .send(Message::Text(text.into()))
            .map_err(|_| anyhow::anyhow!("socket closed"))
    }

    /// Speak 8 kHz samples as 20 ms mu-law media messages at real-time pace.
    pub async fn speak(&self, samples: &[i16]) -> anyhow::Result<()> {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        for (i, chunk) in samples.chunks(FRAME).enumerate() {
            let payload: Vec<u8> = chunk.iter().map(|&s| mulaw(s)).collect();
            tick.tick().await;
            self.send(json!({"event": "media", "sequenceNumber": (i + 2).to_string(),
                "streamSid": self.stream_sid, "media": {"track": "inbound", "chunk": (i + 1).to_string(),
                "timestamp": (i * 20).to_string(),
                "payload": base64::engine::general_purpose::STANDARD.encode(payload)}}))?;
        }
        Ok(())
    }

    pub fn dtmf(&self, digit: char) -> anyhow::Result<()> {
        self.send(
            json!({"event": "dtmf", "streamSid": self.stream_sid, "sequenceNumber": "99",
            "dtmf": {"track": "inbound_track", "digit": digit.to_string()}}),
        )
    }

    /// Wait until `f` holds for the log.
    pub async fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        f: impl Fn(&PhoneLog) -> bool,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if f(&self.log.lock().expect("log")) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        anyhow::bail!("timed out waiting for {what}")
    }

    pub fn stop(&self) {
        let _ = self.send(
            json!({"event": "stop", "streamSid": self.stream_sid, "sequenceNumber": "999",
            "stop": {"accountSid": "AC0", "callSid": "CA0"}}),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server's keep-alive ping does not stop the phone from hearing what follows it
    /// (uvicorn, which Pipecat's transport runs on, pings every 20 s).
    #[tokio::test]
    async fn a_ping_does_not_deafen_the_phone() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
            ws.send(Message::Ping(vec![1, 2, 3].into())).await.unwrap();
            let loud = base64::engine::general_purpose::STANDARD.encode([0x10u8; FRAME]);
            let media = json!({"event": "media", "streamSid": "MZ1", "media": {"payload": loud}});
            ws.send(Message::Text(media.to_string().into()))
                .await
                .unwrap();
            // Keep the socket open until the phone hangs up.
            while let Some(Ok(m)) = ws.next().await {
                if m.is_close() {
                    break;
                }
            }
        });
        let phone = PhoneClient::connect(&format!("ws://{addr}"), json!({}))
            .await
            .unwrap();
        phone
            .wait_until("the media after the ping", Duration::from_secs(5), |l| {
                !l.loud_received.is_empty() && !l.loud_played.is_empty()
            })
            .await
            .unwrap();
        phone.stop();
        drop(phone);
        server.abort();
    }
}
