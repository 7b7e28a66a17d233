//! H.264 RTP payloads (RFC 6184 §5.6–5.8): single NAL unit packets, STAP-A/STAP-B aggregates and
//! FU-A/FU-B fragments, inspected for IDR slices, parameter sets and access unit starts.

/// NAL unit types (ITU-T H.264 Table 7-1) and RTP packet types (RFC 6184 Table 1).
pub const NAL_SLICE: u8 = 1;
pub const NAL_IDR: u8 = 5;
pub const NAL_SEI: u8 = 6;
pub const NAL_SPS: u8 = 7;
pub const NAL_PPS: u8 = 8;
pub const NAL_AUD: u8 = 9;
pub const STAP_A: u8 = 24;
pub const STAP_B: u8 = 25;
pub const FU_A: u8 = 28;
pub const FU_B: u8 = 29;

fn nal_type(b: u8) -> u8 {
    b & 0x1f
}

/// Iterates the NAL units of a STAP (the bytes after the STAP header and, for STAP-B, the DON);
/// stops at a unit that does not fit.
fn stap_units(mut rest: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        let [a, b, tail @ ..] = rest else { return None };
        let size = usize::from(u16::from_be_bytes([*a, *b]));
        let unit = tail.get(..size)?;
        rest = &tail[size..];
        Some(unit)
    })
}

/// The aggregated units of a STAP-A or STAP-B payload.
fn stap_body(payload: &[u8]) -> Option<&[u8]> {
    match nal_type(*payload.first()?) {
        STAP_A => payload.get(1..),
        STAP_B => payload.get(3..),
        _ => None,
    }
}

/// The FU header and the fragment data after it, for FU-A and FU-B payloads.
fn fu_parts(payload: &[u8]) -> Option<(u8, &[u8])> {
    match nal_type(*payload.first()?) {
        FU_A => Some((*payload.get(1)?, payload.get(2..)?)),
        FU_B => Some((*payload.get(1)?, payload.get(4..)?)),
        _ => None,
    }
}

/// True when a NAL unit of type `t` whose bytes after the NAL header begin with `rbsp_first`
/// begins a keyframe: an SPS, or the first slice (first_mb_in_slice 0) of an IDR picture.
fn starts_keyframe(t: u8, rbsp_first: Option<u8>) -> bool {
    t == NAL_SPS || (t == NAL_IDR && first_mb_is_zero(rbsp_first))
}

/// first_mb_in_slice is the slice header's first field; its Exp-Golomb code for 0 is the single
/// bit 1.
fn first_mb_is_zero(rbsp_first: Option<u8>) -> bool {
    rbsp_first.is_some_and(|b| b & 0x80 != 0)
}

/// True for the first packet of a keyframe: a single SPS NAL unit or first IDR slice, an
/// aggregate holding one of those, or the first fragment of a first IDR slice. Later slices of
/// an IDR picture do not count, so a receiver never starts in the middle of one.
pub fn is_keyframe_start(payload: &[u8]) -> bool {
    let Some(&b0) = payload.first() else {
        return false;
    };
    match nal_type(b0) {
        t @ 1..=23 => starts_keyframe(t, payload.get(1).copied()),
        STAP_A | STAP_B => stap_body(payload).is_some_and(|body| {
            stap_units(body).any(|u| {
                u.first()
                    .is_some_and(|&h| starts_keyframe(nal_type(h), u.get(1).copied()))
            })
        }),
        FU_A | FU_B => fu_parts(payload).is_some_and(|(fu, data)| {
            fu & 0x80 != 0 && starts_keyframe(nal_type(fu), data.first().copied())
        }),
        _ => false,
    }
}

/// True when a NAL unit of type `t` whose bytes after the NAL header begin with `rbsp_first`
/// can begin an access unit: an access unit delimiter, SEI or parameter set, or a slice whose
/// first_mb_in_slice is 0 (its Exp-Golomb code is the single bit 1).
fn starts_access_unit(t: u8, rbsp_first: Option<u8>) -> bool {
    match t {
        NAL_AUD | NAL_SEI | NAL_SPS | NAL_PPS => true,
        NAL_SLICE | NAL_IDR => first_mb_is_zero(rbsp_first),
        _ => false,
    }
}

/// True for a packet that begins an access unit (a frame), judged from its first NAL unit.
pub fn is_frame_start(payload: &[u8]) -> bool {
    let Some(&b0) = payload.first() else {
        return false;
    };
    match nal_type(b0) {
        1..=23 => starts_access_unit(nal_type(b0), payload.get(1).copied()),
        STAP_A | STAP_B => stap_body(payload)
            .and_then(|body| stap_units(body).next())
            .and_then(|u| Some(starts_access_unit(nal_type(*u.first()?), u.get(1).copied())))
            .unwrap_or(false),
        FU_A | FU_B => fu_parts(payload).is_some_and(|(fu, data)| {
            fu & 0x80 != 0 && starts_access_unit(nal_type(fu), data.first().copied())
        }),
        _ => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests an unwrap is an assertion
mod tests {
    use super::*;

    /// A real Baseline-profile SPS (profile 66, level 3.0, 720x404).
    const SPS: [u8; 25] = [
        0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x00, 0xb4, 0x35, 0xf9, 0xe1, 0x00, 0x00, 0x03, 0x00, 0x01,
        0x00, 0x00, 0x03, 0x00, 0x3c, 0x0f, 0x16, 0x2e, 0x48, 0x00,
    ];
    const PPS: [u8; 4] = [0x68, 0xce, 0x3c, 0x80];
    /// IDR slice, first_mb_in_slice 0 (the first RBSP bit is 1).
    const IDR: [u8; 4] = [0x65, 0x88, 0x84, 0x00];
    /// Non-IDR slice, first_mb_in_slice 0.
    const P_SLICE: [u8; 4] = [0x41, 0x9a, 0x02, 0x00];
    /// Non-IDR slice, first_mb_in_slice 1 (ue(v) "010").
    const P_SLICE_2: [u8; 4] = [0x41, 0x40, 0x02, 0x00];

    fn stap_a(units: &[&[u8]]) -> Vec<u8> {
        let mut v = vec![0x78]; // NRI 3, type 24
        for u in units {
            v.extend_from_slice(&(u.len() as u16).to_be_bytes());
            v.extend_from_slice(u);
        }
        v
    }

    fn fu_a(unit: &[u8], start: bool, end: bool) -> Vec<u8> {
        let indicator = (unit[0] & 0xe0) | FU_A;
        let header = (u8::from(start) << 7) | (u8::from(end) << 6) | nal_type(unit[0]);
        let mut v = vec![indicator, header];
        v.extend_from_slice(&unit[1..]);
        v
    }

    #[test]
    fn single_nal_units() {
        assert!(is_keyframe_start(&SPS) && is_frame_start(&SPS));
        assert!(is_keyframe_start(&IDR) && is_frame_start(&IDR));
        let second_idr_slice = [0x65, 0x40, 0x84, 0x00]; // first_mb_in_slice 1
        assert!(!is_keyframe_start(&second_idr_slice) && !is_frame_start(&second_idr_slice));
        assert!(!is_keyframe_start(&PPS) && is_frame_start(&PPS));
        assert!(!is_keyframe_start(&P_SLICE) && is_frame_start(&P_SLICE));
        assert!(!is_frame_start(&P_SLICE_2), "second slice of a frame");
        assert!(!is_keyframe_start(&[0x09, 0x10]) && is_frame_start(&[0x09, 0x10])); // AUD
    }

    #[test]
    fn stap_a_with_parameter_sets_and_idr() {
        let p = stap_a(&[&SPS, &PPS, &IDR]);
        assert!(is_keyframe_start(&p) && is_frame_start(&p));
        let idr_last = stap_a(&[&[0x06, 0x05, 0x01], &IDR]); // SEI then IDR
        assert!(is_keyframe_start(&idr_last));
        let no_key = stap_a(&[&PPS, &P_SLICE]);
        assert!(!is_keyframe_start(&no_key) && is_frame_start(&no_key));
        // A unit that claims more bytes than remain hides what follows.
        let mut broken = stap_a(&[&PPS]);
        broken.extend_from_slice(&[0x00, 0x50, 0x65]);
        assert!(!is_keyframe_start(&broken));
    }

    #[test]
    fn fu_a_start_of_idr_only() {
        let big_idr = [&IDR[..], &[0xaa; 50]].concat();
        assert!(is_keyframe_start(&fu_a(&big_idr, true, false)));
        assert!(is_frame_start(&fu_a(&big_idr, true, false)));
        assert!(!is_keyframe_start(&fu_a(&big_idr, false, false)));
        assert!(!is_keyframe_start(&fu_a(&big_idr, false, true)));
        assert!(!is_frame_start(&fu_a(&big_idr, false, true)));
        let big_p = [&P_SLICE[..], &[0xaa; 50]].concat();
        assert!(!is_keyframe_start(&fu_a(&big_p, true, false)));
        assert!(is_frame_start(&fu_a(&big_p, true, false)));
        assert!(!is_keyframe_start(&[0x7c])); // FU-A without its header
        let second_idr_slice = [&[0x65, 0x40][..], &[0xaa; 50]].concat();
        assert!(!is_keyframe_start(&fu_a(&second_idr_slice, true, false)));
    }
}
