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
    /// Add or remove a published or viewed track on a running session, or report its tracks'
    /// figures (see [`TrackCommand`]).
    Tracks(TrackCommand),
    /// Voice channels: active-speaker groups and the Opus mix (see [`VoiceCommand`]).
    Voice(VoiceCommand),
}

/// A voice channel as the media plane knows it: the audio tracks grouped for active-speaker
/// detection and mixing (the media server uses the channel's UUID).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct VoiceGroup(pub u128);

/// Voice-channel orders. Failures produce [`Event::CommandFailed`] with `id: None`.
#[derive(Debug)]
pub enum VoiceCommand {
    /// Puts a published audio track of this shard into a voice group (`None`: takes it out).
    /// Its RFC 6464 audio levels then count toward the group's active speaker, reported with
    /// [`Event::ActiveSpeaker`]. The track may be published before or after this command.
    SetGroup {
        track: TrackId,
        group: Option<VoiceGroup>,
    },
    /// Makes an audio track (published on this shard, or mirrored from another shard that was
    /// linked to this one) an input of the group's mix on this shard, or stops it.
    MixInput {
        group: VoiceGroup,
        track: TrackId,
        add: bool,
    },
    /// Starts sending a running session one Opus stream: the mix of the group's inputs except
    /// the tracks in `exclude` (the listener's own voice). `spec.codecs` must offer Opus; the
    /// stream goes out with `spec.ssrc` and `spec.mid`. `extmap` as for
    /// [`TrackCommand::AddSubscribe`]. Sent again for a stream the session already receives
    /// (same mid), it changes the exclusions and the stream's numbering goes on.
    AddMixListener {
        group: VoiceGroup,
        session: SessionId,
        extmap: ExtMap,
        spec: SubscribeSpec,
        exclude: Vec<TrackId>,
    },
    /// Stops a session's mix stream (named by its mid).
    RemoveMixListener { session: SessionId, mid: Mid },
}

/// Voice figures of a published audio track in a voice group (see [`TrackStats::voice`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VoiceTrackStats {
    /// The group's key.
    pub group: VoiceGroup,
    /// The track's audio level over the last second, in dBov (-127 silence ... 0 full scale).
    pub level: i8,
    /// Whether the track counts as speaking (enough of the last second above the threshold).
    pub speaking: bool,
    /// Whether the track is its group's active speaker on this shard.
    pub active: bool,
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
    /// The last rate trial's result (a step up waits for one to pass).
    pub last_trial: Option<crate::bwe::TrialResult>,
    /// Rate trials run, and how many passed.
    pub trials: u32,
    pub trials_passed: u32,
    /// Packets stamped with a transport-wide sequence number.
    pub packets_sent: u64,
    /// Padding-only packets sent (probes).
    pub padding_packets: u64,
    pub padding_bytes: u64,
    /// Transport-cc feedback messages received from the viewer.
    pub feedback_received: u64,
    /// Bytes sent in probe clusters: padding, and media the pacer sent as part of them.
    pub probe_bytes: u64,
    /// Video packets the pacer held back before sending them, and packets waiting in it now.
    pub paced_packets: u64,
    pub pacer_queue: u32,
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
    /// The active speaker of a voice group changed (among the group's tracks published on
    /// shard `shard`): `track` the loudest participant speaking now, `None` when nobody speaks.
    /// `level` is its audio level in dBov (-127 silence ... 0 full scale).
    ActiveSpeaker {
        group: VoiceGroup,
        shard: ShardId,
        track: Option<TrackId>,
        level: i8,
    },
    /// A command could not be applied.
    CommandFailed {
        id: Option<SessionId>,
        shard: ShardId,
        error: String,
    },
}

/// Changes to the media of a running session. ORTC-style signaling (the media server's
/// `/sessions` API, mediasoup's model) creates a transport first and produces or consumes tracks
/// on it later, so publish and subscribe specs come and go while ICE, DTLS and SRTP keep running.
/// A command that cannot be applied produces [`Event::CommandFailed`] with `id: None` (the
/// session itself is not affected).
#[derive(Debug)]
pub enum TrackCommand {
    /// Starts receiving a track from the session. `extmap`: the header-extension ids the track's
    /// packets carry, merged into the session's (an id that contradicts the session's fails).
    AddPublish {
        session: SessionId,
        extmap: ExtMap,
        spec: PublishSpec,
    },
    /// Stops receiving a track (every simulcast encoding of it); its viewers wait for the next
    /// source of the stream.
    RemovePublish { session: SessionId, track: TrackId },
    /// Starts sending the session a media section of `spec.stream` (bound to the stream's source
    /// track of that kind at once if it exists, else when it arrives). `extmap` as for
    /// `AddPublish`.
    AddSubscribe {
        session: SessionId,
        extmap: ExtMap,
        spec: SubscribeSpec,
    },
    /// Stops a viewing media section, named by its mid.
    RemoveSubscribe { session: SessionId, mid: Mid },
    /// Sends the figures of every track of the session to `reply` (an unknown session answers
    /// with `found: false`).
    Stats {
        session: SessionId,
        reply: crossbeam_channel::Sender<SessionTrackStats>,
    },
}

/// Which way a track of a session goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackDirection {
    /// The session sends it to the SFU.
    Publish,
    /// The SFU sends it to the session.
    Subscribe,
}

/// The figures of one track of a session (for simulcast: of all its encodings together).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackStats {
    pub direction: TrackDirection,
    /// Published: the track. Viewed: the source track bound now (None while none is).
    pub track: Option<TrackId>,
    pub mid: Mid,
    pub kind: MediaKind,
    /// RTP clock rate (the unit of `jitter`).
    pub clock_rate: u32,
    /// Published: RTP packets received from the session. Viewed: RTP packets sent to it
    /// (retransmissions not counted).
    pub packets: u64,
    /// The bytes of those packets (viewed: payload bytes).
    pub bytes: u64,
    /// Published: packets expected but not received (RFC 3550 A.3). Viewed: the cumulative loss
    /// in the session's last receiver report (0 before one).
    pub packets_lost: i64,
    /// Interarrival jitter in RTP timestamp units (RFC 3550 A.8): measured on a published track,
    /// reported by the session for a viewed one.
    pub jitter: u32,
    /// A published audio track in a voice group: its level and whether it speaks.
    pub voice: Option<VoiceTrackStats>,
}

/// The answer to [`TrackCommand::Stats`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionTrackStats {
    pub session: SessionId,
    /// Whether the shard has the session.
    pub found: bool,
    pub tracks: Vec<TrackStats>,
}
