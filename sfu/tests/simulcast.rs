//! Simulcast forwarding on the simulated network: encodings bound to SSRCs by their RID
//! extension, a viewer on the highest encoding by default, switches (down and up, on one shard
//! and across shards) only on a keyframe of the wanted encoding with the viewer's sequence
//! numbers, timestamps and VP8 picture ids continuous, temporal layers dropped without gaps, and
//! the encodings' order learned from their bit rates when their rids say nothing.

#![allow(clippy::unwrap_used)] // test code: an unwrap is an assertion

use std::time::Duration;

use sfu::control::{Command, Event, LayerOrder, LayerSelection};
use sfu::metrics::DropReason;
use sfu::sim::{Harness, SIM_FRAME_BYTES, SIM_LAYER_BYTE};
use sfu::{Rid, ShardId, StreamKey};

/// q, h, f: (packets per picture, payload bytes).
const SIZES: [(usize, usize); 3] = [(1, 300), (2, 700), (3, 1100)];

/// One received video packet, decoded.
#[derive(Debug, Clone, Copy)]
struct Rx {
    seq: u16,
    ts: u32,
    layer: u8,
    frame: u64,
    picture_start: bool,
    picture_id: u16,
    tl0: u8,
    tid: u8,
}

fn received(h: &Harness, v: usize) -> Vec<Rx> {
    h.video_received(v)
        .into_iter()
        .map(|(hdr, b)| {
            let p = &b[hdr.header_len()..];
            Rx {
                seq: hdr.seq.0,
                ts: hdr.timestamp,
                layer: p[SIM_LAYER_BYTE],
                frame: u64::from_be_bytes(
                    p[SIM_FRAME_BYTES..SIM_FRAME_BYTES + 8].try_into().unwrap(),
                ),
                picture_start: p[0] & 0x10 != 0,
                picture_id: (u16::from(p[2] & 0x7f) << 8) | u16::from(p[3]),
                tl0: p[4],
                tid: p[5] >> 6,
            }
        })
        .collect()
}

fn set_layers(h: &mut Harness, shard: usize, v: usize, selection: LayerSelection) {
    let session = h.peers[v].session;
    let now = h.now;
    h.cores[shard].handle_command(
        now,
        Command::SetLayers {
            session,
            mid: None,
            selection,
        },
    );
}

/// Sequence numbers step by one, timestamps never go back, picture ids step by one at every
/// picture start.
fn assert_continuous(rx: &[Rx]) {
    for w in rx.windows(2) {
        assert_eq!(
            w[1].seq,
            w[0].seq.wrapping_add(1),
            "sequence gap between {:?} and {:?}",
            w[0],
            w[1]
        );
        let dt = w[1].ts.wrapping_sub(w[0].ts);
        assert!(
            dt < 90_000,
            "timestamp jumped by {dt}: {:?} -> {:?}",
            w[0],
            w[1]
        );
    }
    let starts: Vec<&Rx> = rx.iter().filter(|r| r.picture_start).collect();
    for w in starts.windows(2) {
        assert_eq!(
            w[1].picture_id,
            (w[0].picture_id + 1) & 0x7fff,
            "picture id jump between {:?} and {:?}",
            w[0],
            w[1]
        );
    }
}

fn setup(shards: usize, pub_shard: usize, view_shard: usize) -> (Harness, usize, usize) {
    let mut h = Harness::new(shards);
    let p = h.add_simulcast_publisher(pub_shard, 1, &["q", "h", "f"], &SIZES, LayerOrder::Named);
    let v = h.add_viewer(view_shard, 1);
    if pub_shard != view_shard {
        let now = h.now;
        h.cores[pub_shard].handle_command(
            now,
            Command::LinkShard {
                stream: StreamKey(1),
                shard: ShardId(view_shard as u16),
                linked: true,
            },
        );
    }
    assert!(h.connect_all(Duration::from_secs(5)));
    (h, p, v)
}

#[test]
fn encodings_bind_by_rid_and_a_viewer_gets_the_highest_by_default() {
    let (mut h, _p, v) = setup(1, 0, 0);
    h.run(Duration::from_secs(3));
    let rx = received(&h, v);
    assert!(rx.len() > 150, "received {}", rx.len());
    assert!(rx.iter().all(|r| r.layer == 2), "only the f encoding");
    assert_continuous(&rx);
    let c = h.cores[0].counters();
    assert_eq!(c.dropped(DropReason::UnknownRid), 0);
    assert_eq!(c.dropped(DropReason::UnknownSsrc), 0);
    assert_eq!(c.layer_switches, 1, "started once, on f");
}

#[test]
fn packets_of_an_ssrc_without_rid_are_dropped_and_counted() {
    let mut h = Harness::new(1);
    let p = h.add_simulcast_publisher(0, 1, &["q", "h", "f"], &SIZES, LayerOrder::Named);
    h.peers[p].simulcast.as_mut().unwrap().encodings[1].send_rid = false;
    let v = h.add_viewer(0, 1);
    assert!(h.connect_all(Duration::from_secs(5)));
    h.run(Duration::from_secs(1));
    let dropped = h.cores[0].counters().dropped(DropReason::UnknownRid);
    assert!(dropped >= 2 * 25, "dropped {dropped}");
    // The other encodings are unaffected.
    assert!(received(&h, v).iter().all(|r| r.layer == 2));
    assert!(!received(&h, v).is_empty());
}

fn switch_down_then_up(shards: usize, pub_shard: usize, view_shard: usize) {
    let (mut h, p, v) = setup(shards, pub_shard, view_shard);
    h.run(Duration::from_secs(2));
    let plis_q = h.peers[p].simulcast.as_ref().unwrap().encodings[0].plis;
    let before = received(&h, v).len();
    set_layers(
        &mut h,
        view_shard,
        v,
        LayerSelection {
            spatial: Some(0),
            ..LayerSelection::default()
        },
    );
    h.run(Duration::from_secs(2));
    let sc = h.peers[p].simulcast.as_ref().unwrap();
    assert!(
        sc.encodings[0].plis > plis_q,
        "a keyframe of q was requested"
    );
    let rx = received(&h, v);
    let after = &rx[before..];
    let first_q = after
        .iter()
        .position(|r| r.layer == 0)
        .expect("switched to q");
    assert!(
        after[..first_q].iter().all(|r| r.layer == 2),
        "f until the switch"
    );
    assert!(
        after[first_q..].iter().all(|r| r.layer == 0),
        "q after the switch"
    );
    assert!(after[first_q].picture_start && after[first_q].tid == 0);
    // Up again.
    let before_up = rx.len();
    set_layers(&mut h, view_shard, v, LayerSelection::default());
    h.run(Duration::from_secs(2));
    let rx = received(&h, v);
    let up = &rx[before_up..];
    let first_f = up
        .iter()
        .position(|r| r.layer == 2)
        .expect("switched back to f");
    assert!(up[..first_f].iter().all(|r| r.layer == 0));
    assert!(up[first_f..].iter().all(|r| r.layer == 2));
    // The switch waited for a keyframe of f, which the publisher sent on request: not for the
    // next periodic one (90 pictures = 3 s).
    assert!(first_f < 40, "switch up took {first_f} packets");
    assert_continuous(&rx);
    // The frames keep moving forward through both switches.
    let starts: Vec<u64> = rx
        .iter()
        .filter(|r| r.picture_start)
        .map(|r| r.frame)
        .collect();
    assert!(
        starts.windows(2).all(|w| w[1] >= w[0]),
        "pictures go back in time"
    );
    assert_eq!(h.cores[view_shard].counters().layer_switches, 3);
}

#[test]
fn switches_happen_on_keyframes_with_continuous_numbering() {
    switch_down_then_up(1, 0, 0);
}

#[test]
fn switches_work_for_a_viewer_on_another_shard() {
    switch_down_then_up(2, 0, 1);
}

#[test]
fn temporal_target_drops_upper_layers_without_gaps() {
    let (mut h, p, v) = setup(1, 0, 0);
    h.run(Duration::from_secs(1));
    let before = received(&h, v).len();
    set_layers(
        &mut h,
        0,
        v,
        LayerSelection {
            temporal: Some(0),
            ..LayerSelection::default()
        },
    );
    h.run(Duration::from_secs(2));
    let rx = received(&h, v);
    let after = &rx[before..];
    // Pictures already under way finish; from the next picture start on only TID 0 remains.
    let skip = after.iter().position(|r| r.picture_start).unwrap();
    let tail = &after[skip + 3..];
    assert!(tail.len() > 40);
    assert!(
        tail.iter().all(|r| r.tid == 0),
        "only the base temporal layer"
    );
    let frames: Vec<u64> = tail
        .iter()
        .filter(|r| r.picture_start)
        .map(|r| r.frame)
        .collect();
    assert!(
        frames
            .windows(2)
            .all(|w| w[1] - w[0] == 4 || w[1] % 90 == 0),
        "every fourth picture (and the periodic keyframes): {frames:?}"
    );
    // The TL0PICIDX steps by one per forwarded picture.
    let starts: Vec<&Rx> = tail.iter().filter(|r| r.picture_start).collect();
    assert!(
        starts
            .windows(2)
            .all(|w| w[1].tl0 == w[0].tl0.wrapping_add(1))
    );
    assert_continuous(&rx);
    // Back to every layer: the source marks no layer-sync pictures, so after waiting for one
    // for half a second the SFU asks for a keyframe, which brings every layer back.
    let plis = h.peers[p].simulcast.as_ref().unwrap().encodings[2].plis;
    let before = rx.len();
    set_layers(&mut h, 0, v, LayerSelection::default());
    h.run(Duration::from_secs(1));
    assert!(
        h.peers[p].simulcast.as_ref().unwrap().encodings[2].plis > plis,
        "a keyframe was requested"
    );
    let rx = received(&h, v);
    assert!(
        rx[before..].iter().any(|r| r.tid == 2),
        "every layer again within a second"
    );
    assert_continuous(&rx);
}

#[test]
fn unrecognised_rids_are_ordered_by_measured_bit_rate() {
    let mut h = Harness::new(1);
    // The publisher lists its biggest encoding first.
    let sizes = [(3, 1100), (2, 700), (1, 300)];
    let _p = h.add_simulcast_publisher(0, 1, &["a", "b", "c"], &sizes, LayerOrder::Measured);
    let v = h.add_viewer(0, 1);
    assert!(h.connect_all(Duration::from_secs(5)));
    h.run(Duration::from_secs(6));
    let mut order = None;
    while let Some(ev) = h.cores[0].poll_event() {
        if let Event::LayerOrder { layers, .. } = ev {
            order = Some(layers);
        }
    }
    let want: Vec<Rid> = ["c", "b", "a"].iter().map(|r| Rid((*r).into())).collect();
    assert_eq!(order, Some(want));
    let rx = received(&h, v);
    assert_eq!(
        rx.last().unwrap().layer,
        0,
        "the biggest encoding is the highest"
    );
    assert_continuous(&rx);
}

#[test]
fn an_idle_top_encoding_is_passed_over_until_it_sends() {
    let mut h = Harness::new(1);
    let p = h.add_simulcast_publisher(0, 1, &["q", "h", "f"], &SIZES, LayerOrder::Named);
    h.peers[p].simulcast.as_mut().unwrap().encodings[2].active = false;
    let v = h.add_viewer(0, 1);
    assert!(h.connect_all(Duration::from_secs(5)));
    h.run(Duration::from_secs(2));
    let rx = received(&h, v);
    assert!(
        !rx.is_empty() && rx.iter().all(|r| r.layer == 1),
        "h while f is idle"
    );
    h.peers[p].simulcast.as_mut().unwrap().encodings[2].active = true;
    h.run(Duration::from_secs(2));
    let rx = received(&h, v);
    assert_eq!(rx.last().unwrap().layer, 2, "f once it sends");
    assert_continuous(&rx);
}
