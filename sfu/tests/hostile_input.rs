//! Hostile input at the shard core: arbitrary datagrams — from strangers and from the very
//! addresses of connected peers, in every first-byte class — never panic the core, are counted as
//! drops, and do not disturb the media that flows.

#![allow(clippy::unwrap_used)] // test code: an unwrap is an assertion

use std::net::SocketAddr;
use std::time::Duration;

use proptest::prelude::*;
use sfu::io::RecvMeta;
use sfu::sim::Harness;

/// A datagram whose first byte falls in `class` (0: STUN, 1: DTLS, 2: unknown, 3: RTP/RTCP,
/// 4: above RTP), with arbitrary rest, possibly truncated to nothing.
fn datagram() -> impl Strategy<Value = Vec<u8>> {
    (
        0u8..5,
        any::<u8>(),
        proptest::collection::vec(any::<u8>(), 0..1400),
    )
        .prop_map(|(class, b, mut rest)| {
            let first = match class {
                0 => b % 4,
                1 => 20 + b % 44,
                2 => 64 + b % 64,
                3 => 128 + b % 64,
                _ => 192 + b % 64,
            };
            rest.insert(0, first);
            rest
        })
}

fn setup() -> (Harness, usize, Vec<SocketAddr>) {
    let mut h = Harness::new(1);
    let p = h.add_publisher(0, 1);
    let v = h.add_viewer(0, 1);
    h.run(Duration::from_secs(2));
    assert!(h.peers[p].connected && h.peers[v].connected);
    let sources = vec![
        h.peers[p].addr,
        h.peers[v].addr,
        SocketAddr::from(([203, 0, 113, 9], 4444)),
    ];
    (h, v, sources)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_datagrams_never_disturb_the_stream(batch in proptest::collection::vec((0usize..3, datagram()), 50..200)) {
        let (mut h, v, sources) = setup();
        let before = h.video_received(v).len();
        let drops_before: u64 = h.cores[0].counters().drops.iter().sum();
        for (i, (src, mut d)) in batch.into_iter().enumerate() {
            let now = h.now;
            h.cores[0].handle_datagram(now, RecvMeta { src: sources[src], dst_ip: None }, &mut d);
            if i % 10 == 0 {
                h.run(Duration::from_millis(5));
            }
        }
        h.run(Duration::from_secs(1));
        let got = h.video_received(v).len() - before;
        prop_assert!(got >= 80, "viewer got only {} video packets in the second after the garbage", got);
        let drops: u64 = h.cores[0].counters().drops.iter().sum::<u64>() - drops_before;
        prop_assert!(drops > 0, "garbage was not counted");
        prop_assert_eq!(h.cores[0].population().sessions, 2, "no session was torn down by garbage");
    }
}
