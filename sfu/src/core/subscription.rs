//! A viewer's media section: which source it is bound to, and the per-viewer header rewriting,
//! keyframe gating and send statistics of what it receives.

use std::time::Instant;

use crate::control::SubscribeSpec;
use crate::route::{KeyframeGate, SeqRewriter};
use crate::stream::{RetransmitLimiter, SendStats};
use crate::{Codec, MediaKind, PayloadType, SeqNo, Ssrc, StreamKey};

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
    pub ssrc: Ssrc,
    pub rtx_ssrc: Option<Ssrc>,
    pub rtx_seq: u16,
    /// The viewer's payload type per codec (`None`: the viewer did not accept that codec).
    pub out_pt: [Option<PayloadType>; CODECS],
    pub rtx_pt: [Option<PayloadType>; CODECS],
    /// Canonical extension id → the viewer's id.
    pub ext_map: [u8; 256],
    /// The source track (index into the core's tracks) once the publisher is there.
    pub source: Option<usize>,
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
            ssrc: spec.ssrc,
            rtx_ssrc: spec.rtx_ssrc,
            rtx_seq: (seed >> 16) as u16,
            out_pt,
            rtx_pt,
            ext_map,
            source: None,
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
}
