//! Codec-level rewriting of a packet forwarded to a viewer beyond its RTP header: the marker bit
//! of a picture cut short by layer dropping, VP8 picture numbers (RFC 7741 §4.2) and the AV1
//! dependency descriptor's frame number, each continuous for the viewer across switches.

use crate::wire::codec::{DependencyDescriptor, PacketLayers, vp8};
use crate::wire::rtp::{self, RtpHeader};

/// Codec-level changes to a forwarded packet beyond the RTP header.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct PayloadEdit {
    /// Set the marker bit (the packet now ends the picture).
    pub marker: bool,
    /// New VP8 picture id and TL0PICIDX.
    pub vp8: Option<(u16, u8)>,
    /// New dependency-descriptor frame number, at this offset of the packet.
    pub dd_frame: Option<(u16, u16)>,
}

impl PayloadEdit {
    /// Applies the edit to a packet written to `slot` (`n` bytes) from a source packet of
    /// `src_len` bytes whose header is `hdr`. A transport-wide sequence number added by
    /// [`write_stamped`] grows the extension block, so the payload starts `n - src_len` bytes
    /// later than in the source; extension data keeps its offsets.
    #[inline]
    pub(super) fn apply(self, slot: &mut [u8], hdr: &RtpHeader, src_len: usize, n: usize) {
        if self.marker {
            rtp::set_marker(&mut slot[..n], true);
        }
        let payload = hdr.header_len() + n.saturating_sub(src_len);
        if let Some((pid, tl0)) = self.vp8
            && payload < n
        {
            vp8::rewrite_picture_numbers(&mut slot[payload..n], pid, tl0);
        }
        if let Some((offset, frame)) = self.dd_frame {
            let at = usize::from(offset) + DependencyDescriptor::FRAME_NUMBER_OFFSET;
            if let Some(b) = slot.get_mut(at..at + 2).filter(|_| at + 2 <= n) {
                b.copy_from_slice(&frame.to_be_bytes());
            }
        }
    }
}

/// The VP8 picture numbers a viewer gets for a packet, when they differ from the publisher's.
#[inline]
pub(super) fn vp8_numbers(layers: &PacketLayers, mapped: (u16, u8)) -> Option<(u16, u8)> {
    let (pid, _) = layers.vp8_picture_id?;
    let tl0 = layers.vp8_tl0_pic_idx.unwrap_or(0);
    (mapped != (pid, tl0)).then_some(mapped)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests an unwrap is an assertion
mod tests {
    use super::*;
    use crate::core::viewer_bwe::write_stamped;
    use crate::wire::codec::Vp8Descriptor;
    use crate::wire::rtp::{RtpFields, write_rtp};
    use crate::{Codec, PayloadType, SeqNo, Ssrc};

    fn packet(payload: &[u8]) -> Vec<u8> {
        let f = RtpFields {
            marker: false,
            payload_type: PayloadType(96),
            seq: SeqNo(7),
            timestamp: 1234,
            ssrc: Ssrc(5),
            extensions: &[(2, b"f")],
        };
        let mut buf = vec![0u8; 64];
        let n = write_rtp(&mut buf, &f, payload).unwrap();
        buf.truncate(n);
        buf
    }

    #[test]
    fn payload_edit_sets_the_marker_and_rewrites_vp8_picture_numbers() {
        // X, S; I, L, T; picture id 0x2bb9; TL0PICIDX 0xd3; TID 0; VP8 header byte.
        let mut pkt = packet(&[0x90, 0xe0, 0xab, 0xb9, 0xd3, 0x00, 0x11, 0xaa]);
        let hdr = RtpHeader::parse(&pkt).unwrap();
        let layers = PacketLayers::parse(Codec::Vp8, hdr.payload(&pkt), false);
        assert_eq!(
            vp8_numbers(&layers, (0x2bb9, 0xd3)),
            None,
            "unchanged: no edit"
        );
        let numbers = vp8_numbers(&layers, (5, 6));
        let edit = PayloadEdit {
            marker: true,
            vp8: numbers,
            dd_frame: None,
        };
        let n = pkt.len();
        edit.apply(&mut pkt, &hdr, n, n);
        let out = RtpHeader::parse(&pkt).unwrap();
        assert!(out.marker);
        let d = Vp8Descriptor::parse(out.payload(&pkt)).unwrap();
        assert_eq!((d.picture_id, d.tl0_pic_idx), (Some(5), Some(6)));
        assert_eq!(&out.payload(&pkt)[6..], &[0x11, 0xaa]);
        assert_eq!(out.extension(&pkt, 2), Some(&b"f"[..]));
    }

    #[test]
    fn payload_edit_finds_the_vp8_descriptor_after_a_stamped_transport_sequence_number() {
        let src = packet(&[0x90, 0xe0, 0xab, 0xb9, 0xd3, 0x00, 0x11, 0xaa]);
        let hdr = RtpHeader::parse(&src).unwrap();
        let layers = PacketLayers::parse(Codec::Vp8, hdr.payload(&src), false);
        let mut identity = [0u8; 256];
        for (i, v) in identity.iter_mut().enumerate() {
            *v = i as u8;
        }
        let mut slot = vec![0u8; 128];
        let (n, stamped) = write_stamped(
            &mut slot,
            &src,
            &hdr,
            Ssrc(9),
            SeqNo(1),
            0,
            PayloadType(96),
            &identity,
            Some((3, 0x0102)),
        );
        assert!(stamped);
        assert_eq!(n, src.len() + 4, "a word added to the extension block");
        let edit = PayloadEdit {
            vp8: vp8_numbers(&layers, (5, 6)),
            ..PayloadEdit::default()
        };
        edit.apply(&mut slot, &hdr, src.len(), n);
        let out = RtpHeader::parse(&slot[..n]).unwrap();
        let d = Vp8Descriptor::parse(out.payload(&slot[..n])).unwrap();
        assert_eq!((d.picture_id, d.tl0_pic_idx), (Some(5), Some(6)));
        assert_eq!(&out.payload(&slot[..n])[6..], &[0x11, 0xaa]);
        assert_eq!(out.extension(&slot[..n], 2), Some(&b"f"[..]));
    }
}
