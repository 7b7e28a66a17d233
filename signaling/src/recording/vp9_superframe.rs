//! VP9 superframes (VP9 bitstream specification, Annex B): several frames in one chunk of data
//! followed by an index of their sizes. Used to carry the spatial-layer frames of one picture
//! as one WebM block, and to find the frames inside such a block.

/// Most frames a superframe index lists (3 bits of count).
pub const MAX_FRAMES: usize = 8;

/// The frames of a superframe, or the data itself as one frame when it carries no valid index.
pub fn frames(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let parsed = index(data);
    let mut rest = match parsed {
        Some((_, body)) => &data[..body],
        None => data,
    };
    let mut i = 0usize;
    std::iter::from_fn(move || {
        let (sizes, _) = match parsed {
            Some(p) => p,
            None => {
                if i > 0 || rest.is_empty() {
                    return None;
                }
                i = 1;
                return Some(rest);
            }
        };
        let size = sizes.get(i).copied().flatten()?;
        i += 1;
        let (f, r) = rest.split_at(size.min(rest.len()));
        rest = r;
        (!f.is_empty()).then_some(f)
    })
}

type Sizes = [Option<usize>; MAX_FRAMES];

/// Parses the index at the end of `data`: the frame sizes and where the index starts. `None`
/// when there is no index or it does not describe the data (sizes beyond the data, a zero
/// size, mismatched marker bytes).
pub fn index(data: &[u8]) -> Option<(Sizes, usize)> {
    let &marker = data.last()?;
    if marker & 0xE0 != 0xC0 {
        return None;
    }
    let count = usize::from(marker & 0x07) + 1;
    let mag = usize::from((marker >> 3) & 0x03) + 1;
    let index_len = 2 + mag * count;
    let start = data.len().checked_sub(index_len)?;
    if data[start] != marker {
        return None;
    }
    let mut sizes: Sizes = [None; MAX_FRAMES];
    let mut total = 0usize;
    for (k, chunk) in data[start + 1..start + 1 + mag * count]
        .chunks_exact(mag)
        .enumerate()
    {
        let size = chunk
            .iter()
            .rev()
            .fold(0usize, |a, &b| (a << 8) | usize::from(b));
        if size == 0 {
            return None;
        }
        total = total.checked_add(size)?;
        sizes[k] = Some(size);
    }
    (total <= start).then_some((sizes, start))
}

/// Appends a superframe index for frames of these sizes (1 to [`MAX_FRAMES`]); returns false
/// (and writes nothing) for a count or size it cannot describe.
pub fn put_index(out: &mut Vec<u8>, sizes: &[usize]) -> bool {
    if sizes.is_empty() || sizes.len() > MAX_FRAMES {
        return false;
    }
    let largest = sizes.iter().copied().max().unwrap_or(0);
    let mag = match largest {
        0..=0xFF => 1,
        0x100..=0xFFFF => 2,
        0x1_0000..=0xFF_FFFF => 3,
        0x100_0000..=0xFFFF_FFFF => 4,
        _ => return false,
    };
    let marker = 0xC0 | ((mag as u8 - 1) << 3) | (sizes.len() as u8 - 1);
    out.push(marker);
    for &s in sizes {
        out.extend_from_slice(&(s as u32).to_le_bytes()[..mag]);
    }
    out.push(marker);
    true
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests an unwrap is an assertion
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn index_round_trips_through_frames() {
        let a = vec![0x82u8; 300];
        let b = vec![0x86u8; 20];
        let mut data = [a.clone(), b.clone()].concat();
        assert!(put_index(&mut data, &[a.len(), b.len()]));
        // 300 needs 2 bytes per size: marker, 2 x 2 bytes, marker.
        assert_eq!(data.len(), 320 + 6);
        assert_eq!(data[320], 0b1100_1001);
        let got: Vec<&[u8]> = frames(&data).collect();
        assert_eq!(got, [&a[..], &b[..]]);
    }

    #[test]
    fn data_without_index_is_one_frame() {
        let data = [0x82, 0x49, 0x83, 0x42, 0x00];
        assert_eq!(frames(&data).collect::<Vec<_>>(), [&data[..]]);
        assert_eq!(frames(&[]).count(), 0);
        // A marker-like last byte whose twin is missing is frame data.
        let fake = [0x10, 0x20, 0xC0];
        assert_eq!(frames(&fake).collect::<Vec<_>>(), [&fake[..]]);
    }

    #[test]
    fn index_with_sizes_beyond_the_data_is_not_an_index() {
        // One frame of 200 bytes claimed, 2 present.
        let data = [1, 2, 0xC0, 200, 0xC0];
        assert!(index(&data).is_none());
    }

    proptest! {
        #[test]
        fn frames_never_panic_and_stay_within_the_data(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let total: usize = frames(&data).map(<[u8]>::len).sum();
            prop_assert!(total <= data.len());
        }
    }
}
