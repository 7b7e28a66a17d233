//! What the codec frame headers say: picture size from the VP8 keyframe header (RFC 6386 §9.1)
//! and the VP9 uncompressed header (VP9 bitstream specification §6.2), for the WebM track's
//! PixelWidth and PixelHeight, and whether a VP9 frame is a keyframe.

use super::vp9_superframe;

/// Width and height of a VP8 keyframe (the 14-bit sizes; the 2-bit upscaling hints are not part
/// of the coded size). `None` for an interframe or a short or malformed header.
pub fn vp8_keyframe_size(frame: &[u8]) -> Option<(u32, u32)> {
    let h = frame.get(..10)?;
    if h[0] & 0x01 != 0 || h[3..6] != [0x9d, 0x01, 0x2a] {
        return None;
    }
    let w = u16::from_le_bytes([h[6], h[7]]) & 0x3fff;
    let ht = u16::from_le_bytes([h[8], h[9]]) & 0x3fff;
    (w > 0 && ht > 0).then_some((w.into(), ht.into()))
}

/// The largest picture size coded explicitly in the frames of a VP9 block (one frame or a
/// superframe of spatial-layer frames). Keyframes and intra-only frames always code their size;
/// inter frames do unless they take it from a reference. `None` when no frame codes one.
pub fn vp9_frame_size(data: &[u8]) -> Option<(u32, u32)> {
    vp9_superframe::frames(data)
        .filter_map(vp9_one_frame_size)
        .max_by_key(|&(w, h)| u64::from(w) * u64::from(h))
}

/// True when the VP9 frame starting with `frame` (one frame, or the first frame of a
/// superframe) is a keyframe: frame_type KEY_FRAME and not a repeat of an earlier frame. Only
/// the first byte is needed.
pub fn vp9_is_keyframe(frame: &[u8]) -> bool {
    let mut r = Bits {
        data: frame.get(..1).unwrap_or_default(),
        pos: 0,
    };
    vp9_key_bits(&mut r).unwrap_or(false)
}

fn vp9_key_bits(r: &mut Bits<'_>) -> Option<bool> {
    if r.bits(2)? != 2 {
        return None;
    }
    let profile = r.bit()? | (r.bit()? << 1);
    if profile == 3 {
        r.bit()?;
    }
    let show_existing = r.bit()? == 1;
    Some(!show_existing && r.bit()? == 0)
}

/// MSB-first bit reader over a byte slice.
struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Bits<'_> {
    fn bit(&mut self) -> Option<u32> {
        let byte = *self.data.get(self.pos / 8)?;
        let b = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Some(u32::from(b))
    }

    fn bits(&mut self, n: u32) -> Option<u32> {
        (0..n).try_fold(0u32, |a, _| Some((a << 1) | self.bit()?))
    }
}

const SYNC_CODE: u32 = 0x49_83_42;
const CS_RGB: u32 = 7;

fn vp9_one_frame_size(frame: &[u8]) -> Option<(u32, u32)> {
    let mut r = Bits {
        data: frame,
        pos: 0,
    };
    if r.bits(2)? != 2 {
        return None;
    }
    let low = r.bit()?;
    let high = r.bit()?;
    let profile = (high << 1) | low;
    if profile == 3 {
        r.bit()?;
    }
    if r.bit()? == 1 {
        // show_existing_frame: no frame is coded.
        return None;
    }
    let key = r.bit()? == 0;
    let show_frame = r.bit()? == 1;
    let error_resilient = r.bit()? == 1;
    if key {
        if r.bits(24)? != SYNC_CODE {
            return None;
        }
        color_config(&mut r, profile)?;
        return frame_size(&mut r);
    }
    let intra_only = if show_frame { false } else { r.bit()? == 1 };
    if !error_resilient {
        r.bits(2)?; // reset_frame_context
    }
    if intra_only {
        if r.bits(24)? != SYNC_CODE {
            return None;
        }
        if profile > 0 {
            color_config(&mut r, profile)?;
        }
        r.bits(8)?; // refresh_frame_flags
        return frame_size(&mut r);
    }
    r.bits(8)?; // refresh_frame_flags
    r.bits(3 * 4)?; // ref_frame_idx and sign bias of LAST, GOLDEN, ALTREF
    for _ in 0..3 {
        if r.bit()? == 1 {
            // found_ref: the size is that of a reference frame.
            return None;
        }
    }
    frame_size(&mut r)
}

fn color_config(r: &mut Bits<'_>, profile: u32) -> Option<()> {
    if profile >= 2 {
        r.bit()?; // ten_or_twelve_bit
    }
    let color_space = r.bits(3)?;
    if color_space != CS_RGB {
        r.bit()?; // color_range
        if profile == 1 || profile == 3 {
            r.bits(3)?; // subsampling_x, subsampling_y, reserved_zero
        }
    } else if profile == 1 || profile == 3 {
        r.bit()?; // reserved_zero
    }
    Some(())
}

fn frame_size(r: &mut Bits<'_>) -> Option<(u32, u32)> {
    let w = r.bits(16)? + 1;
    let h = r.bits(16)? + 1;
    Some((w, h))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests an unwrap is an assertion
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn vp8_keyframe_gives_its_size() {
        // Frame tag of a keyframe (P = 0, version 0, shown), start code, 320 x 240 with an
        // upscaling hint in the top bits of the width.
        let f = [
            0x50, 0x2d, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x41, 0xf0, 0x00, 0x00,
        ];
        assert_eq!(vp8_keyframe_size(&f), Some((320, 240)));
        let mut inter = f;
        inter[0] |= 1;
        assert_eq!(vp8_keyframe_size(&inter), None);
        let mut bad_code = f;
        bad_code[4] = 0;
        assert_eq!(vp8_keyframe_size(&bad_code), None);
        assert_eq!(vp8_keyframe_size(&f[..9]), None);
    }

    /// A VP9 profile 0 keyframe header coding `w` x `h`.
    fn vp9_key(w: u32, h: u32) -> Vec<u8> {
        let mut bits: Vec<u32> = Vec::new();
        let mut put = |v: u32, n: u32| {
            for i in (0..n).rev() {
                bits.push((v >> i) & 1);
            }
        };
        put(2, 2); // frame_marker
        put(0, 2); // profile 0
        put(0, 1); // show_existing_frame
        put(0, 1); // KEY_FRAME
        put(1, 1); // show_frame
        put(0, 1); // error_resilient_mode
        put(SYNC_CODE, 24);
        put(2, 3); // color_space BT.709
        put(0, 1); // color_range
        put(w - 1, 16);
        put(h - 1, 16);
        put(0, 8);
        bits.chunks(8)
            .map(|c| c.iter().fold(0u8, |a, &b| (a << 1) | b as u8) << (8 - c.len()))
            .collect()
    }

    #[test]
    fn vp9_keyframe_flag_comes_from_frame_type() {
        assert!(vp9_is_keyframe(&vp9_key(320, 240)));
        // Profile 0, NON_KEY.
        assert!(!vp9_is_keyframe(&[0b1000_0100]));
        // show_existing_frame.
        assert!(!vp9_is_keyframe(&[0b1000_1000]));
        // Profile 3 has a reserved bit before show_existing_frame.
        assert!(vp9_is_keyframe(&[0b1011_0000]));
        assert!(!vp9_is_keyframe(&[0b1011_0010]));
        // Not a frame marker.
        assert!(!vp9_is_keyframe(&[0x00]));
        assert!(!vp9_is_keyframe(&[]));
    }

    #[test]
    fn vp9_keyframe_gives_its_size() {
        assert_eq!(vp9_frame_size(&vp9_key(1280, 720)), Some((1280, 720)));
        assert_eq!(vp9_frame_size(&vp9_key(65_536, 1)), Some((65_536, 1)));
    }

    #[test]
    fn vp9_superframe_gives_its_largest_layer() {
        let a = vp9_key(320, 180);
        let b = vp9_key(640, 360);
        let mut data = [b.clone(), a.clone()].concat();
        assert!(vp9_superframe::put_index(&mut data, &[b.len(), a.len()]));
        assert_eq!(vp9_frame_size(&data), Some((640, 360)));
    }

    #[test]
    fn vp9_inter_frame_sized_by_a_reference_has_no_size() {
        // marker 2, profile 0, not existing, NON_KEY, shown, not resilient, reset 0, refresh 0,
        // refs, found_ref = 1.
        let bits = "10 00 0 1 1 0 00 00000000 000000000000 1";
        let s: String = bits.chars().filter(|c| !c.is_whitespace()).collect();
        let mut bytes = vec![0u8; 8];
        for (i, c) in s.chars().enumerate() {
            if c == '1' {
                bytes[i / 8] |= 0x80 >> (i % 8);
            }
        }
        assert_eq!(vp9_frame_size(&bytes), None);
    }

    proptest! {
        #[test]
        fn size_parsers_never_panic(data in proptest::collection::vec(any::<u8>(), 0..48)) {
            let _ = vp8_keyframe_size(&data);
            let _ = vp9_frame_size(&data);
        }
    }
}
