//! Unit and property tests of the sequence/timestamp rewriter.

use super::*;
use crate::stream::SeqUnwrapper;
use proptest::prelude::*;

fn ext(n: u64) -> ExtSeq {
    ExtSeq(65536 + n)
}

#[test]
fn first_packet_maps_to_start_values() {
    let mut r = SeqRewriter::new(SeqNo(500), 7000);
    assert_eq!(r.forward(ext(10), 1234), None, "nothing before start");
    r.start(ext(10), 1234);
    assert_eq!(r.forward(ext(10), 1234), Some((SeqNo(500), 7000)));
    assert_eq!(r.forward(ext(11), 1234 + 3000), Some((SeqNo(501), 10_000)));
}

#[test]
fn packets_before_anchor_are_not_forwarded() {
    let mut r = SeqRewriter::new(SeqNo(0), 0);
    r.start(ext(10), 0);
    r.forward(ext(10), 0);
    assert_eq!(r.forward(ext(9), 0), None);
    assert_eq!(r.drop_packet(ext(9)), DropOutcome::Ignored);
}

#[test]
fn deliberate_drop_leaves_no_gap() {
    let mut r = SeqRewriter::new(SeqNo(100), 0);
    r.start(ext(0), 0);
    assert_eq!(r.forward(ext(0), 0).map(|o| o.0), Some(SeqNo(100)));
    assert_eq!(r.drop_packet(ext(1)), DropOutcome::Absorbed);
    assert_eq!(r.drop_packet(ext(2)), DropOutcome::Absorbed);
    assert_eq!(r.forward(ext(3), 0).map(|o| o.0), Some(SeqNo(101)));
    assert_eq!(r.stats().absorbed, 2);
}

#[test]
fn upstream_loss_leaves_a_matching_gap() {
    let mut r = SeqRewriter::new(SeqNo(100), 0);
    r.start(ext(0), 0);
    r.forward(ext(0), 0);
    // 1 and 2 are lost on the way to the SFU: the subscriber must see them missing too.
    assert_eq!(r.forward(ext(3), 0).map(|o| o.0), Some(SeqNo(103)));
    assert_eq!(r.reverse(SeqNo(101)), Some(ext(1)));
    // When 2 comes in late (a retransmission), it takes its reserved number.
    assert_eq!(r.forward(ext(2), 0).map(|o| o.0), Some(SeqNo(102)));
}

#[test]
fn reordered_packet_keeps_its_number_after_later_drops() {
    let mut r = SeqRewriter::new(SeqNo(0), 0);
    r.start(ext(0), 0);
    r.forward(ext(0), 0);
    r.forward(ext(2), 0); // 1 is late: reserved as out 1, 2 -> out 2
    r.drop_packet(ext(3));
    assert_eq!(r.forward(ext(4), 0).map(|o| o.0), Some(SeqNo(3)));
    assert_eq!(r.forward(ext(1), 0).map(|o| o.0), Some(SeqNo(1)));
}

#[test]
fn late_drop_reports_its_hole() {
    let mut r = SeqRewriter::new(SeqNo(0), 0);
    r.start(ext(0), 0);
    r.forward(ext(0), 0);
    r.forward(ext(2), 0);
    assert_eq!(r.drop_packet(ext(1)), DropOutcome::Hole(SeqNo(1)));
    assert_eq!(r.forward(ext(1), 0), None, "a dropped packet stays dropped");
    assert_eq!(r.reverse(SeqNo(1)), None);
    assert_eq!(r.stats().holes, 1);
}

#[test]
fn duplicate_gets_the_same_number() {
    let mut r = SeqRewriter::new(SeqNo(9), 0);
    r.start(ext(5), 0);
    let a = r.forward(ext(5), 0);
    r.forward(ext(6), 0);
    assert_eq!(r.forward(ext(5), 0), a);
    assert_eq!(r.drop_packet(ext(5)), DropOutcome::Ignored);
}

#[test]
fn reverse_translates_only_known_output_numbers() {
    let mut r = SeqRewriter::new(SeqNo(65530), 0);
    r.start(ext(1000), 0);
    for i in 1000..1010 {
        r.forward(ext(i), 0);
    }
    assert_eq!(r.reverse(SeqNo(65530)), Some(ext(1000)));
    assert_eq!(r.reverse(SeqNo(3)), Some(ext(1009)));
    assert_eq!(r.reverse(SeqNo(4)), None, "not sent yet");
    assert_eq!(r.reverse(SeqNo(65529)), None, "before the start");
    assert_eq!(r.reverse(SeqNo(30_000)), None);
}

#[test]
fn reverse_forgets_numbers_older_than_the_window() {
    let mut r = SeqRewriter::new(SeqNo(0), 0);
    r.start(ext(0), 0);
    for i in 0..(REWRITE_WINDOW as u64 + 10) {
        r.forward(ext(i), 0);
    }
    assert_eq!(r.reverse(SeqNo(9)), None);
    assert_eq!(r.reverse(SeqNo(10)), Some(ext(10)));
}

#[test]
fn reverse_reaches_back_past_many_drops() {
    let mut r = SeqRewriter::new(SeqNo(0), 0);
    r.start(ext(0), 0);
    for i in 0..3000 {
        if i % 3 == 0 {
            r.forward(ext(i), 0);
        } else {
            r.drop_packet(ext(i));
        }
    }
    assert_eq!(r.next_out_seq(), SeqNo(1000));
    // Ten output numbers in, thirty input numbers in: far beyond the input window.
    assert_eq!(r.reverse(SeqNo(10)), Some(ext(30)));
    assert_eq!(r.reverse(SeqNo(999)), Some(ext(2997)));
}

#[test]
fn rebase_continues_sequence_and_timestamp() {
    let mut r = SeqRewriter::new(SeqNo(65534), u32::MAX - 1000);
    r.start(ext(100), 50_000);
    assert_eq!(
        r.forward(ext(100), 50_000),
        Some((SeqNo(65534), u32::MAX - 1000))
    );
    assert_eq!(r.forward(ext(101), 53_000), Some((SeqNo(65535), 1999)));
    // Switch to a source with unrelated numbering, 3000 ticks after the last frame.
    r.rebase(ExtSeq(7_000_000), 12, 3000);
    assert_eq!(
        r.forward(ExtSeq(6_999_999), 9),
        None,
        "older than the switch point"
    );
    assert_eq!(r.forward(ExtSeq(7_000_000), 12), Some((SeqNo(0), 4999)));
    assert_eq!(r.forward(ExtSeq(7_000_001), 3012), Some((SeqNo(1), 7999)));
    assert_eq!(r.reverse(SeqNo(0)), Some(ExtSeq(7_000_000)));
    assert_eq!(
        r.reverse(SeqNo(65535)),
        None,
        "belongs to the previous source"
    );
}

#[test]
fn rebase_before_start_is_a_start() {
    let mut r = SeqRewriter::new(SeqNo(40), 400);
    r.rebase(ext(3), 9, 3000);
    assert_eq!(r.forward(ext(3), 9), Some((SeqNo(40), 400)));
}

#[test]
fn jump_wider_than_window_is_narrowed() {
    let mut r = SeqRewriter::new(SeqNo(0), 0);
    r.start(ext(0), 0);
    r.forward(ext(0), 0);
    let (out, _) = r.forward(ext(50_000), 0).expect("new packet after start");
    assert_eq!(u64::from(out.0), W + 1);
    assert_eq!(r.stats().compressed, 50_000 - 1 - W);
    assert_eq!(r.reverse(SeqNo(out.0 - 1)), Some(ext(49_999)));
}

/// A packet of the simulated publisher stream, by send index.
#[derive(Debug, Clone, Copy)]
struct Pkt {
    index: usize,
    wire: u16,
    ts: u32,
    drop: bool,
}

/// The source stream: four packets per 3000-tick frame, starting from the given wire values.
fn source(n: usize, seq0: u16, ts0: u32, drops: &[bool]) -> Vec<Pkt> {
    (0..n)
        .map(|i| Pkt {
            index: i,
            wire: seq0.wrapping_add(i as u16),
            ts: ts0.wrapping_add((i / 4) as u32 * 3000),
            drop: drops[i],
        })
        .collect()
}

/// Delivers packets in the order of `index + delay`, skipping lost ones.
fn deliver(pkts: &[Pkt], delay: &[usize], lost: &[bool]) -> Vec<Pkt> {
    let mut v: Vec<(usize, Pkt)> = pkts
        .iter()
        .filter(|p| !lost[p.index])
        .map(|p| (p.index + delay[p.index], *p))
        .collect();
    v.sort_by_key(|&(k, p)| (k, p.index));
    v.into_iter().map(|(_, p)| p).collect()
}

fn near_wrap_u16() -> impl Strategy<Value = u16> {
    prop_oneof![65_000u16..=65_535, 0u16..=500, any::<u16>()]
}

fn near_wrap_u32() -> impl Strategy<Value = u32> {
    prop_oneof![u32::MAX - 200_000..=u32::MAX, any::<u32>()]
}

fn unwrap16(base: u16, x: u16) -> i64 {
    i64::from(x.wrapping_sub(base) as i16)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Random start points near the wrap on both sides, random drops, random reordering and
    /// random upstream loss: every forwarded packet translates back, output numbers are unique,
    /// the only gaps are packets lost upstream and late drops (reported as holes), and the
    /// timestamp offset is constant.
    #[test]
    fn rewriting_is_continuous_and_reversible(
        in_seq0 in near_wrap_u16(),
        in_ts0 in near_wrap_u32(),
        out_seq0 in near_wrap_u16(),
        out_ts0 in near_wrap_u32(),
        n in 20usize..600,
        drops in proptest::collection::vec(prop::bool::weighted(0.2), 600),
        delay in proptest::collection::vec(prop_oneof![4 => Just(0usize), 1 => 1usize..12], 600),
        lost in proptest::collection::vec(prop::bool::weighted(0.05), 600),
    ) {
        let pkts = source(n, in_seq0, in_ts0, &drops);
        let order = deliver(&pkts, &delay, &lost);
        prop_assume!(!order.is_empty());
        // The first packet to arrive is the one the subscriber starts with; it is never dropped.
        let anchor = order[0];

        let mut unwrapper = SeqUnwrapper::new();
        let mut r = SeqRewriter::new(SeqNo(out_seq0), out_ts0);
        // (send index, input ext, output wire) of everything forwarded.
        let mut forwarded: Vec<(usize, ExtSeq, u16)> = Vec::new();
        let mut holes: Vec<u16> = Vec::new();
        // Highest send index that holds an output number (forwarded, or a late drop's hole).
        let mut max_numbered = anchor.index;
        for (k, p) in order.iter().enumerate() {
            let e = unwrapper.unwrap(SeqNo(p.wire));
            if k == 0 {
                r.start(e, p.ts);
            }
            if p.index < anchor.index {
                prop_assert_eq!(r.forward(e, p.ts), None);
                continue;
            }
            if p.drop && k != 0 {
                match r.drop_packet(e) {
                    DropOutcome::Absorbed => {}
                    DropOutcome::Hole(s) => {
                        holes.push(s.0);
                        max_numbered = max_numbered.max(p.index);
                    }
                    DropOutcome::Ignored => prop_assert!(false, "drop of {} ignored", p.index),
                }
                continue;
            }
            let (SeqNo(out), ts) = r.forward(e, p.ts).expect("packet after the anchor is forwarded");
            prop_assert_eq!(ts.wrapping_sub(out_ts0), p.ts.wrapping_sub(anchor.ts));
            prop_assert_eq!(r.reverse(SeqNo(out)), Some(e));
            forwarded.push((p.index, e, out));
            max_numbered = max_numbered.max(p.index);
        }
        prop_assert_eq!(forwarded[0].2, out_seq0);

        // Every forwarded packet still translates back at the end.
        for &(_, e, out) in &forwarded {
            prop_assert_eq!(r.reverse(SeqNo(out)), Some(e));
        }
        // Output numbers (relative to the start) are unique and, with holes and upstream losses,
        // fill a contiguous range.
        let mut rel: Vec<i64> = forwarded.iter().map(|f| unwrap16(out_seq0, f.2)).collect();
        rel.extend(holes.iter().map(|&h| unwrap16(out_seq0, h)));
        rel.sort_unstable();
        let before = rel.len();
        rel.dedup();
        prop_assert_eq!(rel.len(), before, "an output number was used twice");
        prop_assert!(rel[0] == 0);
        let span = (rel[rel.len() - 1] + 1) as usize;
        let lost_between = (anchor.index + 1..max_numbered)
            .filter(|&i| lost[i])
            .count();
        prop_assert_eq!(span - rel.len(), lost_between);
        // Output order follows input order.
        let mut by_index = forwarded.clone();
        by_index.sort_by_key(|f| f.0);
        for w in by_index.windows(2) {
            prop_assert!(unwrap16(out_seq0, w[0].2) < unwrap16(out_seq0, w[1].2));
        }
    }

    /// In-order input with drops: consecutive output numbers and non-decreasing timestamps,
    /// whatever the start points.
    #[test]
    fn in_order_input_gives_consecutive_output(
        in_seq0 in near_wrap_u16(),
        in_ts0 in near_wrap_u32(),
        out_seq0 in near_wrap_u16(),
        out_ts0 in near_wrap_u32(),
        drops in proptest::collection::vec(prop::bool::weighted(0.3), 3000),
    ) {
        let pkts = source(3000, in_seq0, in_ts0, &drops);
        let mut unwrapper = SeqUnwrapper::new();
        let mut r = SeqRewriter::new(SeqNo(out_seq0), out_ts0);
        let mut last: Option<(u16, u32)> = None;
        for (k, p) in pkts.iter().enumerate() {
            let e = unwrapper.unwrap(SeqNo(p.wire));
            if k == 0 {
                r.start(e, p.ts);
            } else if p.drop {
                prop_assert_eq!(r.drop_packet(e), DropOutcome::Absorbed);
                continue;
            }
            let (SeqNo(out), ts) = r.forward(e, p.ts).expect("in-order packet after start");
            if let Some((ls, lts)) = last {
                prop_assert_eq!(out, ls.wrapping_add(1));
                prop_assert!((ts.wrapping_sub(lts) as i32) >= 0);
            } else {
                prop_assert_eq!((out, ts), (out_seq0, out_ts0));
            }
            prop_assert_eq!(r.reverse(SeqNo(out)), Some(e));
            last = Some((out, ts));
        }
    }

    /// Switching sources any number of times keeps the output continuous and the timestamps
    /// advancing by exactly the requested gap.
    #[test]
    fn switches_keep_output_continuous(
        out_seq0 in near_wrap_u16(),
        out_ts0 in near_wrap_u32(),
        sources in proptest::collection::vec(
            (near_wrap_u16(), near_wrap_u32(), 1usize..200, 1u32..6000),
            1..6,
        ),
    ) {
        let mut r = SeqRewriter::new(SeqNo(out_seq0), out_ts0);
        let mut last: Option<(u16, u32)> = None;
        for (seq0, ts0, len, gap) in sources {
            let mut unwrapper = SeqUnwrapper::new();
            for i in 0..len {
                let e = unwrapper.unwrap(SeqNo(seq0.wrapping_add(i as u16)));
                let ts = ts0.wrapping_add((i / 4) as u32 * 3000);
                if i == 0 {
                    r.rebase(e, ts, gap);
                }
                let (SeqNo(out), out_ts) = r.forward(e, ts).expect("packet of the current source");
                match last {
                    None => prop_assert_eq!((out, out_ts), (out_seq0, out_ts0)),
                    Some((ls, lts)) => {
                        prop_assert_eq!(out, ls.wrapping_add(1));
                        let step = if i == 0 { gap } else { ts.wrapping_sub(ts0.wrapping_add(((i - 1) / 4) as u32 * 3000)) };
                        prop_assert_eq!(out_ts.wrapping_sub(lts), step);
                    }
                }
                last = Some((out, out_ts));
            }
        }
    }
}
