//! EBML element writing (RFC 8794): variable-length integers, element IDs and the element
//! forms a WebM muxer needs (unsigned integers, floats, strings, binaries, masters, Void).

/// EBML header and the Matroska/WebM element IDs written by the muxer (RFC 9559), with their
/// marker bits, as they appear in the file.
pub mod id {
    pub const EBML: u32 = 0x1A45_DFA3;
    pub const EBML_VERSION: u32 = 0x4286;
    pub const EBML_READ_VERSION: u32 = 0x42F7;
    pub const EBML_MAX_ID_LENGTH: u32 = 0x42F2;
    pub const EBML_MAX_SIZE_LENGTH: u32 = 0x42F3;
    pub const DOC_TYPE: u32 = 0x4282;
    pub const DOC_TYPE_VERSION: u32 = 0x4287;
    pub const DOC_TYPE_READ_VERSION: u32 = 0x4285;
    pub const VOID: u32 = 0xEC;
    pub const SEGMENT: u32 = 0x1853_8067;
    pub const SEEK_HEAD: u32 = 0x114D_9B74;
    pub const SEEK: u32 = 0x4DBB;
    pub const SEEK_ID: u32 = 0x53AB;
    pub const SEEK_POSITION: u32 = 0x53AC;
    pub const INFO: u32 = 0x1549_A966;
    pub const TIMESTAMP_SCALE: u32 = 0x2A_D7B1;
    pub const DURATION: u32 = 0x4489;
    pub const MUXING_APP: u32 = 0x4D80;
    pub const WRITING_APP: u32 = 0x5741;
    pub const TRACKS: u32 = 0x1654_AE6B;
    pub const TRACK_ENTRY: u32 = 0xAE;
    pub const TRACK_NUMBER: u32 = 0xD7;
    pub const TRACK_UID: u32 = 0x73C5;
    pub const TRACK_TYPE: u32 = 0x83;
    pub const FLAG_LACING: u32 = 0x9C;
    pub const CODEC_ID: u32 = 0x86;
    pub const CODEC_PRIVATE: u32 = 0x63A2;
    pub const CODEC_DELAY: u32 = 0x56AA;
    pub const SEEK_PRE_ROLL: u32 = 0x56BB;
    pub const VIDEO: u32 = 0xE0;
    pub const PIXEL_WIDTH: u32 = 0xB0;
    pub const PIXEL_HEIGHT: u32 = 0xBA;
    pub const AUDIO: u32 = 0xE1;
    pub const SAMPLING_FREQUENCY: u32 = 0xB5;
    pub const CHANNELS: u32 = 0x9F;
    pub const CLUSTER: u32 = 0x1F43_B675;
    pub const TIMESTAMP: u32 = 0xE7;
    pub const SIMPLE_BLOCK: u32 = 0xA3;
    pub const CUES: u32 = 0x1C53_BB6B;
    pub const CUE_POINT: u32 = 0xBB;
    pub const CUE_TIME: u32 = 0xB3;
    pub const CUE_TRACK_POSITIONS: u32 = 0xB7;
    pub const CUE_TRACK: u32 = 0xF7;
    pub const CUE_CLUSTER_POSITION: u32 = 0xF1;
}

/// The 8-byte element size that means "unknown" (all value bits set).
pub const UNKNOWN_SIZE: [u8; 8] = [0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];

/// Largest value an 8-byte size can hold (all ones is reserved for "unknown").
pub const MAX_SIZE: u64 = (1 << 56) - 2;

/// Appends an element ID (1 to 4 bytes, marker bits included in `id`).
pub fn put_id(buf: &mut Vec<u8>, id: u32) {
    let bytes = id.to_be_bytes();
    let skip = (id.leading_zeros() / 8) as usize;
    buf.extend_from_slice(&bytes[skip.min(3)..]);
}

/// Number of bytes the shortest size vint for `size` takes.
pub fn size_len(size: u64) -> usize {
    // A vint of n bytes holds 7n value bits; the all-ones value is reserved.
    (1..=8).find(|&n| size < (1u64 << (7 * n)) - 1).unwrap_or(8)
}

/// Appends `size` as the shortest EBML variable-length integer.
pub fn put_size(buf: &mut Vec<u8>, size: u64) {
    put_size_fixed(buf, size, size_len(size));
}

/// Appends `size` as an EBML variable-length integer of exactly `len` bytes (1..=8). The caller
/// makes sure it fits.
pub fn put_size_fixed(buf: &mut Vec<u8>, size: u64, len: usize) {
    buf.extend_from_slice(&size_fixed(size, len)[..len]);
}

/// `size` as an EBML variable-length integer of exactly `len` bytes (1..=8), in the first `len`
/// bytes of the array.
pub fn size_fixed(size: u64, len: usize) -> [u8; 8] {
    let len = len.clamp(1, 8);
    let marked = size | (1u64 << (7 * len));
    let be = marked.to_be_bytes();
    let mut out = [0u8; 8];
    out[..len].copy_from_slice(&be[8 - len..]);
    out
}

/// Appends an unsigned integer element in the fewest bytes (at least one).
pub fn put_uint(buf: &mut Vec<u8>, id: u32, v: u64) {
    let n = (8 - (v.leading_zeros() / 8) as usize).max(1);
    put_id(buf, id);
    put_size(buf, n as u64);
    buf.extend_from_slice(&v.to_be_bytes()[8 - n..]);
}

/// Appends an unsigned integer element whose value takes exactly `len` bytes (so that it can be
/// rewritten in place later); returns the offset of the value inside `buf`.
pub fn put_uint_fixed(buf: &mut Vec<u8>, id: u32, v: u64, len: usize) -> usize {
    put_id(buf, id);
    put_size(buf, len as u64);
    let at = buf.len();
    buf.extend_from_slice(&v.to_be_bytes()[8 - len..]);
    at
}

/// Appends an 8-byte float element.
pub fn put_float(buf: &mut Vec<u8>, id: u32, v: f64) {
    put_id(buf, id);
    put_size(buf, 8);
    buf.extend_from_slice(&v.to_be_bytes());
}

/// Appends a binary (or string) element.
pub fn put_bytes(buf: &mut Vec<u8>, id: u32, data: &[u8]) {
    put_id(buf, id);
    put_size(buf, data.len() as u64);
    buf.extend_from_slice(data);
}

/// Opens a master element with an 8-byte size to be filled by [`end_master`]; returns the
/// offset of that size.
pub fn start_master(buf: &mut Vec<u8>, id: u32) -> usize {
    put_id(buf, id);
    let at = buf.len();
    buf.extend_from_slice(&UNKNOWN_SIZE);
    at
}

/// Closes the master element whose size sits at `size_at`: its size is everything after it.
pub fn end_master(buf: &mut [u8], size_at: usize) {
    let size = (buf.len() - size_at - 8) as u64;
    buf[size_at..size_at + 8].copy_from_slice(&size_fixed(size, 8));
}

/// Appends a Void element that takes exactly `total` bytes (at least 2) of the file.
pub fn put_void(buf: &mut Vec<u8>, total: usize) {
    debug_assert!(total >= 2, "a Void element takes at least 2 bytes");
    put_id(buf, id::VOID);
    // One byte of ID; the size takes the rest of the header.
    let len = if total - 1 <= 127 { 1 } else { 8 };
    let data = total.saturating_sub(1 + len);
    put_size_fixed(buf, data as u64, len);
    buf.resize(buf.len() + data, 0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_written_in_their_own_length() {
        let mut b = Vec::new();
        put_id(&mut b, id::SIMPLE_BLOCK);
        put_id(&mut b, id::DURATION);
        put_id(&mut b, id::TIMESTAMP_SCALE);
        put_id(&mut b, id::SEGMENT);
        assert_eq!(
            b,
            [0xA3, 0x44, 0x89, 0x2A, 0xD7, 0xB1, 0x18, 0x53, 0x80, 0x67]
        );
    }

    #[test]
    fn sizes_take_the_shortest_vint_and_avoid_the_reserved_all_ones() {
        let enc = |v| {
            let mut b = Vec::new();
            put_size(&mut b, v);
            b
        };
        assert_eq!(enc(0), [0x80]);
        assert_eq!(enc(126), [0xFE]);
        // 127 in one byte would be all ones (unknown size).
        assert_eq!(enc(127), [0x40, 0x7F]);
        assert_eq!(enc(16_382), [0x7F, 0xFE]);
        assert_eq!(enc(16_383), [0x20, 0x3F, 0xFF]);
        assert_eq!(size_fixed(5, 8), [0x01, 0, 0, 0, 0, 0, 0, 5]);
    }

    #[test]
    fn uints_take_the_fewest_bytes() {
        let mut b = Vec::new();
        put_uint(&mut b, id::TRACK_NUMBER, 0);
        put_uint(&mut b, id::TIMESTAMP_SCALE, 1_000_000);
        assert_eq!(
            b,
            [0xD7, 0x81, 0x00, 0x2A, 0xD7, 0xB1, 0x83, 0x0F, 0x42, 0x40]
        );
    }

    #[test]
    fn voids_fill_exactly_the_space_asked() {
        for total in [2, 3, 11, 128, 129, 130, 1000] {
            let mut b = vec![0xAA];
            put_void(&mut b, total);
            assert_eq!(b.len(), 1 + total, "total {total}");
            assert_eq!(b[1], 0xEC);
        }
    }

    #[test]
    fn masters_get_the_size_of_their_children() {
        let mut b = Vec::new();
        let at = start_master(&mut b, id::VIDEO);
        put_uint(&mut b, id::PIXEL_WIDTH, 320);
        end_master(&mut b, at);
        assert_eq!(b, [0xE0, 1, 0, 0, 0, 0, 0, 0, 4, 0xB0, 0x82, 0x01, 0x40]);
    }
}
