//! A WebRTC caller for tests, written against the `webrtc` crate directly (not the
//! gateway's own peer code): it offers Opus audio and an `oai-events` data channel, speaks
//! Opus at real-time pace, records and decodes the reply audio, and collects the events.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::media_engine::MIME_TYPE_OPUS;
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters,
    RtpCodecKind,
};
use serde_json::Value;
use tokio::sync::mpsc;
use webrtc::data_channel::{DataChannel, DataChannelEvent};
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCIceGatheringState, RTCPeerConnectionState, RTCSessionDescription, Registry,
    SettingEngineBuilder, register_default_interceptors,
};

pub const RATE: u32 = 48_000;
const FRAME: usize = 960;

/// Reply audio as it arrived: decoded samples and when each packet came.
#[derive(Debug, Default)]
pub struct Received {
    pub samples: Vec<f32>,
    /// When each packet louder than near-silence arrived.
    pub loud: Vec<Instant>,
    /// When each packet arrived.
    pub packets: Vec<Instant>,
    pub last_packet: Option<Instant>,
}

struct Handler {
    gathered: mpsc::UnboundedSender<()>,
    connected: mpsc::UnboundedSender<RTCPeerConnectionState>,
    audio: Arc<Mutex<Received>>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            let _ = self.gathered.send(());
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        let _ = self.connected.send(state);
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let audio = Arc::clone(&self.audio);
        tokio::spawn(async move {
            let mut decoder = opus::Decoder::new(RATE, opus::Channels::Mono).expect("opus decoder");
            let mut out = vec![0f32; 5_760];
            while let Some(ev) = track.poll().await {
                let TrackRemoteEvent::OnRtpPacket(p) = ev else {
                    continue;
                };
                let Ok(n) = decoder.decode_float(&p.payload, &mut out, false) else {
                    continue;
                };
                let peak = out[..n].iter().fold(0f32, |m, x| m.max(x.abs()));
                let mut a = audio.lock().expect("audio lock");
                let now = Instant::now();
                a.samples.extend_from_slice(&out[..n]);
                a.last_packet = Some(now);
                a.packets.push(now);
                if peak > 0.05 {
                    a.loud.push(now);
                }
            }
        });
    }
}

pub struct WebRtcClient {
    pc: Arc<dyn PeerConnection>,
    dc: Arc<dyn DataChannel>,
    track: Arc<TrackLocalStaticRTP>,
    ssrc: u32,
    payload_type: u8,
    encoder: opus::Encoder,
    seq: u16,
    ts: u32,
    events: mpsc::UnboundedReceiver<(Instant, Value)>,
    pub seen: Vec<(Instant, Value)>,
    /// How many events of each kind `wait_for` has returned.
    returned: std::collections::HashMap<String, usize>,
    pub audio: Arc<Mutex<Received>>,
}

/// The outcome of posting an offer.
pub struct Posted {
    pub status: u16,
    pub body: String,
}

/// POST an SDP body to `path` with a bearer token (any content type).
pub async fn post_sdp(
    addr: std::net::SocketAddr,
    path: &str,
    bearer: Option<&str>,
    content_type: &str,
    body: &str,
) -> Posted {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let auth = bearer
        .map(|b| format!("Authorization: Bearer {b}\r\n"))
        .unwrap_or_default();
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{auth}Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).await.expect("read");
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Posted { status, body }
}

fn opus() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_OPUS.to_owned(),
        clock_rate: 48_000,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
        rtcp_feedback: vec![],
    }
}

impl WebRtcClient {
    /// A peer with its offer ready (ICE gathered): `(client, offer_sdp)`.
    pub async fn offer(
        payload_type: u8,
    ) -> anyhow::Result<(
        Self,
        String,
        mpsc::UnboundedReceiver<RTCPeerConnectionState>,
    )> {
        let mut media = MediaEngine::default();
        media.register_codec(
            RTCRtpCodecParameters {
                rtp_codec: opus(),
                payload_type,
            },
            RtpCodecKind::Audio,
        )?;
        let registry = register_default_interceptors(Registry::new(), &mut media)?;
        let (gathered_tx, mut gathered) = mpsc::unbounded_channel();
        let (state_tx, states) = mpsc::unbounded_channel();
        let audio = Arc::new(Mutex::new(Received::default()));
        let pc = PeerConnectionBuilder::new()
            .with_media_engine(media)
            .with_interceptor_registry(registry)
            .with_setting_engine(
                SettingEngineBuilder::new()
                    .with_multicast_dns_mode(rtc::ice::mdns::MulticastDnsMode::Disabled)
                    .build(),
            )
            .with_handler(Arc::new(Handler {
                gathered: gathered_tx,
                connected: state_tx,
                audio: Arc::clone(&audio),
            }))
            .with_udp_addrs(vec!["127.0.0.1:0"])
            .build()
            .await?;
        let pc: Arc<dyn PeerConnection> = Arc::new(pc);
        let ssrc = 0x5eed_0001;
        let track = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
            "caller".into(),
            "caller-mic".into(),
            "caller-mic".into(),
            RtpCodecKind::Audio,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(ssrc),
                    ..Default::default()
                },
                codec: opus(),
                ..Default::default()
            }],
        )));
        pc.add_track(Arc::clone(&track) as _).await?;
        let dc = pc.create_data_channel("oai-events", None).await?;
        let (ev_tx, events) = mpsc::unbounded_channel();
        let reader = Arc::clone(&dc);
        tokio::spawn(async move {
            while let Some(ev) = reader.poll().await {
                match ev {
                    DataChannelEvent::OnMessage(m) => {
                        if let Ok(v) = serde_json::from_slice::<Value>(&m.data) {
                            let _ = ev_tx.send((Instant::now(), v));
                        }
                    }
                    DataChannelEvent::OnClose => break,
                    _ => {}
                }
            }
        });
        let offer = pc.create_offer(None).await?;
        pc.set_local_description(offer).await?;
        let _ = tokio::time::timeout(Duration::from_secs(3), gathered.recv()).await;
        let sdp = pc
            .local_description()
            .await
            .ok_or_else(|| anyhow::anyhow!("no local description"))?
            .sdp;
        let mut encoder = opus::Encoder::new(RATE, opus::Channels::Mono, opus::Application::Voip)?;
        encoder.set_bitrate(opus::Bitrate::Bits(32_000))?;
        Ok((
            Self {
                pc,
                dc,
                track,
                ssrc,
                payload_type,
                encoder,
                seq: 1,
                ts: 0,
                events,
                seen: Vec::new(),
                returned: Default::default(),
                audio,
            },
            sdp,
            states,
        ))
    }

    pub async fn accept(&self, answer_sdp: String) -> anyhow::Result<()> {
        self.pc
            .set_remote_description(RTCSessionDescription::answer(answer_sdp)?)
            .await?;
        Ok(())
    }

    /// Send 48 kHz speech as 20 ms Opus packets at real-time pace, collecting events.
    pub async fn speak(&mut self, samples: &[i16]) -> anyhow::Result<()> {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        let mut buf = vec![0u8; 1500];
        for chunk in samples.chunks(FRAME) {
            let mut frame: Vec<f32> = chunk.iter().map(|&s| s as f32 / 32768.0).collect();
            frame.resize(FRAME, 0.0);
            let n = self.encoder.encode_float(&frame, &mut buf)?;
            let packet = rtp::Packet {
                header: rtp::header::Header {
                    version: 2,
                    payload_type: self.payload_type,
                    sequence_number: self.seq,
                    timestamp: self.ts,
                    ssrc: self.ssrc,
                    ..Default::default()
                },
                payload: Bytes::copy_from_slice(&buf[..n]),
            };
            self.seq = self.seq.wrapping_add(1);
            self.ts = self.ts.wrapping_add(FRAME as u32);
            tick.tick().await;
            let _ = self.track.write_rtp(packet).await;
            self.drain();
        }
        Ok(())
    }

    fn drain(&mut self) {
        while let Ok(ev) = self.events.try_recv() {
            self.seen.push(ev);
        }
    }

    /// Wait for the next event of `kind`: the first call returns the first such event, the
    /// second call the second, and so on.
    pub async fn wait_for(&mut self, kind: &str, timeout: Duration) -> anyhow::Result<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        let nth = *self.returned.get(kind).unwrap_or(&0);
        loop {
            self.drain();
            if let Some((_, v)) = self.seen.iter().filter(|(_, v)| v["type"] == kind).nth(nth) {
                self.returned.insert(kind.to_owned(), nth + 1);
                return Ok(v.clone());
            }
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(ev)) => self.seen.push(ev),
                Ok(None) => anyhow::bail!("data channel closed waiting for {kind}"),
                Err(_) => anyhow::bail!("no {kind} within {timeout:?}; saw {:?}", self.kinds()),
            }
        }
    }

    pub fn kinds(&self) -> Vec<String> {
        self.seen
            .iter()
            .map(|(_, v)| v["type"].as_str().unwrap_or("?").to_owned())
            .collect()
    }

    pub fn first(&self, kind: &str) -> Option<&(Instant, Value)> {
        self.seen.iter().find(|(_, v)| v["type"] == kind)
    }

    pub async fn send(&self, event: &Value) -> anyhow::Result<()> {
        self.dc.send_text(&event.to_string()).await?;
        Ok(())
    }

    pub async fn hang_up(self) {
        let _ = self.dc.close().await;
        let _ = self.pc.close().await;
    }
}
