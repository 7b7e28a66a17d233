//! A viewer's media section: which source it is bound to (for simulcast: every encoding of the
//! source, one of which it receives), and the per-viewer header rewriting, keyframe gating, layer
//! selection and send statistics of what it receives.

use std::time::Instant;

use crate::control::SubscribeSpec;
use crate::route::{
    FrameNumberRewriter, KeyframeGate, LayerSelector, PictureIdRewriter, SeqRewriter,
};
use crate::stream::{RetransmitLimiter, SendStats};
use crate::{Codec, MediaKind, Mid, PayloadType, SeqNo, Ssrc, StreamKey, TrackId};

/// Most simulcast encodings of one media section.
pub const MAX_LAYERS: usize = crate::control::MAX_SIMULCAST_LAYERS;

use super::allocation::SectionAlloc;
use super::config::CoreConfig;

/// Index of a codec in per-codec tables.
#[inline]
pub fn codec_index(c: Codec) -> usize {
    match c {
        Codec::Opus => 0,
        Codec::Vp8 => 1,
        Codec::Vp9 => 2,
        Codec::H264 => 3,
        Codec::Av1 => 4,
    }
}
const CODECS: usize = 5;

/// One viewer media section.
#[derive(Debug)]
pub struct Subscription {
    pub session: usize,
    pub stream: StreamKey,
    pub kind: MediaKind,
    /// Position among the viewer's media sections of this kind: binds to the source track with
    /// the same ordinal.
    pub ordinal: u8,
    /// The viewer's mid of this section.
    pub mid: Mid,
    pub ssrc: Ssrc,
    pub rtx_ssrc: Option<Ssrc>,
    pub rtx_seq: u16,
    /// The viewer's payload type per codec (`None`: the viewer did not accept that codec).
    pub out_pt: [Option<PayloadType>; CODECS],
    pub rtx_pt: [Option<PayloadType>; CODECS],
    /// Canonical extension id → the viewer's id.
    pub ext_map: [u8; 256],
    /// The same for AV1 packets (with the dependency descriptor).
    pub ext_map_av1: [u8; 256],
    /// The source track (index into the core's tracks) once the publisher is there; for a
    /// simulcast source, the encoding being forwarded (None until the first keyframe).
    pub source: Option<usize>,
    /// A simulcast source: its track id and its encodings by spatial rank.
    pub group: Option<TrackId>,
    pub layers: [Option<usize>; MAX_LAYERS],
    pub selector: LayerSelector,
    pub pictures: PictureIdRewriter,
    pub frame_numbers: FrameNumberRewriter,
    /// Since when temporal layers are wanted that have not come (see `LayerSelector`).
    pub temporal_up_since: Option<Instant>,
    /// Arrival time of the newest forwarded packet (spaces timestamps across a switch).
    pub last_arrival: Option<Instant>,
    pub gate: KeyframeGate,
    pub rewriter: SeqRewriter,
    /// The rewriter has been anchored to a source.
    pub started: bool,
    /// The source changed since the rewriter was anchored: continue the sequence on the next packet.
    pub needs_rebase: bool,
    pub send: SendStats,
    pub limiter: RetransmitLimiter,
    pub next_report: Instant,
    /// Packets whose codec the viewer did not accept.
    pub codec_drops: u64,
    /// The bandwidth allocator's state for this section.
    pub alloc: SectionAlloc,
}

impl Subscription {
    pub fn new(
        spec: &SubscribeSpec,
        ordinal: u8,
        session: usize,
        ext_map: [u8; 256],
        cfg: &CoreConfig,
        now: Instant,
        seed: u64,
    ) -> Self {
        let mut out_pt = [None; CODECS];
        let mut rtx_pt = [None; CODECS];
        for c in &spec.codecs {
            let i = codec_index(c.codec);
            if out_pt[i].is_none() {
                out_pt[i] = Some(c.pt);
                rtx_pt[i] = c.rtx_pt;
            }
        }
        let cache = match spec.kind {
            MediaKind::Audio => cfg.audio_cache_packets,
            MediaKind::Video => cfg.video_cache_packets,
        };
        Subscription {
            session,
            stream: spec.stream,
            kind: spec.kind,
            ordinal,
            mid: spec.mid.clone(),
            ssrc: spec.ssrc,
            rtx_ssrc: spec.rtx_ssrc,
            rtx_seq: (seed >> 16) as u16,
            out_pt,
            rtx_pt,
            ext_map,
            ext_map_av1: ext_map,
            source: None,
            group: None,
            layers: [None; MAX_LAYERS],
            selector: LayerSelector::new(),
            pictures: PictureIdRewriter::new(),
            frame_numbers: FrameNumberRewriter::new(),
            temporal_up_since: None,
            last_arrival: None,
            gate: KeyframeGate::for_kind(spec.kind),
            rewriter: SeqRewriter::new(
                SeqNo((seed >> 32) as u16 & 0x7fff),
                (seed as u32) & 0x7fff_ffff,
            ),
            started: false,
            needs_rebase: false,
            send: SendStats::new(),
            limiter: RetransmitLimiter::new(cache),
            next_report: now + cfg.report_interval,
            codec_drops: 0,
            alloc: SectionAlloc::default(),
        }
    }

    #[inline]
    pub fn payload_type_for(&self, codec: Codec) -> Option<PayloadType> {
        self.out_pt[codec_index(codec)]
    }

    #[inline]
    pub fn rtx_payload_type_for(&self, codec: Codec) -> Option<PayloadType> {
        self.rtx_pt[codec_index(codec)]
    }

    /// Binds to a (new) source; a later packet rebases the rewriter so the viewer's sequence
    /// continues.
    pub fn bind(&mut self, track: usize) {
        self.source = Some(track);
        self.gate.reset();
        if self.started {
            self.needs_rebase = true;
        }
    }

    pub fn unbind(&mut self) {
        self.source = None;
        self.gate.reset();
    }

    /// Binds one encoding of a simulcast source (`rank`: its spatial rank).
    pub fn bind_layer(&mut self, track: usize, id: TrackId, rank: u8) {
        if self.group != Some(id) {
            self.group = Some(id);
            self.layers = [None; MAX_LAYERS];
            if self.started {
                self.needs_rebase = true;
            }
        }
        if let Some(slot) = self.layers.get_mut(usize::from(rank)) {
            *slot = Some(track);
        }
    }

    /// Forgets an encoding of the simulcast source that ended.
    pub fn unbind_layer(&mut self, track: usize) {
        for l in self.layers.iter_mut() {
            if *l == Some(track) {
                *l = None;
            }
        }
        if self.source == Some(track) {
            self.source = None;
            self.gate.reset();
        }
        if self.layers.iter().all(Option::is_none) {
            self.group = None;
            self.source = None;
        }
    }

    /// The encodings bound, by rank.
    pub fn layer_count(&self) -> u8 {
        self.layers
            .iter()
            .rposition(Option::is_some)
            .map_or(0, |i| i as u8 + 1)
    }
}

/// Timestamp ticks between two arrivals at `clock_rate`, at least one tick and at most ten
/// seconds' worth (spaces the first packet of a new encoding after the last of the old one).
pub fn arrival_gap(earlier: Option<Instant>, later: Instant, clock_rate: u32) -> u32 {
    let Some(e) = earlier else { return 1 };
    let d = later
        .saturating_duration_since(e)
        .min(std::time::Duration::from_secs(10));
    ((d.as_micros() as u64 * u64::from(clock_rate) / 1_000_000) as u32).max(1)
}
