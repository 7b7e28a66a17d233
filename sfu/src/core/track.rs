//! A source track on a shard: either published by a local session or mirrored from the shard that
//! owns the publisher. Holds the receive-side state and the packet cache its viewers read from.

use std::time::Instant;

use crate::control::{CodecParams, PublishSpec, TrackContent};
use crate::stream::{KeyframeRequester, NackGenerator, PacketCache, RecvStats, SeqUnwrapper};
use crate::{Codec, MediaKind, Mid, PayloadType, Rid, ShardId, Ssrc, StreamKey, TrackId};

use super::config::CoreConfig;
use super::layer_rate::LayerRate;
use super::shard_msg::MediaPacket;

/// Where a track's packets come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Published by a session on this shard (index into the core's sessions).
    Local { session: usize },
    /// Mirrored from the publisher's shard.
    Remote { owner: ShardId },
}

/// The publisher's latest sender report (RFC 3550 §6.4.1), used to write ours.
#[derive(Debug, Clone, Copy)]
pub struct SenderReportInfo {
    pub ntp: u64,
    pub rtp_timestamp: u32,
    pub arrival: Instant,
}

/// Payload-type tables of a track, in the publisher's numbering.
#[derive(Debug, Clone)]
pub struct PtTable {
    codec: [Option<Codec>; 128],
    /// For an RTX payload type, the payload type it repairs (RFC 4588 `apt`).
    rtx_apt: [Option<u8>; 128],
}

impl Default for PtTable {
    fn default() -> Self {
        PtTable {
            codec: [None; 128],
            rtx_apt: [None; 128],
        }
    }
}

impl PtTable {
    pub fn from_codecs(codecs: &[CodecParams]) -> Self {
        let mut t = PtTable::default();
        for c in codecs {
            t.codec[(c.pt.0 & 0x7f) as usize] = Some(c.codec);
            if let Some(rtx) = c.rtx_pt {
                t.rtx_apt[(rtx.0 & 0x7f) as usize] = Some(c.pt.0);
            }
        }
        t
    }
    #[inline]
    pub fn codec(&self, pt: PayloadType) -> Option<Codec> {
        self.codec[(pt.0 & 0x7f) as usize]
    }
    #[inline]
    pub fn rtx_apt(&self, pt: PayloadType) -> Option<PayloadType> {
        self.rtx_apt[(pt.0 & 0x7f) as usize].map(PayloadType)
    }
    pub fn set_codec(&mut self, pt: PayloadType, codec: Codec) {
        self.codec[(pt.0 & 0x7f) as usize] = Some(codec);
    }
    pub fn contains(&self, pt: PayloadType) -> bool {
        self.codec(pt).is_some() || self.rtx_apt(pt).is_some()
    }
}

/// Where a track sits among the simulcast encodings of its media section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerIdentity {
    /// Stable index: the position of its rid in the publisher's `PublishSpec::layers`.
    pub slot: u8,
    /// Spatial rank, 0 = lowest (may change once when the order is learned from bit rates).
    pub rank: u8,
    /// Encodings in the media section.
    pub count: u8,
    /// The rid (known on the publisher's shard only; mirrors carry the slot).
    pub rid: Option<Rid>,
    /// The order is still to be learned from measured bit rates.
    pub order_pending: bool,
}

impl LayerIdentity {
    /// A track that is not simulcast.
    pub fn single() -> Self {
        LayerIdentity {
            slot: 0,
            rank: 0,
            count: 1,
            rid: None,
            order_pending: false,
        }
    }

    pub fn is_simulcast(&self) -> bool {
        self.count > 1
    }
}

/// One source track (for simulcast: one encoding of a media section).
#[derive(Debug)]
pub struct Track {
    pub id: TrackId,
    pub layer: LayerIdentity,
    /// What the track shows (screen content is kept before camera under a shortage).
    pub content: TrackContent,
    /// When the last media packet arrived (whether the encoding is being sent).
    pub last_arrival: Option<Instant>,
    /// Bytes received when the bit rate was last measured, and the rate measured then.
    pub rate_mark: u64,
    pub rate_bps: u64,
    /// Rate measurements taken (for learning the layer order).
    pub rate_samples: u32,
    /// Rates and picture facts for the allocator.
    pub rates: LayerRate,
    /// The layers of the dependency-descriptor templates the publisher last announced.
    pub templates: Option<crate::wire::codec::TemplateLayers>,
    pub stream: StreamKey,
    pub kind: MediaKind,
    /// Position among the stream's tracks of this kind (binds viewers' media sections).
    pub ordinal: u8,
    pub origin: Origin,
    pub mid: Mid,
    pub pts: PtTable,
    /// Media SSRC, announced or learned from the first packet.
    pub ssrc: Option<Ssrc>,
    pub rtx_ssrc: Option<Ssrc>,
    pub clock_rate: u32,
    pub unwrapper: SeqUnwrapper,
    pub recv: RecvStats,
    pub nack: Option<NackGenerator>,
    pub keyframes: KeyframeRequester,
    pub use_fir: bool,
    pub cache: PacketCache,
    /// Subscriptions fed by this track (indices into the core's subscriptions).
    pub subscribers: Vec<usize>,
    pub last_sr: Option<SenderReportInfo>,
    pub next_report: Instant,
    /// Publisher extension id → canonical id (see `super::ext`).
    pub ext_to_canonical: [u8; 256],
    /// Its voice-group membership (index into the core's voice members), when in one.
    pub voice: Option<usize>,
}

impl Track {
    /// A track published by a local session.
    pub fn local(
        spec: &PublishSpec,
        layer: LayerIdentity,
        ordinal: u8,
        session: usize,
        ext_to_canonical: [u8; 256],
        cfg: &CoreConfig,
        now: Instant,
    ) -> Self {
        let clock_rate = spec
            .codecs
            .first()
            .map(|c| c.clock_rate)
            .unwrap_or(match spec.kind {
                MediaKind::Audio => 48_000,
                MediaKind::Video => 90_000,
            });
        let nack = spec
            .codecs
            .iter()
            .any(|c| c.feedback.nack)
            .then(NackGenerator::default);
        let use_fir = !spec.codecs.iter().any(|c| c.feedback.nack_pli)
            && spec.codecs.iter().any(|c| c.feedback.ccm_fir);
        let announced = !layer.is_simulcast();
        Track {
            id: spec.track,
            layer,
            content: spec.content,
            last_arrival: None,
            rate_mark: 0,
            rate_bps: 0,
            rate_samples: 0,
            rates: LayerRate::default(),
            templates: None,
            stream: spec.stream,
            kind: spec.kind,
            ordinal,
            origin: Origin::Local { session },
            mid: spec.mid.clone(),
            pts: PtTable::from_codecs(&spec.codecs),
            // A simulcast encoding's SSRCs are learned from its rid.
            ssrc: spec.ssrc.filter(|_| announced),
            rtx_ssrc: spec.rtx_ssrc.filter(|_| announced),
            clock_rate,
            unwrapper: SeqUnwrapper::new(),
            recv: RecvStats::new(clock_rate),
            nack,
            keyframes: KeyframeRequester::with_interval(cfg.keyframe_request_interval),
            use_fir,
            cache: PacketCache::new(cache_slots(spec.kind, cfg)),
            subscribers: Vec::new(),
            last_sr: None,
            next_report: now + cfg.report_interval,
            ext_to_canonical,
            voice: None,
        }
    }

    /// A mirror of a track whose publisher sits on shard `owner`.
    pub fn mirror(first: &MediaPacket, owner: ShardId, cfg: &CoreConfig, now: Instant) -> Self {
        let (kind, clock_rate) = (first.kind, first.clock_rate);
        Track {
            id: first.track,
            layer: LayerIdentity {
                slot: first.layer_slot,
                rank: first.layer_rank,
                count: first.layer_count.max(1),
                rid: None,
                order_pending: false,
            },
            content: first.content,
            last_arrival: None,
            rate_mark: 0,
            rate_bps: 0,
            rate_samples: 0,
            rates: LayerRate::carried(first.layer_info),
            templates: None,
            stream: first.stream,
            kind,
            ordinal: first.ordinal,
            origin: Origin::Remote { owner },
            mid: Mid::default(),
            pts: PtTable::default(),
            ssrc: None,
            rtx_ssrc: None,
            clock_rate,
            unwrapper: SeqUnwrapper::new(),
            recv: RecvStats::new(clock_rate),
            nack: None,
            keyframes: KeyframeRequester::with_interval(cfg.keyframe_request_interval),
            use_fir: false,
            cache: PacketCache::new(cache_slots(kind, cfg)),
            subscribers: Vec::new(),
            last_sr: None,
            next_report: now + cfg.report_interval,
            ext_to_canonical: [0; 256],
            voice: None,
        }
    }

    /// Learns the template structure a packet's dependency descriptor carries (keyframes), and
    /// gives the packet's (spatial, temporal) layer by the templates learned. `pkt` is the
    /// packet as cached (canonical extension ids), `hdr` its header.
    pub fn learn_templates(
        &mut self,
        hdr: &crate::wire::rtp::RtpHeader,
        pkt: &[u8],
    ) -> Option<(u8, u8)> {
        let dd = hdr.extension(pkt, super::ext::DEPENDENCY_DESCRIPTOR)?;
        let d = crate::wire::codec::DependencyDescriptor::parse(dd).ok()?;
        if let Some(t) = d.structure {
            // A structure with resolutions gives the spatial layers' heights (for height caps),
            // as a VP9 scalability structure does.
            if t.spatial_height(0).is_some() {
                for (s, h) in self.rates.info.spatial_height.iter_mut().enumerate() {
                    *h = u8::try_from(s).ok().and_then(|s| t.spatial_height(s));
                }
            }
            self.templates = Some(t);
        }
        self.templates.as_ref()?.layer_of(d.template_id)
    }

    /// Takes a bit-rate measurement over the `interval` since the last one.
    pub fn measure_rate(&mut self, interval: std::time::Duration) {
        let bytes = self.recv.bytes_received();
        let delta = bytes.saturating_sub(self.rate_mark);
        self.rate_mark = bytes;
        let micros = interval.as_micros().max(1) as u64;
        self.rate_bps = delta.saturating_mul(8_000_000) / micros;
        if self.rate_bps > 0 {
            self.rate_samples = self.rate_samples.saturating_add(1);
        }
    }

    /// The RTP timestamp of the publisher's clock at `now`, extrapolated from its last SR.
    pub fn rtp_time_at(&self, now: Instant) -> Option<(u64, u32)> {
        let sr = self.last_sr?;
        let elapsed = now.saturating_duration_since(sr.arrival);
        let ticks = (elapsed.as_nanos() * self.clock_rate as u128 / 1_000_000_000) as u32;
        let ntp_elapsed = ((elapsed.as_nanos() << 32) / 1_000_000_000) as u64;
        Some((
            sr.ntp.wrapping_add(ntp_elapsed),
            sr.rtp_timestamp.wrapping_add(ticks),
        ))
    }
}

fn cache_slots(kind: MediaKind, cfg: &CoreConfig) -> usize {
    match kind {
        MediaKind::Audio => cfg.audio_cache_packets,
        MediaKind::Video => cfg.video_cache_packets,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests an unwrap is an assertion
mod tests {
    use super::*;
    use crate::SeqNo;
    use crate::control::{LayerOrder, RtcpFeedback};
    use crate::wire::codec::dependency_descriptor::tests::l3t3_key_with_resolutions;
    use crate::wire::rtp::{RtpFields, RtpHeader, write_rtp};

    fn av1_track() -> Track {
        let spec = PublishSpec {
            stream: StreamKey(1),
            track: TrackId(1),
            kind: MediaKind::Video,
            mid: Mid("0".into()),
            ssrc: Some(Ssrc(5)),
            rtx_ssrc: None,
            codecs: vec![CodecParams {
                pt: PayloadType(45),
                codec: Codec::Av1,
                clock_rate: 90_000,
                channels: 0,
                fmtp: String::new(),
                rtx_pt: None,
                feedback: RtcpFeedback::default(),
            }],
            layers: Vec::new(),
            layer_order: LayerOrder::default(),
            content: TrackContent::Camera,
        };
        let identity: [u8; 256] = std::array::from_fn(|i| i as u8);
        Track::local(
            &spec,
            LayerIdentity::single(),
            0,
            0,
            identity,
            &CoreConfig::default(),
            Instant::now(),
        )
    }

    #[test]
    fn a_dependency_structure_with_resolutions_gives_the_spatial_layers_heights() {
        let mut track = av1_track();
        assert_eq!(track.rates.info.spatial_height[0], None);
        let dd = l3t3_key_with_resolutions();
        let exts = [(super::super::ext::DEPENDENCY_DESCRIPTOR, dd.as_slice())];
        let mut buf = [0u8; 1500];
        let fields = RtpFields {
            marker: true,
            payload_type: PayloadType(45),
            seq: SeqNo(1),
            timestamp: 0,
            ssrc: Ssrc(5),
            extensions: &exts,
        };
        let n = write_rtp(&mut buf, &fields, &[0x18, 0, 0]).unwrap();
        let hdr = RtpHeader::parse(&buf[..n]).unwrap();
        assert_eq!(track.learn_templates(&hdr, &buf[..n]), Some((0, 0)));
        assert_eq!(
            &track.rates.info.spatial_height[..3],
            &[Some(180), Some(360), Some(720)]
        );
    }
}
