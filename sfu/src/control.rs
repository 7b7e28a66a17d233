//! The control-plane interface of a shard: commands signaling sends in, events shards send out,
//! and the description of a negotiated session. Nothing here is on the packet path.

use crate::dtls::Fingerprint;
use crate::{
    Bitrate, Codec, MediaKind, Mid, PayloadType, Rid, SessionId, ShardId, Ssrc, StreamKey, TrackId,
};

/// ICE username fragment and password (RFC 8445 §5.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IceParams {
    pub ufrag: String,
    pub pwd: String,
}

/// Header-extension ids negotiated with one peer (RFC 8285). `None`: not negotiated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExtMap {
    pub mid: Option<u8>,
    pub rid: Option<u8>,
    pub repaired_rid: Option<u8>,
    pub abs_send_time: Option<u8>,
    pub transport_cc: Option<u8>,
    pub audio_level: Option<u8>,
    /// AV1 RTP dependency descriptor (the AV1 RTP specification's appendix A).
    pub dependency_descriptor: Option<u8>,
}

/// RTCP feedback negotiated for a codec (RFC 4585 `a=rtcp-fb`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RtcpFeedback {
    pub nack: bool,
    pub nack_pli: bool,
    pub ccm_fir: bool,
    pub transport_cc: bool,
    pub goog_remb: bool,
}

/// One negotiated payload format, in the numbering of the peer it was negotiated with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodecParams {
    pub pt: PayloadType,
    pub codec: Codec,
    pub clock_rate: u32,
    pub channels: u8,
    /// The `a=fmtp` parameters as negotiated (for example `profile-level-id=42e01f;packetization-mode=1`).
    pub fmtp: String,
    /// The RTX payload type associated with this one (RFC 4588), when negotiated.
    pub rtx_pt: Option<PayloadType>,
    pub feedback: RtcpFeedback,
}

/// A track a session sends to the SFU.
#[derive(Debug, Clone)]
pub struct PublishSpec {
    pub stream: StreamKey,
    pub track: TrackId,
    pub kind: MediaKind,
    pub mid: Mid,
    /// SSRCs announced in SDP (`a=ssrc`), if any; otherwise learned from the first packets by
    /// MID extension or payload type.
    pub ssrc: Option<Ssrc>,
    pub rtx_ssrc: Option<Ssrc>,
    pub codecs: Vec<CodecParams>,
    /// Simulcast encodings (RFC 8853) of this media section, lowest first; empty or one entry:
    /// not simulcast. Each becomes a layer whose SSRC is learned from the RID header extension
    /// (repaired-rid for its RTX).
    pub layers: Vec<Rid>,
    /// How `layers` was ordered.
    pub layer_order: LayerOrder,
    /// What the track shows (video): a viewer short of bandwidth keeps screen content first.
    pub content: TrackContent,
}

/// What a published video track shows; a viewer short of bandwidth keeps screen content before camera.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TrackContent {
    #[default]
    Camera,
    Screen,
}

/// A viewer's quality preset as caps for its allocator (None: no cap).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QualityCap {
    /// The most video the viewer receives in all; also the level below which it counts as
    /// degraded.
    pub max_video: Option<Bitrate>,
    /// The tallest picture (in rows) the viewer receives, where the layer heights are known.
    pub max_height: Option<u16>,
}

/// Per viewer media section, what the allocator chose and what went out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackAllocation {
    /// The viewer's mid of the section.
    pub mid: Mid,
    pub kind: MediaKind,
    pub content: TrackContent,
    /// The layer being forwarded now (spatial rank, temporal id).
    pub spatial: Option<u8>,
    pub temporal: Option<u8>,
    /// The layer the allocator asked for (spatial rank, temporal id).
    pub target_spatial: Option<u8>,
    pub target_temporal: Option<u8>,
    /// Video paused because even its lowest layer does not fit.
    pub paused: bool,
    /// What the allocator budgets for this section.
    pub allocated: Bitrate,
    /// What was sent over the last second.
    pub sent: Bitrate,
    /// From the viewer's receiver reports: loss in thousandths and interarrival jitter.
    pub loss_permille: u16,
    pub jitter_ms: u32,
}

/// One viewer session's allocation, once a second (every viewer session, transport-cc or not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewerStats {
    /// The send-side estimate (None: the viewer did not negotiate transport-cc; no adaptation).
    pub estimate: Option<Bitrate>,
    pub rtt: Option<std::time::Duration>,
    /// Sum of the sections' `allocated`.
    pub allocated: Bitrate,
    /// What the sections would take at their best allowed layers (the estimator probes toward it).
    pub desired: Bitrate,
    pub cap: QualityCap,
    pub degraded: bool,
    pub tracks: Vec<TrackAllocation>,
}

/// Most simulcast encodings the media plane forwards for one media section; signaling answers
/// at most this many.
pub const MAX_SIMULCAST_LAYERS: usize = 4;

/// How the simulcast layers of a [`PublishSpec`] were put in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LayerOrder {
    /// By recognised rid names (`q`/`h`/`f`, `l`/`m`/`h`, `low`/`mid`/`high`, ...): final.
    #[default]
    Named,
    /// In the publisher's `a=simulcast` order as a first guess; the media plane re-orders the
    /// layers by measured bit rate once every layer has sent for a while, and reports the new
    /// order with [`Event::LayerOrder`].
    Measured,
}

/// A viewer's choice of layers for one media section. Spatial layers are simulcast encodings
/// (0 = the lowest, as ordered by the media plane) or, for a single VP9 SVC stream, spatial layer
/// ids; temporal layers are VP8/VP9 temporal layer ids. `None` means "the highest there is".
/// What is forwarded is the target capped by the maximum; switching happens on the next
/// keyframe of the new layer (spatial) or the next switching point (temporal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LayerSelection {
    pub spatial: Option<u8>,
    pub temporal: Option<u8>,
    pub max_spatial: Option<u8>,
    pub max_temporal: Option<u8>,
}

/// A media section on which a session receives one kind of the stream's media.
#[derive(Debug, Clone)]
pub struct SubscribeSpec {
    pub stream: StreamKey,
    pub kind: MediaKind,
    pub mid: Mid,
    /// The SSRC the SFU sends with (announced in the answer).
    pub ssrc: Ssrc,
    /// The SSRC for retransmissions when RTX was negotiated.
    pub rtx_ssrc: Option<Ssrc>,
    /// The payload formats the viewer accepts, in its numbering.
    pub codecs: Vec<CodecParams>,
}

/// Everything a shard needs to run one negotiated peer connection.
#[derive(Debug, Clone)]
pub struct SessionSpec {
    pub id: SessionId,
    /// Our ICE credentials (from the answer).
    pub local_ice: IceParams,
    /// The peer's ICE credentials (from the offer).
    pub remote_ice: IceParams,
    /// The fingerprint the peer's DTLS certificate must match.
    pub remote_fingerprint: Fingerprint,
    pub extmap: ExtMap,
    pub publish: Vec<PublishSpec>,
    pub subscribe: Vec<SubscribeSpec>,
}

/// Orders from signaling to a shard.
#[derive(Debug)]
pub enum Command {
    /// Start a session; its ICE credentials become valid at once.
    AddSession(Box<SessionSpec>),
    /// Close a session and release everything it holds.
    RemoveSession(SessionId),
    /// On the shard that holds the stream's publisher: start (or stop) sending the stream's media
    /// to `shard`, which has viewers of it.
    LinkShard {
        stream: StreamKey,
        shard: ShardId,
        linked: bool,
    },
    /// Sets the layers a viewer's media section receives (`mid` is the viewer's; `None`: its
    /// first video section). The shard's bandwidth allocator stays within this selection;
    /// without it a viewer receives the highest layers its estimate (and preset) allows.
    SetLayers {
        session: SessionId,
        mid: Option<Mid>,
        selection: LayerSelection,
    },
    /// The most the allocator would send viewer session `session` (the sum of the layers it
    /// wants); raising it above the estimate makes the send-side estimator probe toward it.
    /// The shard's allocator sets this itself; a command's value holds until the allocator's
    /// own value next moves.
    SetDesiredMax { session: SessionId, max: Bitrate },
    /// A viewer's quality preset: caps every video section the viewer receives; the preset's
    /// bit rate is also the level below which the viewer counts as degraded.
    SetQuality { session: SessionId, cap: QualityCap },
    /// Close every session and stop the shard loop.
    Shutdown,
}

/// The send-side bandwidth estimate toward one viewer session (GoogCC, `sfu/src/bwe`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ViewerBweStats {
    /// The rate to send the viewer now.
    pub target: Bitrate,
    /// The delay-based estimate.
    pub delay_based: Bitrate,
    /// The rate the viewer acknowledged in its feedback.
    pub acked: Option<Bitrate>,
    /// Loss of the last loss report, in thousandths.
    pub loss_permille: u16,
    pub rtt: std::time::Duration,
    /// The over-use detector's hypothesis.
    pub usage: crate::bwe::BandwidthUsage,
    /// The rate controller's state.
    pub rate_state: crate::bwe::aimd::RateControlState,
    /// The sender is application-limited.
    pub in_alr: bool,
    /// The last probe result.
    pub last_probe: Option<Bitrate>,
    /// Packets stamped with a transport-wide sequence number.
    pub packets_sent: u64,
    /// Padding-only packets sent (probes).
    pub padding_packets: u64,
    pub padding_bytes: u64,
    /// Transport-cc feedback messages received from the viewer.
    pub feedback_received: u64,
}

/// Why a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// No valid STUN for the consent timeout (30 s, RFC 7675).
    ConsentExpired,
    /// ICE never completed within the connect timeout.
    ConnectTimeout,
    /// The DTLS handshake failed or the certificate did not match the fingerprint.
    DtlsFailed(String),
    /// The peer sent close_notify.
    DtlsClosed,
    /// Signaling removed it.
    Removed,
    /// The shard shut down.
    Shutdown,
}

/// Notices from a shard to signaling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// ICE nominated an address and DTLS completed: media can flow.
    SessionConnected { id: SessionId, shard: ShardId },
    /// The session is gone from the shard.
    SessionClosed {
        id: SessionId,
        shard: ShardId,
        reason: CloseReason,
    },
    /// The simulcast layers of a published track were (re-)ordered by measured bit rate:
    /// `layers` lowest first.
    LayerOrder {
        stream: StreamKey,
        track: TrackId,
        mid: Mid,
        layers: Vec<Rid>,
    },
    /// The send-side estimate toward a viewer session, once a second.
    ViewerEstimate {
        id: SessionId,
        shard: ShardId,
        stats: ViewerBweStats,
    },
    /// A viewer session's allocation, once a second.
    ViewerStats {
        id: SessionId,
        shard: ShardId,
        stats: ViewerStats,
    },
    /// A viewer's video allocation stayed below what it wants (its preset's bit rate, or without
    /// a preset the top layers' rate) for 5 s (`degraded: true`), or stayed at it for 5 s again
    /// (`false`).
    QualityDegraded {
        id: SessionId,
        shard: ShardId,
        degraded: bool,
        allocated: Bitrate,
        wanted: Bitrate,
    },
    /// From the publisher's shard, when the set of simulcast encodings any viewer (on any shard)
    /// needs changes (dynacast): `mid` is the publisher's, `active` the rids still needed.
    LayerDemand {
        stream: StreamKey,
        track: TrackId,
        mid: Mid,
        active: Vec<Rid>,
    },
    /// A command could not be applied.
    CommandFailed {
        id: Option<SessionId>,
        shard: ShardId,
        error: String,
    },
}
