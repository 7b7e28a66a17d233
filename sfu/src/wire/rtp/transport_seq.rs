//! Copying a packet toward one receiver with its transport-wide sequence number
//! (draft-holmer-rmcat-transport-wide-cc-extensions-01) written into the header extension block
//! (RFC 8285), and building padding-only packets (RFC 3550 §5.1) that carry one.
//!
//! Where the source packet already has an element with the receiver's id and a 2-byte value
//! (the publisher's own transport-wide element, renumbered), its value is overwritten. Otherwise
//! one 32-bit word is added at the end of the extension block — `[id<<4 | 1, hi, lo, 0]` in the
//! one-byte form, `[id, 2, hi, lo]` in the two-byte form — or, without a block, a one-word block
//! is created. Header and payload are copied in two pieces around the new word, so adding it
//! costs no second pass over the payload and nothing is allocated.

use super::ext::{ExtForm, ONE_BYTE_PROFILE, TWO_BYTE_PROFILE, remap_extensions};
use super::{FIXED_HEADER_LEN, RtpError, RtpHeader};
use crate::types::{PayloadType, SeqNo, Ssrc};
use crate::wire::be::{put_u16, put_u32, u16_at};

/// Finds the data offset (in `buf`) of the first element with `id` whose value is 2 bytes.
fn find_two_byte_value(buf: &[u8], hdr: &RtpHeader, id: u8) -> Option<usize> {
    let ext = hdr.ext?;
    let data = buf.get(ext.offset..ext.offset + ext.len)?;
    let one_byte = match ext.form() {
        ExtForm::OneByte => true,
        ExtForm::TwoByte => false,
        ExtForm::Other => return None,
    };
    let mut pos = 0;
    while pos < data.len() {
        let b = data[pos];
        if b == 0 {
            pos += 1;
            continue;
        }
        let (eid, start, len) = if one_byte {
            if b >> 4 == 15 {
                return None;
            }
            (b >> 4, pos + 1, usize::from(b & 0x0f) + 1)
        } else {
            (b, pos + 2, usize::from(*data.get(pos + 1)?))
        };
        if start + len > data.len() {
            return None;
        }
        if eid == id && len == 2 {
            return Some(ext.offset + start);
        }
        pos = start + len;
    }
    None
}

/// Copies `pkt` (parsed as `hdr`) into `out`, renumbering its extensions with `map` (see
/// [`remap_extensions`]) and writing transport-wide sequence number `seq` under extension id
/// `id` (1..=255). Returns the length written, which is the source length or 4 (a word added
/// to the block) or 8 (a new block) bytes more. Fails, writing nothing useful, when `out` is too
/// short or the block's profile is neither RFC 8285 form (or is one-byte and `id` > 14).
pub fn copy_with_transport_seq(
    out: &mut [u8],
    pkt: &[u8],
    hdr: &RtpHeader,
    map: &[u8; 256],
    id: u8,
    seq: u16,
) -> Result<usize, RtpError> {
    let n = pkt.len();
    let head = hdr.payload_offset;
    if head > n || id == 0 {
        return Err(RtpError::HeaderMismatch);
    }
    if out.len() < n {
        return Err(RtpError::BufferTooSmall {
            need: n,
            have: out.len(),
        });
    }
    out[..head].copy_from_slice(&pkt[..head]);
    remap_extensions(&mut out[..head], hdr, map);
    if let Some(at) = find_two_byte_value(&out[..head], hdr, id) {
        put_u16(out, at, seq);
        out[head..n].copy_from_slice(&pkt[head..]);
        return Ok(n);
    }
    let [hi, lo] = seq.to_be_bytes();
    let grow = match hdr.ext {
        Some(ext) => {
            let word = match ext.form() {
                ExtForm::OneByte if (1..=14).contains(&id) => [(id << 4) | 1, hi, lo, 0],
                ExtForm::TwoByte => [id, 2, hi, lo],
                _ => return Err(RtpError::InvalidExtension(id)),
            };
            let words = u16_at(out, ext.offset - 2);
            let words = words.checked_add(1).ok_or(RtpError::InvalidExtension(id))?;
            put_u16(out, ext.offset - 2, words);
            let at = ext.offset + ext.len;
            if out.len() < n + 4 {
                return Err(RtpError::BufferTooSmall {
                    need: n + 4,
                    have: out.len(),
                });
            }
            // The block ends where the payload starts.
            out[at..at + 4].copy_from_slice(&word);
            4
        }
        None => {
            if out.len() < n + 8 {
                return Err(RtpError::BufferTooSmall {
                    need: n + 8,
                    have: out.len(),
                });
            }
            let block = if id <= 14 {
                let [p0, p1] = ONE_BYTE_PROFILE.to_be_bytes();
                [p0, p1, 0, 1, (id << 4) | 1, hi, lo, 0]
            } else {
                let [p0, p1] = TWO_BYTE_PROFILE.to_be_bytes();
                [p0, p1, 0, 1, id, 2, hi, lo]
            };
            out[0] |= 0x10;
            out[head..head + 8].copy_from_slice(&block);
            8
        }
    };
    out[head + grow..n + grow].copy_from_slice(&pkt[head..]);
    Ok(n + grow)
}

/// Writes a padding-only packet (no payload, `pad` padding bytes, `pad` ≥ 1) carrying
/// transport-wide sequence number `transport_seq` under extension id `id` (one-byte form for
/// ids up to 14). Receivers count it for transport-wide feedback and discard it (RFC 4588 §4:
/// an RTX packet without an original sequence number). Returns its length.
#[allow(clippy::too_many_arguments)]
pub fn write_padding_packet(
    out: &mut [u8],
    ssrc: Ssrc,
    pt: PayloadType,
    seq: SeqNo,
    timestamp: u32,
    id: u8,
    transport_seq: u16,
    pad: u8,
) -> Result<usize, RtpError> {
    if pad == 0 || id == 0 {
        return Err(RtpError::BadPadding(pad));
    }
    let len = FIXED_HEADER_LEN + 8 + usize::from(pad);
    if out.len() < len {
        return Err(RtpError::BufferTooSmall {
            need: len,
            have: out.len(),
        });
    }
    out[0] = 0x80 | 0x20 | 0x10;
    out[1] = pt.0 & 0x7f;
    put_u16(out, 2, seq.0);
    put_u32(out, 4, timestamp);
    put_u32(out, 8, ssrc.0);
    let [hi, lo] = transport_seq.to_be_bytes();
    let block = if id <= 14 {
        let [p0, p1] = ONE_BYTE_PROFILE.to_be_bytes();
        [p0, p1, 0, 1, (id << 4) | 1, hi, lo, 0]
    } else {
        let [p0, p1] = TWO_BYTE_PROFILE.to_be_bytes();
        [p0, p1, 0, 1, id, 2, hi, lo]
    };
    out[FIXED_HEADER_LEN..FIXED_HEADER_LEN + 8].copy_from_slice(&block);
    out[FIXED_HEADER_LEN + 8..len].fill(0);
    out[len - 1] = pad;
    Ok(len)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests an unwrap is an assertion
mod tests {
    use super::*;
    use crate::wire::rtp::{RtpFields, parse_transport_cc_seq, write_rtp};

    fn packet(exts: &[(u8, &[u8])], payload: &[u8]) -> Vec<u8> {
        let mut buf = vec![0u8; 1500];
        let f = RtpFields {
            marker: true,
            payload_type: PayloadType(96),
            seq: SeqNo(7),
            timestamp: 1234,
            ssrc: Ssrc(99),
            extensions: exts,
        };
        let n = write_rtp(&mut buf, &f, payload).unwrap();
        buf.truncate(n);
        buf
    }

    fn identity() -> [u8; 256] {
        let mut m = [0u8; 256];
        for (i, v) in m.iter_mut().enumerate() {
            *v = i as u8;
        }
        m
    }

    fn check(out: &[u8], id: u8, seq: u16, payload: &[u8]) {
        let h = RtpHeader::parse(out).unwrap();
        let v = h.extension(out, id).unwrap();
        assert_eq!(parse_transport_cc_seq(v).unwrap(), SeqNo(seq));
        assert_eq!(h.payload(out), payload);
        assert_eq!((h.seq, h.timestamp, h.ssrc), (SeqNo(7), 1234, Ssrc(99)));
    }

    #[test]
    fn overwrites_an_existing_transport_seq_element_in_place() {
        let pkt = packet(&[(1, &[9]), (5, &[0xaa, 0xbb])], b"payload");
        let hdr = RtpHeader::parse(&pkt).unwrap();
        let mut out = [0u8; 1500];
        let n = copy_with_transport_seq(&mut out, &pkt, &hdr, &identity(), 5, 0x1234).unwrap();
        assert_eq!(n, pkt.len());
        check(&out[..n], 5, 0x1234, b"payload");
        assert_eq!(
            RtpHeader::parse(&out[..n]).unwrap().extension(&out[..n], 1),
            Some(&[9u8][..])
        );
    }

    #[test]
    fn adds_a_word_to_an_existing_block_of_either_form() {
        for (exts, id) in [
            (&[(1u8, &[9u8][..])][..], 3u8),
            (&[(1u8, &[][..])][..], 3u8), // two-byte form (empty value)
            (&[(1u8, &[9u8][..])][..], 20u8),
        ] {
            let pkt = packet(exts, b"abc");
            let hdr = RtpHeader::parse(&pkt).unwrap();
            let mut out = [0u8; 1500];
            match copy_with_transport_seq(&mut out, &pkt, &hdr, &identity(), id, 65535) {
                Ok(n) => {
                    assert_eq!(n, pkt.len() + 4);
                    check(&out[..n], id, 65535, b"abc");
                }
                Err(e) => {
                    // Only a one-byte block cannot take an id past 14.
                    assert_eq!(hdr.ext.unwrap().form(), ExtForm::OneByte);
                    assert!(id > 14, "{e}");
                }
            }
        }
    }

    #[test]
    fn creates_a_block_when_the_source_has_none() {
        for id in [2u8, 200] {
            let pkt = packet(&[], b"xyz");
            let hdr = RtpHeader::parse(&pkt).unwrap();
            let mut out = [0u8; 1500];
            let n = copy_with_transport_seq(&mut out, &pkt, &hdr, &identity(), id, 42).unwrap();
            assert_eq!(n, pkt.len() + 8);
            check(&out[..n], id, 42, b"xyz");
        }
    }

    #[test]
    fn blanked_source_elements_stay_padding() {
        let pkt = packet(&[(1, &[9]), (4, &[1, 2, 3])], b"p");
        let hdr = RtpHeader::parse(&pkt).unwrap();
        let mut map = [0u8; 256];
        map[1] = 2;
        let mut out = [0u8; 1500];
        let n = copy_with_transport_seq(&mut out, &pkt, &hdr, &map, 7, 3).unwrap();
        let h = RtpHeader::parse(&out[..n]).unwrap();
        let ids: Vec<u8> = h.extensions(&out[..n]).map(|(i, _)| i).collect();
        assert_eq!(ids, vec![2, 7]);
    }

    #[test]
    fn padding_packet_parses_with_no_payload() {
        let mut out = [0u8; 400];
        let n = write_padding_packet(
            &mut out,
            Ssrc(5),
            PayloadType(97),
            SeqNo(9),
            77,
            3,
            513,
            255,
        )
        .unwrap();
        let h = RtpHeader::parse(&out[..n]).unwrap();
        assert_eq!((h.payload_len, h.padding_len), (0, 255));
        let v = h.extension(&out[..n], 3).unwrap();
        assert_eq!(parse_transport_cc_seq(v).unwrap(), SeqNo(513));
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_packets_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300), id in 1u8..=255, seq: u16) {
            if let Ok(hdr) = RtpHeader::parse(&bytes) {
                let mut out = [0u8; 320];
                if let Ok(n) = copy_with_transport_seq(&mut out, &bytes, &hdr, &identity(), id, seq) {
                    let h = RtpHeader::parse(&out[..n]).unwrap();
                    proptest::prop_assert_eq!(h.payload(&out[..n]), hdr.payload(&bytes));
                }
            }
        }
    }
}
