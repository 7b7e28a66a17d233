//! The dependency descriptor RTP header extension (the AV1 RTP specification, appendix A): the
//! mandatory fields of every packet (frame start/end, template id, frame number) and, from the
//! template dependency structure a keyframe carries, each template's spatial and temporal layer.
//! That is what an SFU needs to select AV1 (or any codec's) SVC layers; the rest of the
//! structure (decode target indications, frame diffs, chains, resolutions) is not read.

use super::CodecError;

/// Most templates a structure may define (template ids are 6 bits).
pub const MAX_TEMPLATES: usize = 64;

/// The spatial and temporal layer of each template of a dependency structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TemplateLayers {
    /// `template_id_offset`: template id of the first template.
    pub offset: u8,
    /// Number of templates.
    pub count: u8,
    spatial: [u8; MAX_TEMPLATES],
    temporal: [u8; MAX_TEMPLATES],
}

impl TemplateLayers {
    /// (spatial id, temporal id) of the frames using template `template_id`.
    pub fn layer_of(&self, template_id: u8) -> Option<(u8, u8)> {
        let index = usize::from(template_id.wrapping_add(64).wrapping_sub(self.offset) % 64);
        (index < usize::from(self.count)).then(|| (self.spatial[index], self.temporal[index]))
    }
}

/// The parts of a dependency descriptor an SFU reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DependencyDescriptor {
    pub start_of_frame: bool,
    pub end_of_frame: bool,
    pub template_id: u8,
    pub frame_number: u16,
    /// The template structure, when this packet carries one (keyframes).
    pub structure: Option<TemplateLayers>,
}

/// Reads bits most significant first.
struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Bits<'_> {
    fn read(&mut self, n: usize) -> Result<u32, CodecError> {
        let mut v = 0u32;
        for _ in 0..n {
            let byte = self.data.get(self.pos / 8).ok_or(CodecError::Truncated)?;
            let bit = (byte >> (7 - self.pos % 8)) & 1;
            v = (v << 1) | u32::from(bit);
            self.pos += 1;
        }
        Ok(v)
    }
}

impl DependencyDescriptor {
    /// Parses the extension element's data.
    pub fn parse(data: &[u8]) -> Result<DependencyDescriptor, CodecError> {
        if data.is_empty() {
            return Err(CodecError::Empty);
        }
        if data.len() < 3 {
            return Err(CodecError::Truncated);
        }
        let mut d = DependencyDescriptor {
            start_of_frame: data[0] & 0x80 != 0,
            end_of_frame: data[0] & 0x40 != 0,
            template_id: data[0] & 0x3f,
            frame_number: u16::from_be_bytes([data[1], data[2]]),
            structure: None,
        };
        if data.len() == 3 {
            return Ok(d);
        }
        let mut bits = Bits { data, pos: 24 };
        let structure_present = bits.read(1)? == 1;
        // active_decode_targets_present, custom dtis, custom fdiffs, custom chains.
        bits.read(4)?;
        if structure_present {
            let offset = bits.read(6)? as u8;
            let _dt_cnt_minus_one = bits.read(5)?;
            let mut t = TemplateLayers {
                offset,
                count: 0,
                spatial: [0; MAX_TEMPLATES],
                temporal: [0; MAX_TEMPLATES],
            };
            let (mut sid, mut tid) = (0u8, 0u8);
            loop {
                let i = usize::from(t.count);
                if i == MAX_TEMPLATES {
                    return Err(CodecError::Truncated);
                }
                t.spatial[i] = sid;
                t.temporal[i] = tid;
                t.count += 1;
                match bits.read(2)? {
                    1 => tid = tid.saturating_add(1),
                    2 => {
                        tid = 0;
                        sid = sid.saturating_add(1);
                    }
                    3 => break,
                    _ => {}
                }
            }
            d.structure = Some(t);
        }
        Ok(d)
    }

    /// Offset of the frame number within the extension data (for rewriting it in place).
    pub const FRAME_NUMBER_OFFSET: usize = 1;
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests an unwrap is an assertion
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Writes `bits` (each a (value, width)) most significant first, padded with zeros.
    fn pack(bits: &[(u32, usize)]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut acc = 0u64;
        let mut n = 0;
        for &(v, w) in bits {
            for k in (0..w).rev() {
                acc = (acc << 1) | u64::from((v >> k) & 1);
                n += 1;
                if n == 8 {
                    out.push(acc as u8);
                    acc = 0;
                    n = 0;
                }
            }
        }
        if n > 0 {
            out.push((acc << (8 - n)) as u8);
        }
        out
    }

    #[test]
    fn mandatory_fields_alone() {
        let d = DependencyDescriptor::parse(&[0x80 | 0x05, 0x12, 0x34]).unwrap();
        assert!(d.start_of_frame && !d.end_of_frame);
        assert_eq!((d.template_id, d.frame_number), (5, 0x1234));
        assert!(d.structure.is_none());
        assert_eq!(DependencyDescriptor::parse(&[]), Err(CodecError::Empty));
        assert_eq!(
            DependencyDescriptor::parse(&[1, 2]),
            Err(CodecError::Truncated)
        );
    }

    #[test]
    fn an_l3t3_structure_maps_templates_to_layers() {
        // L3T3-like template layers: S0 T0,T1,T2; S1 T0,T1,T2; S2 T0,T1,T2 — next_layer_idc
        // 1,1,2 / 1,1,2 / 1,1,3. Offset 10, 9 decode targets.
        let mut bits = vec![(1u32, 1), (1, 1), (0x0a, 6), (0x0100, 16)];
        bits.extend([(1, 1), (0, 4), (10, 6), (8, 5)]);
        for idc in [1, 1, 2, 1, 1, 2, 1, 1, 3] {
            bits.push((idc, 2));
        }
        bits.push((0xff, 8)); // the rest of the structure, not read
        let data = pack(&bits);
        let d = DependencyDescriptor::parse(&data).unwrap();
        assert!(d.start_of_frame && d.end_of_frame);
        assert_eq!(d.template_id, 10);
        let t = d.structure.unwrap();
        assert_eq!(t.count, 9);
        assert_eq!(t.layer_of(10), Some((0, 0)));
        assert_eq!(t.layer_of(12), Some((0, 2)));
        assert_eq!(t.layer_of(13), Some((1, 0)));
        assert_eq!(t.layer_of(18), Some((2, 2)));
        assert_eq!(t.layer_of(19), None);
        assert_eq!(t.layer_of(9), None);
    }

    #[test]
    fn template_ids_wrap_around_the_offset() {
        let mut bits = vec![(0u32, 1), (0, 1), (1, 6), (7, 16)];
        bits.extend([(1, 1), (0, 4), (63, 6), (0, 5), (1, 2), (3, 2)]);
        let t = DependencyDescriptor::parse(&pack(&bits))
            .unwrap()
            .structure
            .unwrap();
        assert_eq!(t.layer_of(63), Some((0, 0)));
        assert_eq!(t.layer_of(0), Some((0, 1)));
        assert_eq!(t.layer_of(1), None);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..40)) {
            if let Ok(d) = DependencyDescriptor::parse(&data)
                && let Some(t) = d.structure
            {
                prop_assert!(usize::from(t.count) <= MAX_TEMPLATES);
                for id in 0..64 {
                    let _ = t.layer_of(id);
                }
            }
        }
    }
}
