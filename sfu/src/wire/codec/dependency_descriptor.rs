//! The dependency descriptor RTP header extension (the AV1 RTP specification, appendix A): the
//! mandatory fields of every packet (frame start/end, template id, frame number) and, from the
//! template dependency structure a keyframe carries, each template's spatial and temporal layer
//! and its decode target indications (which decode targets a frame of the template is a switch
//! point for), and each spatial layer's render height when the structure gives resolutions. That
//! is what an SFU needs to select AV1 (or any codec's) SVC layers; frame diffs and chains are
//! read past, not kept.

use super::CodecError;

/// Most templates a structure may define (template ids are 6 bits).
pub const MAX_TEMPLATES: usize = 64;

/// Most spatial layers whose resolutions are kept (spatial ids 0–3).
pub const MAX_SPATIAL: usize = 4;

/// Most decode targets a structure may define (`dt_cnt_minus_one` is 5 bits).
pub const MAX_DECODE_TARGETS: usize = 32;

/// Decode target indication "Switch" (appendix A.8.3): from a frame with it, every later frame
/// of the decode target is decodable by a receiver that had the target's lower layers.
const DTI_SWITCH: u64 = 2;

/// The layer a decode target or a template belongs to, as one bit of a [`LayerSet`]: spatial id
/// 0–3, temporal id 0–7.
fn layer_bit(sid: u8, tid: u8) -> u32 {
    if sid < 4 && tid < 8 {
        1 << (sid * 8 + tid)
    } else {
        0
    }
}

/// A set of (spatial, temporal) layers, one bit each (spatial ids 0–3, temporal ids 0–7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LayerSet(pub u32);

impl LayerSet {
    /// Whether the set holds the layer (`sid`, `tid`).
    pub fn contains(self, sid: u8, tid: u8) -> bool {
        self.0 & layer_bit(sid, tid) != 0
    }
}

/// The spatial and temporal layer of each template of a dependency structure, and the layers
/// whose decode targets each template is a switch point for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TemplateLayers {
    /// `template_id_offset`: template id of the first template.
    pub offset: u8,
    /// Number of templates.
    pub count: u8,
    spatial: [u8; MAX_TEMPLATES],
    temporal: [u8; MAX_TEMPLATES],
    switch: [LayerSet; MAX_TEMPLATES],
    /// Render height of each spatial layer (`max_render_height_minus_1 + 1`), 0 when the
    /// structure gives no resolutions.
    heights: [u16; MAX_SPATIAL],
}

impl TemplateLayers {
    fn index(&self, template_id: u8) -> Option<usize> {
        let index = usize::from(template_id.wrapping_add(64).wrapping_sub(self.offset) % 64);
        (index < usize::from(self.count)).then_some(index)
    }

    /// (spatial id, temporal id) of the frames using template `template_id`.
    pub fn layer_of(&self, template_id: u8) -> Option<(u8, u8)> {
        self.index(template_id)
            .map(|i| (self.spatial[i], self.temporal[i]))
    }

    /// The layers (of decode targets) that a frame of template `template_id` is a switch point
    /// for: a receiver decoding the layers below one of them may start decoding it from here.
    /// A decode target's layer is the highest spatial and temporal id among the templates it
    /// uses (appendix A.8.4).
    pub fn switch_points_of(&self, template_id: u8) -> LayerSet {
        self.index(template_id)
            .map_or(LayerSet::default(), |i| self.switch[i])
    }

    /// The render height of spatial layer `sid`, when the structure gives resolutions.
    pub fn spatial_height(&self, sid: u8) -> Option<u16> {
        self.heights
            .get(usize::from(sid))
            .copied()
            .filter(|&h| h > 0)
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
    /// The packet overrides its template's decode target indications (`custom_dtis_flag`):
    /// the template's switch points do not apply to it.
    pub custom_dtis: bool,
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

    /// `ns(n)`: a non-symmetric unsigned value below `n` (the AV1 specification, 4.10.7).
    fn ns(&mut self, n: u32) -> Result<u32, CodecError> {
        let w = 32 - n.leading_zeros() as usize;
        if w == 0 {
            return Ok(0);
        }
        let m = (1u32 << w) - n;
        let v = self.read(w - 1)?;
        if v < m {
            return Ok(v);
        }
        let extra = self.read(1)?;
        Ok((v << 1) - m + extra)
    }
}

/// Reads past the template frame diffs and chains of a structure and, when present, its
/// resolutions (appendix A.4: `template_fdiffs`, `template_chains`, `render_resolutions`):
/// the height of each spatial layer up to `max_sid`.
fn read_heights(
    bits: &mut Bits<'_>,
    templates: usize,
    dt_count: usize,
    max_sid: u8,
) -> Result<[u16; MAX_SPATIAL], CodecError> {
    for _ in 0..templates {
        while bits.read(1)? == 1 {
            bits.read(4)?; // fdiff_minus_one
        }
    }
    let chains = bits.ns(dt_count as u32 + 1)?;
    if chains > 0 {
        for _ in 0..dt_count {
            bits.ns(chains)?; // decode_target_protected_by
        }
        for _ in 0..templates * chains as usize {
            bits.read(4)?; // template_chain_fdiff
        }
    }
    let mut heights = [0u16; MAX_SPATIAL];
    if bits.read(1)? == 1 {
        for sid in 0..=usize::from(max_sid) {
            let _width = bits.read(16)?;
            let height = bits.read(16)? as u16;
            if let Some(h) = heights.get_mut(sid) {
                *h = height.saturating_add(1);
            }
        }
    }
    Ok(heights)
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
            custom_dtis: false,
        };
        if data.len() == 3 {
            return Ok(d);
        }
        let mut bits = Bits { data, pos: 24 };
        let structure_present = bits.read(1)? == 1;
        let _active_decode_targets_present = bits.read(1)?;
        d.custom_dtis = bits.read(1)? == 1;
        // custom fdiffs, custom chains.
        bits.read(2)?;
        if structure_present {
            let offset = bits.read(6)? as u8;
            let dt_count = bits.read(5)? as usize + 1;
            let mut t = TemplateLayers {
                offset,
                count: 0,
                spatial: [0; MAX_TEMPLATES],
                temporal: [0; MAX_TEMPLATES],
                switch: [LayerSet::default(); MAX_TEMPLATES],
                heights: [0; MAX_SPATIAL],
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
            // template_dtis: 2 bits per decode target, per template.
            let templates = usize::from(t.count);
            let mut dtis = [0u64; MAX_TEMPLATES];
            for dti in dtis.iter_mut().take(templates) {
                for dt in 0..dt_count {
                    *dti |= u64::from(bits.read(2)?) << (2 * dt);
                }
            }
            // Each decode target's layer: the highest ids among the templates it uses.
            let dtis = &dtis[..templates];
            let mut target_layer = [(0u8, 0u8); MAX_DECODE_TARGETS];
            for (dt, layer) in target_layer.iter_mut().enumerate().take(dt_count) {
                for ((&dti, &sid), &tid) in dtis.iter().zip(&t.spatial).zip(&t.temporal) {
                    if (dti >> (2 * dt)) & 3 != 0 {
                        layer.0 = layer.0.max(sid);
                        layer.1 = layer.1.max(tid);
                    }
                }
            }
            for (&dti, switch) in dtis.iter().zip(t.switch.iter_mut()) {
                for (dt, &(sid, tid)) in target_layer.iter().enumerate().take(dt_count) {
                    if (dti >> (2 * dt)) & 3 == DTI_SWITCH {
                        switch.0 |= layer_bit(sid, tid);
                    }
                }
            }
            // What follows is optional to an SFU: a structure cut after its DTIs still gives
            // layers and switch points, without heights.
            let max_sid = t.spatial[..templates].iter().copied().max().unwrap_or(0);
            if let Ok(h) = read_heights(&mut bits, templates, dt_count, max_sid) {
                t.heights = h;
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
pub(crate) mod tests {
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
        // L3T3_KEY-like template layers: S0 T0,T1,T2; S1 T0,T1,T2; S2 T0,T1,T2 — next_layer_idc
        // 1,1,2 / 1,1,2 / 1,1,3. Offset 10, 9 decode targets.
        let mut bits = vec![(1u32, 1), (1, 1), (0x0a, 6), (0x0100, 16)];
        bits.extend([(1, 1), (0, 4), (10, 6), (8, 5)]);
        for idc in [1, 1, 2, 1, 1, 2, 1, 1, 3] {
            bits.push((idc, 2));
        }
        bits.extend(key_svc_dtis());
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

    /// The decode target indications of libwebrtc's L3T3_KEY delta frames: decode target
    /// `3 * s + t` uses only spatial layer `s`; a frame is discardable for its own temporal
    /// layer above the base and a switch point for the decode targets of higher temporal layers.
    fn key_svc_dtis() -> Vec<(u32, usize)> {
        let mut bits = Vec::new();
        for (fs, ft) in (0..3).flat_map(|s| (0..3).map(move |t| (s, t))) {
            for (s, t) in (0..3).flat_map(|s| (0..3).map(move |t| (s, t))) {
                let dti = if s != fs || t < ft {
                    0
                } else if t == ft && t > 0 {
                    1
                } else {
                    2
                };
                bits.push((dti, 2));
            }
        }
        bits
    }

    /// A key frame's descriptor with libwebrtc's L3T3_KEY structure in full: template layers,
    /// DTIs, frame diffs (one, on the last template), 3 chains, and resolutions 320x180,
    /// 640x360 and 1280x720; the bits, for [`pack`].
    pub(crate) fn l3t3_key_bits_with_resolutions() -> Vec<(u32, usize)> {
        // The L3T3 structure, then: no fdiffs for 8 templates and one (fdiff 1) for the
        // last; 3 chains (ns(10) = 3: 3 bits, value 3); each of 9 decode targets protected by
        // chain 0..2 (ns(3)); 9 x 3 chain fdiffs of 4 bits; resolutions 320x180, 640x360,
        // 1280x720.
        let mut bits = vec![(1u32, 1), (0, 1), (0, 6), (0x0100, 16)];
        bits.extend([(1, 1), (0, 4), (0, 6), (8, 5)]);
        for idc in [1, 1, 2, 1, 1, 2, 1, 1, 3] {
            bits.push((idc, 2));
        }
        bits.extend(key_svc_dtis());
        for _ in 0..8 {
            bits.push((0, 1));
        }
        bits.extend([(1, 1), (0, 4), (0, 1)]);
        bits.push((3, 3)); // ns(10): w = 4, m = 6, 3 bits = 3 < 6
        for dt in 0..9u32 {
            // ns(3): w = 2, m = 1: value 0 is "0"; 1 is "1 0"; 2 is "1 1".
            match dt / 3 {
                0 => bits.push((0, 1)),
                1 => bits.extend([(1, 1), (0, 1)]),
                _ => bits.extend([(1, 1), (1, 1)]),
            }
        }
        for _ in 0..27 {
            bits.push((1, 4));
        }
        bits.push((1, 1));
        for (w, h) in [(320u32, 180u32), (640, 360), (1280, 720)] {
            bits.extend([(w - 1, 16), (h - 1, 16)]);
        }
        bits
    }

    /// [`l3t3_key_bits_with_resolutions`] as extension data.
    pub(crate) fn l3t3_key_with_resolutions() -> Vec<u8> {
        pack(&l3t3_key_bits_with_resolutions())
    }

    #[test]
    fn render_resolutions_give_each_spatial_layers_height() {
        let bits = l3t3_key_bits_with_resolutions();
        let t = DependencyDescriptor::parse(&pack(&bits))
            .unwrap()
            .structure
            .unwrap();
        assert_eq!(t.spatial_height(0), Some(180));
        assert_eq!(t.spatial_height(1), Some(360));
        assert_eq!(t.spatial_height(2), Some(720));
        assert_eq!(t.spatial_height(3), None);
        // Cut inside the resolutions: layers and switch points stay, heights are unknown.
        let mut cut = pack(&bits);
        cut.truncate(cut.len() - 6);
        let t = DependencyDescriptor::parse(&cut)
            .unwrap()
            .structure
            .unwrap();
        assert_eq!(t.layer_of(8), Some((2, 2)));
        assert_eq!(t.spatial_height(0), None);
    }

    #[test]
    fn decode_target_indications_give_temporal_switch_points() {
        let mut bits = vec![(1u32, 1), (0, 1), (0, 6), (0x0100, 16)];
        bits.extend([(1, 1), (0, 4), (0, 6), (8, 5)]);
        for idc in [1, 1, 2, 1, 1, 2, 1, 1, 3] {
            bits.push((idc, 2));
        }
        bits.extend(key_svc_dtis());
        let t = DependencyDescriptor::parse(&pack(&bits))
            .unwrap()
            .structure
            .unwrap();
        // S1T0 (template 3): a switch point for S1's every temporal layer, nothing else.
        let s1t0 = t.switch_points_of(3);
        assert!(s1t0.contains(1, 0) && s1t0.contains(1, 1) && s1t0.contains(1, 2));
        assert!(!s1t0.contains(0, 2) && !s1t0.contains(2, 2));
        // S2T1 (template 7): a switch point for S2T2 only.
        let s2t1 = t.switch_points_of(7);
        assert!(s2t1.contains(2, 2) && !s2t1.contains(2, 1));
        // S0T2 (template 2): discardable, no switch point.
        assert_eq!(t.switch_points_of(2), LayerSet::default());
        assert_eq!(t.switch_points_of(40), LayerSet::default());
    }

    #[test]
    fn a_structure_cut_before_its_dtis_is_truncated() {
        let mut bits = vec![(1u32, 1), (0, 1), (0, 6), (7, 16)];
        bits.extend([(1, 1), (0, 4), (0, 6), (1, 5), (1, 2), (3, 2)]);
        assert_eq!(
            DependencyDescriptor::parse(&pack(&bits)),
            Err(CodecError::Truncated)
        );
    }

    #[test]
    fn custom_dtis_flag_is_read() {
        let d = DependencyDescriptor::parse(&pack(&[(0u32, 8), (0, 16), (0b00100, 5)])).unwrap();
        assert!(d.custom_dtis && d.structure.is_none());
    }

    #[test]
    fn template_ids_wrap_around_the_offset() {
        let mut bits = vec![(0u32, 1), (0, 1), (1, 6), (7, 16)];
        bits.extend([(1, 1), (0, 4), (63, 6), (0, 5), (1, 2), (3, 2)]);
        // One decode target (L1T2): T0 a switch point, T1 discardable.
        bits.extend([(2, 2), (1, 2)]);
        let t = DependencyDescriptor::parse(&pack(&bits))
            .unwrap()
            .structure
            .unwrap();
        assert_eq!(t.layer_of(63), Some((0, 0)));
        assert_eq!(t.layer_of(0), Some((0, 1)));
        assert_eq!(t.layer_of(1), None);
        assert!(t.switch_points_of(63).contains(0, 1));
        assert_eq!(t.switch_points_of(0), LayerSet::default());
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
