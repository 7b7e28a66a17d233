//! Media paced toward a viewer (draft-ietf-rmcat-gcc-02 §4 assumes a pacer): a video packet
//! the fan-out has decided to forward but the viewer's pacer holds back is queued as a
//! [`Forward`] — a reference into its track's packet cache with everything the viewer's copy
//! needs — and written from the cache when the pacer releases it. No packet is copied twice and
//! nothing allocates: the queue is the pacer's ring, allocated with the viewer's estimator.

use std::time::Instant;

use crate::bwe::ProbeId;
use crate::metrics::DropReason;
use crate::srtp::SrtpContext;
use crate::wire::rtp::RtpHeader;
use crate::{ExtSeq, PayloadType, SeqNo, Ssrc};

use super::ShardCore;
use super::payload_edit::PayloadEdit;
use super::viewer_bwe::{udp_overhead, write_stamped};

/// A packet forwarded to one viewer: the source packet (a track's cache slot) and the viewer's
/// numbering of it, fixed when the fan-out decided to forward it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Forward {
    /// The source packet's extended sequence number in its track's cache.
    pub ext: ExtSeq,
    /// The subscription (index into the core's subscriptions) it goes to.
    pub sub: u32,
    /// The source track (index into the core's tracks).
    pub track: u32,
    /// The source packet's SSRC: a cache slot reused by another track is not taken for it.
    pub src_ssrc: Ssrc,
    /// The viewer's SSRC, sequence number, timestamp and payload type for it.
    pub ssrc: Ssrc,
    pub ts: u32,
    pub seq: SeqNo,
    pub pt: PayloadType,
    /// The packet is AV1 (the viewer's extension map with the dependency descriptor applies).
    pub av1: bool,
    pub edit: PayloadEdit,
}

/// Writes the viewer's copy of `data` (whose header is `hdr`) for `f` into `slot` and protects
/// it with `tx`: the header rewritten, the transport-wide sequence number `stamp` added, the
/// payload edited. Returns the protected length and whether the number was written, or `None`
/// when protection failed.
#[inline]
#[allow(clippy::too_many_arguments)]
pub(super) fn write_forward(
    slot: &mut [u8],
    data: &[u8],
    hdr: &RtpHeader,
    f: &Forward,
    ext_map: &[u8; 256],
    stamp: Option<(u8, u16)>,
    tx: &mut SrtpContext,
) -> Option<(usize, bool)> {
    let (len, stamped) = write_stamped(slot, data, hdr, f.ssrc, f.seq, f.ts, f.pt, ext_map, stamp);
    f.edit.apply(slot, hdr, data.len(), len);
    tx.protect_rtp(slot, len).ok().map(|n| (n, stamped))
}

impl ShardCore {
    /// Sends a packet a viewer's pacer released (`probe`: it is part of that probe cluster).
    /// A packet whose cache slot was reused while it waited, or whose subscription is gone, is
    /// dropped and counted.
    pub(super) fn send_paced(
        &mut self,
        now: Instant,
        idx: usize,
        f: Forward,
        probe: Option<ProbeId>,
    ) {
        let Some(track) = self.tracks.get(f.track as usize) else {
            self.counters.drop(DropReason::PacerOverrun);
            return;
        };
        let Some(pkt) = track.cache.get(f.ext) else {
            self.counters.drop(DropReason::PacerOverrun);
            return;
        };
        let Ok(hdr) = RtpHeader::parse(pkt.data) else {
            return;
        };
        if hdr.ssrc != f.src_ssrc {
            self.counters.drop(DropReason::PacerOverrun);
            return;
        }
        let Some(sub) = self
            .subs
            .get_mut(f.sub as usize)
            .filter(|s| s.session == idx && s.ssrc == f.ssrc)
        else {
            return;
        };
        let Some(session) = self.sessions.get_mut(idx) else {
            return;
        };
        let (Some(dest), Some(srtp), Some(vb)) = (
            session.dest,
            session.srtp.as_mut(),
            session.viewer_bwe.as_deref_mut(),
        ) else {
            return;
        };
        let ext_map = if f.av1 {
            &sub.ext_map_av1
        } else {
            &sub.ext_map
        };
        let stamp = Some((vb.ext_id, vb.next_seq()));
        let data = pkt.data;
        let (mut len, mut stamped) = (0, false);
        let mut protect_failed = false;
        let queued = self.control.push_with(dest, |slot| {
            let r = write_forward(slot, data, &hdr, &f, ext_map, stamp, &mut srtp.tx);
            protect_failed = r.is_none();
            (len, stamped) = r?;
            Some(len)
        });
        if !queued {
            let reason = if protect_failed {
                DropReason::SrtpProtect
            } else {
                DropReason::TxQueueFull
            };
            self.counters.drop(reason);
            return;
        }
        sub.alloc.sent_bytes += len as u64;
        sub.send.on_packet(now, f.ts, hdr.payload_len);
        self.counters.rtp_out += 1;
        vb.paced_packets += 1;
        if stamped {
            // Charged to the pacer when it released the packet.
            vb.on_sent(now, len + udp_overhead(dest), probe);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queued_packet_reference_stays_small() {
        // 256 of them per viewer: 14 kB with the pacer's size field.
        assert!(std::mem::size_of::<Forward>() <= 48);
    }
}
