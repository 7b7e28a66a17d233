//! AV1 RTP payloads (AV1 RTP payload specification §4.4): the aggregation header and the first
//! OBU element.

/// OBU types (AV1 bitstream specification §6.2.2).
pub const OBU_SEQUENCE_HEADER: u8 = 1;
pub const OBU_TEMPORAL_DELIMITER: u8 = 2;
pub const OBU_FRAME_HEADER: u8 = 3;
pub const OBU_TILE_GROUP: u8 = 4;
pub const OBU_METADATA: u8 = 5;
pub const OBU_FRAME: u8 = 6;

/// The aggregation header |Z|Y|W W|N|-|-|-|.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AggregationHeader {
    /// Z: the first OBU element continues one from the previous packet.
    pub continuation: bool,
    /// Y: the last OBU element continues in the next packet.
    pub continues: bool,
    /// W: number of OBU elements (0: each has a length field).
    pub element_count: u8,
    /// N: first packet of a coded video sequence.
    pub new_sequence: bool,
}

impl AggregationHeader {
    pub fn parse(b: u8) -> Self {
        AggregationHeader {
            continuation: b & 0x80 != 0,
            continues: b & 0x40 != 0,
            element_count: (b >> 4) & 0x03,
            new_sequence: b & 0x08 != 0,
        }
    }
}

/// Skips a LEB128 value; returns the bytes it took.
fn leb128_len(b: &[u8]) -> Option<usize> {
    b.iter().take(8).position(|x| x & 0x80 == 0).map(|i| i + 1)
}

/// The OBU type of the first OBU element that starts in this packet (not a continuation).
pub fn first_obu_type(payload: &[u8]) -> Option<u8> {
    let (&h, rest) = payload.split_first()?;
    let agg = AggregationHeader::parse(h);
    if agg.continuation {
        return None;
    }
    // With W = 1 the only element has no length field; otherwise the first one has.
    let obu = if agg.element_count == 1 {
        rest
    } else {
        rest.get(leb128_len(rest)?..)?
    };
    let &obu_header = obu.first()?;
    if obu_header & 0x80 != 0 {
        return None; // forbidden bit
    }
    Some((obu_header >> 3) & 0x0f)
}

/// True for the first packet of a keyframe: N set and the packet does not continue an OBU.
pub fn is_keyframe_start(payload: &[u8]) -> bool {
    payload.first().is_some_and(|&b| {
        let agg = AggregationHeader::parse(b);
        agg.new_sequence && !agg.continuation
    })
}

/// True for the first packet of a frame: a keyframe start, or a packet whose first OBU starts
/// here and is a sequence header, temporal delimiter, metadata, frame header or frame OBU (not a
/// tile group).
pub fn is_frame_start(payload: &[u8]) -> bool {
    is_keyframe_start(payload)
        || matches!(
            first_obu_type(payload),
            Some(
                OBU_SEQUENCE_HEADER
                    | OBU_TEMPORAL_DELIMITER
                    | OBU_FRAME_HEADER
                    | OBU_METADATA
                    | OBU_FRAME
            )
        )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests an unwrap is an assertion
mod tests {
    use super::*;

    /// An OBU header byte of `t` with has_size_field clear.
    fn obu(t: u8) -> u8 {
        t << 3
    }

    #[test]
    fn new_sequence_without_continuation_is_a_keyframe_start() {
        // W = 1, N = 1: a sequence header OBU.
        let p = [0x18, obu(OBU_SEQUENCE_HEADER), 0x00, 0x00];
        assert!(is_keyframe_start(&p) && is_frame_start(&p));
        // W = 2, N = 1: first element (length 2) is a sequence header, then a frame.
        let p = [
            0x28,
            0x02,
            obu(OBU_SEQUENCE_HEADER),
            0x00,
            obu(OBU_FRAME),
            0x10,
        ];
        assert!(is_keyframe_start(&p));
        assert_eq!(first_obu_type(&p), Some(OBU_SEQUENCE_HEADER));
        // N = 1 but Z = 1: not the start.
        assert!(!is_keyframe_start(&[0x98, 0x00]));
    }

    #[test]
    fn frame_starts_follow_the_first_obu() {
        // W = 0 (length fields), N = 0: a frame OBU of 300 bytes (LEB128 0xac 0x02).
        let mut p = vec![0x00, 0xac, 0x02, obu(OBU_FRAME)];
        p.extend_from_slice(&[0u8; 299]);
        assert!(is_frame_start(&p) && !is_keyframe_start(&p));
        // A tile group does not start a frame.
        assert!(!is_frame_start(&[0x10, obu(OBU_TILE_GROUP), 0x00]));
        // A continuation does not.
        assert!(!is_frame_start(&[0x90, obu(OBU_FRAME), 0x00]));
        // Truncated LEB128.
        assert!(!is_frame_start(&[0x00, 0x80]));
        // Forbidden bit set.
        assert!(!is_frame_start(&[0x10, 0x80 | obu(OBU_FRAME)]));
    }
}
