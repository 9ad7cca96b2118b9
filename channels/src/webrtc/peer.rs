//! One answering peer connection: apply the caller's offer, add our audio track, gather
//! host (and configured STUN/TURN) candidates, and hand back the complete answer. Nothing is
//! trickled: the HTTP answer carries every candidate, as OpenAI's `/v1/realtime/calls` does.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::media_engine::MIME_TYPE_OPUS;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters,
    RtpCodecKind,
};
use tokio::sync::mpsc;
use webrtc::data_channel::DataChannel;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCConfigurationBuilder, RTCIceGatheringState, RTCIceServer, RTCPeerConnectionState,
    RTCSessionDescription, Registry, SettingEngineBuilder, register_default_interceptors,
};

use super::offer::{OfferError, check_offer};

/// ICE gathering is given this long before the answer goes out with what it has.
const GATHER_TIMEOUT: Duration = Duration::from_secs(3);

/// A STUN or TURN server (`stun:host:port`, `turn:host:port?transport=udp`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IceServer {
    pub urls: Vec<String>,
    pub username: String,
    pub credential: String,
}

/// How this gateway's peers reach callers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebRtcConfig {
    /// Local UDP addresses to gather host candidates on. `0.0.0.0:0` means every non-loopback
    /// interface; loopback must be named (`127.0.0.1:0`).
    pub udp_addrs: Vec<String>,
    pub ice_servers: Vec<IceServer>,
    /// The public address a 1:1 NAT maps this host to (a cloud VM's public IP), advertised
    /// in place of the private one.
    pub public_ips: Vec<String>,
}

impl Default for WebRtcConfig {
    fn default() -> Self {
        Self {
            udp_addrs: vec!["127.0.0.1:0".into(), "0.0.0.0:0".into()],
            ice_servers: Vec::new(),
            public_ips: Vec::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
    #[error(transparent)]
    Offer(#[from] OfferError),
    #[error("the SDP offer could not be applied: {0}")]
    Rejected(String),
    #[error("WebRTC setup failed: {0}")]
    Internal(String),
}

impl AnswerError {
    /// `true` when the caller's offer is at fault (HTTP 400), else the server (500).
    pub fn is_client_error(&self) -> bool {
        !matches!(self, Self::Internal(_))
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::Offer(e) => e.code(),
            Self::Rejected(_) => "invalid_sdp",
            Self::Internal(_) => "webrtc_error",
        }
    }
}

/// What the peer connection reports to the call.
pub enum PeerEvent {
    DataChannel(Arc<dyn DataChannel>),
    Track(Arc<dyn TrackRemote>),
    State(RTCPeerConnectionState),
}

impl std::fmt::Debug for PeerEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::DataChannel(_) => f.write_str("DataChannel"),
            Self::Track(_) => f.write_str("Track"),
            Self::State(s) => write!(f, "State({s})"),
        }
    }
}

/// An answered peer connection, not yet connected.
pub struct Peer {
    pub connection: Arc<dyn PeerConnection>,
    pub events: mpsc::UnboundedReceiver<PeerEvent>,
    /// Our audio track and where to write it.
    pub audio: Arc<TrackLocalStaticRTP>,
    pub ssrc: u32,
    /// The payload type the caller gave Opus (Chromium 111, others 96 or more): read from
    /// the offer, never assumed.
    pub payload_type: u8,
    /// The answer SDP.
    pub answer: String,
    /// How long building the answer took.
    pub answer_time: Duration,
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer")
            .field("ssrc", &self.ssrc)
            .field("payload_type", &self.payload_type)
            .finish_non_exhaustive()
    }
}

struct Handler {
    events: mpsc::UnboundedSender<PeerEvent>,
    gathered: mpsc::UnboundedSender<()>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            let _ = self.gathered.send(());
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        let _ = self.events.send(PeerEvent::State(state));
    }

    async fn on_data_channel(&self, channel: Arc<dyn DataChannel>) {
        let _ = self.events.send(PeerEvent::DataChannel(channel));
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let _ = self.events.send(PeerEvent::Track(track));
    }
}

/// Opus as every browser offers it; the payload type is the offer's.
pub fn opus_codec() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_OPUS.to_owned(),
        clock_rate: 48_000,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
        rtcp_feedback: vec![],
    }
}

fn internal(e: impl std::fmt::Display) -> AnswerError {
    AnswerError::Internal(e.to_string())
}

/// A peer connection with Opus as its only codec and mDNS off (host candidates are plain
/// addresses), gathering on `config`'s addresses.
pub async fn build_peer(
    config: &WebRtcConfig,
    handler: Arc<dyn PeerConnectionEventHandler>,
) -> Result<Arc<dyn PeerConnection>, AnswerError> {
    let mut media = MediaEngine::default();
    media
        .register_codec(
            RTCRtpCodecParameters {
                rtp_codec: opus_codec(),
                payload_type: 111,
            },
            RtpCodecKind::Audio,
        )
        .map_err(internal)?;
    let registry = register_default_interceptors(Registry::new(), &mut media).map_err(internal)?;
    let mut settings = SettingEngineBuilder::new()
        .with_multicast_dns_mode(rtc::ice::mdns::MulticastDnsMode::Disabled);
    if !config.public_ips.is_empty() {
        settings = settings.with_nat_1to1_ips(
            config.public_ips.clone(),
            webrtc::peer_connection::RTCIceCandidateType::Host,
        );
    }
    let ice_servers = config
        .ice_servers
        .iter()
        .map(|s| RTCIceServer {
            urls: s.urls.clone(),
            username: s.username.clone(),
            credential: s.credential.clone(),
        })
        .collect();
    let pc = PeerConnectionBuilder::new()
        .with_configuration(
            RTCConfigurationBuilder::new()
                .with_ice_servers(ice_servers)
                .build(),
        )
        .with_media_engine(media)
        .with_setting_engine(settings.build())
        .with_interceptor_registry(registry)
        .with_handler(handler)
        .with_udp_addrs(config.udp_addrs.clone())
        .build()
        .await
        .map_err(internal)?;
    Ok(Arc::new(pc))
}

/// An audio track we send on, with a random SSRC.
pub fn audio_track(ssrc: u32) -> Arc<TrackLocalStaticRTP> {
    Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
        "switchboard".to_owned(),
        "switchboard-audio".to_owned(),
        "switchboard-audio".to_owned(),
        RtpCodecKind::Audio,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(ssrc),
                ..Default::default()
            },
            codec: opus_codec(),
            ..Default::default()
        }],
    )))
}

/// Wait until ICE gathering completes (or `GATHER_TIMEOUT`).
pub async fn gathered(rx: &mut mpsc::UnboundedReceiver<()>) {
    let _ = tokio::time::timeout(GATHER_TIMEOUT, rx.recv()).await;
}

/// Answer `offer`: the caller's session starts when `Peer::events` reports the connection.
pub async fn answer(config: &WebRtcConfig, offer: &str) -> Result<Peer, AnswerError> {
    let started = Instant::now();
    let summary = check_offer(offer)?;
    let (events_tx, events) = mpsc::unbounded_channel();
    let (gathered_tx, mut gathered_rx) = mpsc::unbounded_channel();
    let handler = Arc::new(Handler {
        events: events_tx,
        gathered: gathered_tx,
    });
    let connection = build_peer(config, handler).await?;
    let result = negotiate(&connection, offer, &mut gathered_rx).await;
    let (audio, ssrc, answer) = match result {
        Ok(x) => x,
        Err(e) => {
            let _ = connection.close().await;
            return Err(e);
        }
    };
    Ok(Peer {
        connection,
        events,
        audio,
        ssrc,
        payload_type: summary.opus_payload_type,
        answer,
        answer_time: started.elapsed(),
    })
}

async fn negotiate(
    connection: &Arc<dyn PeerConnection>,
    offer: &str,
    gathered_rx: &mut mpsc::UnboundedReceiver<()>,
) -> Result<(Arc<TrackLocalStaticRTP>, u32, String), AnswerError> {
    let offer = RTCSessionDescription::offer(offer.to_owned())
        .map_err(|e| AnswerError::Rejected(e.to_string()))?;
    connection
        .set_remote_description(offer)
        .await
        .map_err(|e| AnswerError::Rejected(e.to_string()))?;
    let ssrc = rand::random::<u32>();
    let audio = audio_track(ssrc);
    connection
        .add_track(Arc::clone(&audio) as _)
        .await
        .map_err(internal)?;
    let answer = connection
        .create_answer(None)
        .await
        .map_err(|e| AnswerError::Rejected(e.to_string()))?;
    connection
        .set_local_description(answer)
        .await
        .map_err(internal)?;
    gathered(gathered_rx).await;
    let answer = connection
        .local_description()
        .await
        .ok_or_else(|| internal("no local description after negotiation"))?;
    Ok((audio, ssrc, answer.sdp))
}
