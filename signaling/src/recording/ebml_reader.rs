//! A minimal EBML reader (RFC 8794) for tests: walks elements so that tests can check what the
//! muxer wrote.

use super::ebml::id;

/// One element: its ID, where it starts and its content.
#[derive(Debug, Clone, Copy)]
pub struct Element<'a> {
    pub id: u32,
    /// Offset of the element's ID within the buffer handed to [`elements`] at the top level.
    pub offset: usize,
    /// Offset of the content.
    pub data_offset: usize,
    pub data: &'a [u8],
    /// The size field said "unknown" (the content runs to the end of the parent).
    pub unknown_size: bool,
}

fn read_id(buf: &[u8], pos: usize) -> Option<(u32, usize)> {
    let b0 = *buf.get(pos)?;
    let len = b0.leading_zeros() as usize + 1;
    if len > 4 {
        return None;
    }
    let bytes = buf.get(pos..pos + len)?;
    Some((
        bytes.iter().fold(0u32, |a, &b| (a << 8) | u32::from(b)),
        len,
    ))
}

fn read_size(buf: &[u8], pos: usize) -> Option<(Option<u64>, usize)> {
    let b0 = *buf.get(pos)?;
    let len = b0.leading_zeros() as usize + 1;
    if len > 8 {
        return None;
    }
    let bytes = buf.get(pos..pos + len)?;
    let mask = if len == 8 { 0 } else { 0xFFu8 >> len };
    let mut v = u64::from(b0 & mask);
    for &b in &bytes[1..] {
        v = (v << 8) | u64::from(b);
    }
    let all_ones = (1u64 << (7 * len)) - 1;
    Some(((v != all_ones).then_some(v), len))
}

/// The elements that follow each other in `buf[start..end]`; `None` when they do not parse.
pub fn elements_at(buf: &[u8], start: usize, end: usize) -> Option<Vec<Element<'_>>> {
    let mut out = Vec::new();
    let mut pos = start;
    while pos < end {
        let (eid, il) = read_id(buf, pos)?;
        let (size, sl) = read_size(buf, pos + il)?;
        let data_offset = pos + il + sl;
        let data_end = match size {
            Some(s) => data_offset.checked_add(usize::try_from(s).ok()?)?,
            None => end,
        };
        if data_end > end {
            return None;
        }
        out.push(Element {
            id: eid,
            offset: pos,
            data_offset,
            data: &buf[data_offset..data_end],
            unknown_size: size.is_none(),
        });
        pos = data_end;
    }
    Some(out)
}

/// The elements of a whole buffer.
pub fn elements(buf: &[u8]) -> Option<Vec<Element<'_>>> {
    elements_at(buf, 0, buf.len())
}

impl<'a> Element<'a> {
    /// The children of a master element, with offsets relative to the same top-level buffer.
    pub fn children(&self, top: &'a [u8]) -> Vec<Element<'a>> {
        elements_at(top, self.data_offset, self.data_offset + self.data.len())
            .unwrap_or_else(|| panic!("children of {:#x} do not parse", self.id))
    }

    /// The content as an unsigned integer.
    pub fn uint(&self) -> u64 {
        self.data.iter().fold(0u64, |a, &b| (a << 8) | u64::from(b))
    }

    /// The content as a float (4 or 8 bytes).
    pub fn float(&self) -> f64 {
        match self.data.len() {
            4 => f64::from(f32::from_be_bytes(self.data.try_into().unwrap_or([0; 4]))),
            _ => f64::from_be_bytes(self.data.try_into().unwrap_or([0; 8])),
        }
    }
}

/// The first element with this ID.
pub fn find<'a, 'b>(els: &'b [Element<'a>], eid: u32) -> Option<&'b Element<'a>> {
    els.iter().find(|e| e.id == eid)
}

/// Every element with this ID.
pub fn find_all<'a>(els: &[Element<'a>], eid: u32) -> Vec<Element<'a>> {
    els.iter().filter(|e| e.id == eid).copied().collect()
}

/// A SimpleBlock's fields: track number, relative timestamp, keyframe flag, frame data.
pub fn simple_block<'a>(e: &Element<'a>) -> (u64, i16, bool, &'a [u8]) {
    assert_eq!(e.id, id::SIMPLE_BLOCK);
    let (track, tl) = read_size(e.data, 0).expect("block track number");
    let track = track.expect("track number is not all ones");
    let rel = i16::from_be_bytes([e.data[tl], e.data[tl + 1]]);
    let key = e.data[tl + 2] & 0x80 != 0;
    (track, rel, key, &e.data[tl + 3..])
}

/// A parsed WebM file: the segment's top-level children and the file.
#[derive(Debug)]
pub struct Parsed<'a> {
    pub file: &'a [u8],
    pub segment: Element<'a>,
    pub top: Vec<Element<'a>>,
}

impl<'a> Parsed<'a> {
    /// Parses the EBML header and the segment's children; panics when the file is not EBML.
    pub fn new(file: &'a [u8]) -> Parsed<'a> {
        let top = elements(file).expect("file parses as EBML");
        assert_eq!(top[0].id, id::EBML, "starts with the EBML header");
        let segment = *find(&top, id::SEGMENT).expect("a Segment");
        let children = segment.children(file);
        Parsed {
            file,
            segment,
            top: children,
        }
    }

    /// The first child of the segment with this ID.
    pub fn child(&self, eid: u32) -> Option<&Element<'a>> {
        find(&self.top, eid)
    }

    /// Every block as (track, absolute time ms, keyframe, data), in file order.
    pub fn blocks(&self) -> Vec<(u64, i64, bool, &'a [u8])> {
        let mut out = Vec::new();
        for c in find_all(&self.top, id::CLUSTER) {
            let kids = c.children(self.file);
            let ts = find(&kids, id::TIMESTAMP)
                .expect("cluster timestamp")
                .uint() as i64;
            for b in find_all(&kids, id::SIMPLE_BLOCK) {
                let (t, rel, key, data) = simple_block(&b);
                out.push((t, ts + i64::from(rel), key, data));
            }
        }
        out
    }
}
