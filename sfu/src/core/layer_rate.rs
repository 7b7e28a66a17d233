//! What the allocator learns about one source encoding from its packets: its rate as it would
//! reach a viewer (RTP bytes plus the per-packet overhead SRTP, UDP and IP add), the rate of its
//! base temporal layer (VP8/VP9/AV1), its temporal layers, the rates of its spatial layers when
//! it is an SVC encoding (VP9 SID, AV1 dependency descriptor), and its picture height (VP8
//! keyframes).
//! Measured on the publisher's shard; mirrors on other shards carry the owner's numbers.

use std::time::Duration;

use crate::Bitrate;
use crate::Codec;
use crate::control::MAX_SIMULCAST_LAYERS;
use crate::wire::codec::{PacketLayers, Vp8Descriptor, Vp9Descriptor};

/// Bytes a forwarded packet gains on the way to a viewer: an SRTP tag (up to 16), a
/// transport-wide sequence number element (4 with padding), IPv4 and UDP headers (28).
pub const VIEWER_PACKET_OVERHEAD: u64 = 48;

/// Spatial layers of an SVC encoding the allocator tells apart (higher ones count as the top).
pub const MAX_SVC_SPATIAL: usize = MAX_SIMULCAST_LAYERS;

/// The published facts of an encoding (what crosses to other shards).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LayerInfo {
    /// The encoding's rate toward a viewer, smoothed; kept while the encoding is stopped.
    pub rate: Option<Bitrate>,
    /// The rate of its base temporal layer (of its lowest spatial layer), when it has
    /// temporal layers.
    pub base: Option<Bitrate>,
    /// An SVC encoding with more than one spatial layer: index `s` holds the rate of spatial
    /// layers 0 to `s` together (what a viewer selecting layer `s` gets). All `None` otherwise.
    pub spatial: [Option<Bitrate>; MAX_SVC_SPATIAL],
    /// The highest temporal layer id seen.
    pub max_tid: Option<u8>,
    /// The picture height of its last keyframe, where the codec tells (VP8).
    pub height: Option<u16>,
    /// The picture height of each spatial layer of an SVC encoding, where the codec tells (the
    /// scalability structure of a VP9 keyframe).
    pub spatial_height: [Option<u16>; MAX_SVC_SPATIAL],
}

/// Counters of one encoding and the measurements taken from them.
#[derive(Debug, Clone, Default)]
pub struct LayerRate {
    bytes: u64,
    base_bytes: u64,
    spatial_bytes: [u64; MAX_SVC_SPATIAL],
    /// The counters at the last measurement.
    mark: (u64, u64),
    spatial_mark: [u64; MAX_SVC_SPATIAL],
    /// The highest spatial layer id seen.
    max_sid: Option<u8>,
    pub info: LayerInfo,
}

impl LayerRate {
    /// The rates of a mirror: the owner's measurements.
    pub fn carried(info: LayerInfo) -> Self {
        LayerRate {
            info,
            ..LayerRate::default()
        }
    }

    /// Counts a media packet of `len` RTP bytes whose payload is `payload`; `dd_layers`: the
    /// (spatial, temporal) layer its dependency descriptor names (AV1), when known.
    #[inline]
    pub fn on_packet(
        &mut self,
        codec: Codec,
        len: usize,
        payload: &[u8],
        keyframe: bool,
        dd_layers: Option<(u8, u8)>,
    ) {
        let wire = len as u64 + VIEWER_PACKET_OVERHEAD;
        self.bytes += wire;
        let (sid, tid) = match codec {
            Codec::Vp8 | Codec::Vp9 => {
                let layers = PacketLayers::parse(codec, payload, keyframe);
                (layers.sid, layers.tid)
            }
            Codec::Av1 => dd_layers.map_or((None, None), |(s, t)| (Some(s), Some(t))),
            Codec::H264 | Codec::Opus => (None, None),
        };
        if let Some(tid) = tid {
            self.info.max_tid = Some(self.info.max_tid.map_or(tid, |m| m.max(tid)));
            if tid == 0 && sid.unwrap_or(0) == 0 {
                self.base_bytes += wire;
            }
        }
        if let Some(sid) = sid {
            self.max_sid = Some(self.max_sid.map_or(sid, |m| m.max(sid)));
            self.spatial_bytes[usize::from(sid).min(MAX_SVC_SPATIAL - 1)] += wire;
        }
        if keyframe && codec == Codec::Vp8 {
            self.info.height = vp8_keyframe_height(payload).or(self.info.height);
        }
        if keyframe
            && codec == Codec::Vp9
            && let Ok(d) = Vp9Descriptor::parse(payload)
            && let Some(n) = d.ss_spatial_layers
        {
            for (s, h) in self.info.spatial_height.iter_mut().enumerate() {
                *h = (s < usize::from(n) && d.ss_heights[s] > 0).then_some(d.ss_heights[s]);
            }
        }
    }

    /// Takes a measurement over the `interval` since the last one. A silent interval keeps
    /// the last rates (a stopped encoding is remembered at what it sent).
    pub fn measure(&mut self, interval: Duration) {
        let (bytes, base) = (self.bytes - self.mark.0, self.base_bytes - self.mark.1);
        self.mark = (self.bytes, self.base_bytes);
        if bytes == 0 {
            return;
        }
        let micros = interval.as_micros().max(1) as u64;
        let rate = |b: u64| b.saturating_mul(8_000_000) / micros;
        self.info.rate = Some(smooth(self.info.rate, rate(bytes)));
        self.info.base = if self.info.max_tid.is_some_and(|t| t > 0) && base > 0 {
            Some(smooth(self.info.base, rate(base)))
        } else {
            None
        };
        let top = self
            .max_sid
            .map_or(0, |m| usize::from(m).min(MAX_SVC_SPATIAL - 1));
        let mut below = 0;
        for s in 0..MAX_SVC_SPATIAL {
            let delta = self.spatial_bytes[s] - self.spatial_mark[s];
            self.spatial_mark[s] = self.spatial_bytes[s];
            below += delta;
            self.info.spatial[s] =
                (top > 0 && s <= top).then(|| smooth(self.info.spatial[s], rate(below)));
        }
    }
}

/// Half the old value and half the new: keyframes and encoder swings average out over seconds.
fn smooth(old: Option<Bitrate>, new: u64) -> Bitrate {
    Bitrate(old.map_or(new, |o| (o.0 + new) / 2))
}

/// The height in a VP8 keyframe's header (RFC 6386 §9.1: 3-byte frame tag, start code
/// 9d 01 2a, 14-bit width and height, little-endian, with 2 scaling bits each).
pub fn vp8_keyframe_height(payload: &[u8]) -> Option<u16> {
    let d = Vp8Descriptor::parse(payload).ok()?;
    let h = payload.get(d.header_len..d.header_len + 10)?;
    if h[0] & 0x01 != 0 || h[3..6] != [0x9d, 0x01, 0x2a] {
        return None;
    }
    let height = u16::from_le_bytes([h[8], h[9]]) & 0x3fff;
    (height > 0).then_some(height)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A VP8 payload: descriptor (X, T with `tid`), then a keyframe header with `height`.
    fn vp8(tid: u8, key: bool, height: u16) -> Vec<u8> {
        let mut p = vec![0x90, 0x20, tid << 6];
        let mut hdr = vec![if key { 0x00 } else { 0x01 }, 0, 0, 0x9d, 0x01, 0x2a];
        hdr.extend_from_slice(&640u16.to_le_bytes());
        hdr.extend_from_slice(&height.to_le_bytes());
        p.extend_from_slice(&hdr);
        p.resize(100, 0);
        p
    }

    #[test]
    fn rates_count_the_overhead_and_the_base_temporal_layer() {
        let mut r = LayerRate::default();
        // One second: 30 pictures of one 1000-byte packet, TID 0 every other.
        for i in 0..30 {
            let tid = if i % 2 == 0 { 0 } else { 1 };
            r.on_packet(Codec::Vp8, 1000, &vp8(tid, false, 0), false, None);
        }
        r.measure(Duration::from_secs(1));
        let per = (1000 + VIEWER_PACKET_OVERHEAD) * 8;
        assert_eq!(r.info.rate, Some(Bitrate(30 * per)));
        assert_eq!(r.info.base, Some(Bitrate(15 * per)));
        assert_eq!(r.info.max_tid, Some(1));
        // A silent second keeps the rates; the next one is averaged in.
        r.measure(Duration::from_secs(1));
        assert_eq!(r.info.rate, Some(Bitrate(30 * per)));
        for _ in 0..10 {
            r.on_packet(Codec::Vp8, 1000, &vp8(0, false, 0), false, None);
        }
        r.measure(Duration::from_secs(1));
        assert_eq!(r.info.rate, Some(Bitrate(20 * per)));
    }

    #[test]
    fn an_svc_encoding_has_cumulative_spatial_rates_and_its_base_is_that_of_s0_t0() {
        let mut r = LayerRate::default();
        // One second of AV1 L3T2 (dependency descriptor layers): per picture, S0 100 bytes,
        // S1 300, S2 900; T0 and T1 alternate.
        let per = |b: u64| (b + VIEWER_PACKET_OVERHEAD) * 8;
        for i in 0..20u8 {
            let tid = i % 2;
            for (sid, len) in [(0u8, 100usize), (1, 300), (2, 900)] {
                r.on_packet(Codec::Av1, len, &[0x10], false, Some((sid, tid)));
            }
        }
        r.measure(Duration::from_secs(1));
        assert_eq!(
            r.info.rate,
            Some(Bitrate(20 * (per(100) + per(300) + per(900))))
        );
        assert_eq!(r.info.base, Some(Bitrate(10 * per(100))), "S0 T0 only");
        assert_eq!(
            r.info.spatial,
            [
                Some(Bitrate(20 * per(100))),
                Some(Bitrate(20 * (per(100) + per(300)))),
                Some(Bitrate(20 * (per(100) + per(300) + per(900)))),
                None
            ]
        );
        // VP9 with SIDs in its descriptor: the same from the payload (I, L, B; 7-bit picture
        // id; TID 0 and the SID; TL0PICIDX).
        let mut r = LayerRate::default();
        for sid in [0u8, 1] {
            let vp9 = [0xa8, 0x00, sid << 1, 0x00];
            r.on_packet(Codec::Vp9, 500, &vp9, false, None);
        }
        r.measure(Duration::from_secs(1));
        assert_eq!(r.info.spatial[0], Some(Bitrate(per(500))));
        assert_eq!(r.info.spatial[1], Some(Bitrate(2 * per(500))));
        // A keyframe's scalability structure gives the layers' heights (I|L|B|V; 15-bit
        // picture id; TID 0 SID 0; TL0PICIDX; N_S = 2 with Y: 320x180, 640x360, 1280x720).
        let key = [
            0xaa, 0x80, 0x01, 0x00, 0x00, 0x50, 0x01, 0x40, 0x00, 0xb4, 0x02, 0x80, 0x01, 0x68,
            0x05, 0x00, 0x02, 0xd0,
        ];
        r.on_packet(Codec::Vp9, 500, &key, true, None);
        assert_eq!(
            r.info.spatial_height,
            [Some(180), Some(360), Some(720), None]
        );
    }

    #[test]
    fn no_base_rate_without_temporal_layers() {
        let mut r = LayerRate::default();
        for _ in 0..30 {
            r.on_packet(Codec::H264, 1000, &[0x65, 0, 0], false, None);
        }
        r.measure(Duration::from_secs(1));
        assert!(r.info.rate.is_some());
        assert_eq!((r.info.base, r.info.max_tid), (None, None));
        assert_eq!(r.info.spatial, [None; MAX_SVC_SPATIAL]);
    }

    #[test]
    fn the_height_comes_from_a_vp8_keyframe() {
        assert_eq!(vp8_keyframe_height(&vp8(0, true, 360)), Some(360));
        assert_eq!(vp8_keyframe_height(&vp8(0, false, 360)), None);
        assert_eq!(vp8_keyframe_height(&[0x90]), None);
        let mut r = LayerRate::default();
        r.on_packet(Codec::Vp8, 100, &vp8(0, true, 720), true, None);
        assert_eq!(r.info.height, Some(720));
    }
}
