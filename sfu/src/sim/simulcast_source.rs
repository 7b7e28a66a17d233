//! A synthetic simulcast camera: several VP8 encodings of the same pictures (RFC 8853), each on
//! its own SSRC with its rid in the RID header extension (RFC 8852), three temporal layers
//! (TID pattern 0, 2, 1, 2) with picture ids and TL0PICIDX, keyframes per encoding on request.

use std::time::Instant;

use super::codecs::{PUB_EXT_MID, PUB_EXT_RID, PUB_VP8};
use super::media_source::{FRAME_INTERVAL, VIDEO_TS_STEP};
use crate::wire::rtp::{self, RtpFields};
use crate::{PayloadType, SeqNo, Ssrc};

/// Length of the VP8 payload descriptor the source writes (X, I with a 15-bit picture id, L, T).
pub const SIM_VP8_DESCRIPTOR_LEN: usize = 6;
/// Offset in the payload of the byte naming the encoding (its index in the source); it follows
/// the VP8 keyframe header (frame tag, start code, width and height).
pub const SIM_LAYER_BYTE: usize = SIM_VP8_DESCRIPTOR_LEN + 10;
/// Offset in the payload of the picture number (8 bytes, big-endian).
pub const SIM_FRAME_BYTES: usize = SIM_LAYER_BYTE + 1;

/// One encoding of a [`SimulcastSource`].
#[derive(Debug, Clone)]
pub struct SimulcastEncoding {
    pub rid: String,
    pub ssrc: Ssrc,
    pub seq: u16,
    /// Each encoding has its own random timestamp base, as real senders do.
    pub ts_base: u32,
    pub picture_id: u16,
    pub tl0_pic_idx: u8,
    pub packets_per_frame: usize,
    pub payload: usize,
    /// The next picture of this encoding is a keyframe.
    pub force_keyframe: bool,
    /// PLIs and FIRs received for this encoding.
    pub plis: u64,
    /// Whether the encoding is sent at all.
    pub active: bool,
    /// Packets carry the RID extension (off: the shard cannot bind the SSRC).
    pub send_rid: bool,
    /// The picture size written into keyframes.
    pub width: u16,
    pub height: u16,
}

/// Several encodings of one picture sequence.
#[derive(Debug, Clone)]
pub struct SimulcastSource {
    pub encodings: Vec<SimulcastEncoding>,
    pub frame: u64,
    pub keyframe_interval: u64,
    pub next_frame: Instant,
    /// Whether pictures carry temporal layer ids (TID 0, 2, 1, 2, ...).
    pub temporal_layers: bool,
}

impl SimulcastSource {
    /// Encodings named `rids` with `sizes[i]` = (packets per picture, payload bytes per packet).
    pub fn new(now: Instant, rids: &[&str], sizes: &[(usize, usize)]) -> Self {
        let encodings = rids
            .iter()
            .zip(sizes)
            .enumerate()
            .map(|(i, (rid, &(ppf, payload)))| SimulcastEncoding {
                rid: (*rid).to_owned(),
                ssrc: Ssrc(0x3333_0000 + i as u32),
                seq: 1000u16.wrapping_add(20_000 * i as u16),
                ts_base: 0x1000_0000u32.wrapping_mul(i as u32 + 1),
                picture_id: 100 + 3000 * i as u16,
                tl0_pic_idx: 10 + 50 * i as u8,
                packets_per_frame: ppf.max(1),
                payload: payload.max(SIM_FRAME_BYTES + 8),
                force_keyframe: false,
                plis: 0,
                active: true,
                send_rid: true,
                // 320x180 doubled per encoding.
                width: 320 << i.min(4),
                height: 180 << i.min(4),
            })
            .collect();
        SimulcastSource {
            encodings,
            frame: 0,
            keyframe_interval: 90,
            next_frame: now,
            temporal_layers: true,
        }
    }

    /// The temporal layer of picture `frame`.
    pub fn tid_of(frame: u64) -> u8 {
        [0, 2, 1, 2][(frame % 4) as usize]
    }

    /// Writes every packet of the next picture of every active encoding, calling `emit` with each
    /// plaintext packet.
    pub fn write_picture(&mut self, mut emit: impl FnMut(&[u8])) {
        let frame = self.frame;
        self.frame += 1;
        self.next_frame += FRAME_INTERVAL;
        let periodic = frame.is_multiple_of(self.keyframe_interval);
        let tid = if self.temporal_layers {
            Self::tid_of(frame)
        } else {
            0
        };
        let mut buf = [0u8; 1500];
        for (index, e) in self.encodings.iter_mut().enumerate() {
            if !e.active {
                continue;
            }
            let key = periodic || e.force_keyframe;
            e.force_keyframe = false;
            if tid == 0 || key {
                e.tl0_pic_idx = e.tl0_pic_idx.wrapping_add(1);
            }
            let tid = if key { 0 } else { tid };
            e.picture_id = e.picture_id.wrapping_add(1) & 0x7fff;
            for i in 0..e.packets_per_frame {
                let rid = e.rid.as_bytes();
                let exts: [(u8, &[u8]); 2] = [(PUB_EXT_MID, b"0"), (PUB_EXT_RID, rid)];
                let fields = RtpFields {
                    marker: i + 1 == e.packets_per_frame,
                    payload_type: PayloadType(PUB_VP8),
                    seq: SeqNo(e.seq),
                    timestamp: e
                        .ts_base
                        .wrapping_add((frame as u32).wrapping_mul(VIDEO_TS_STEP)),
                    ssrc: e.ssrc,
                    extensions: if e.send_rid { &exts } else { &exts[..1] },
                };
                e.seq = e.seq.wrapping_add(1);
                // Fixed fields with one-byte extension ids and a 1500-byte buffer: cannot fail.
                let head = rtp::write_rtp(&mut buf, &fields, &[]).expect("header fits");
                let p = &mut buf[head..head + e.payload];
                p.fill(0);
                p[0] = 0x80 | if i == 0 { 0x10 } else { 0 };
                p[1] = 0xe0;
                p[2] = 0x80 | (e.picture_id >> 8) as u8;
                p[3] = e.picture_id as u8;
                p[4] = e.tl0_pic_idx;
                p[5] = tid << 6;
                let d = SIM_VP8_DESCRIPTOR_LEN;
                p[d] = if key { 0x00 } else { 0x01 };
                if key {
                    p[d + 3..d + 6].copy_from_slice(&[0x9d, 0x01, 0x2a]);
                    p[d + 6..d + 8].copy_from_slice(&e.width.to_le_bytes());
                    p[d + 8..d + 10].copy_from_slice(&e.height.to_le_bytes());
                }
                p[SIM_LAYER_BYTE] = index as u8;
                p[SIM_FRAME_BYTES..SIM_FRAME_BYTES + 8].copy_from_slice(&frame.to_be_bytes());
                emit(&buf[..head + e.payload]);
            }
        }
    }
}
