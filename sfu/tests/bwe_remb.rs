//! REMB toward publishers, end to end through the shard core on the simulated network: a
//! publisher that negotiated abs-send-time but not transport-cc receives REMB (about once a
//! second, and at once when its path congests); one that negotiated transport-cc keeps getting
//! transport-cc feedback and no REMB.

#![allow(clippy::unwrap_used)] // test code: an unwrap is an assertion

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sfu::client::{ClientConfig, ClientSession};
use sfu::control::ExtMap;
use sfu::io::RecvMeta;
use sfu::sim::{Harness, PUB_EXT_MID, PUB_VP8, Peer, VIDEO_SSRC, ice_credentials, publisher_spec};
use sfu::wire::rtcp::{self, RtcpPacket};
use sfu::wire::rtp::{AbsSendTime, RtpFields, write_rtp};
use sfu::{Bitrate, PayloadType, SeqNo, SessionId, Ssrc, StreamKey};

const EXT_ABS: u8 = 3;
const EXT_TWCC: u8 = 4;

/// Adds a publisher whose media the test writes itself, with the given extensions.
fn add_publisher(h: &mut Harness, abs_send_time: bool, transport_cc: bool) -> usize {
    let id = SessionId(900 + h.peers.len() as u64);
    let (server_ice, client_ice) = ice_credentials(id);
    let mut spec = publisher_spec(
        id,
        server_ice.clone(),
        client_ice.clone(),
        h.client_cert.fingerprint(),
        StreamKey(1),
    );
    spec.extmap = ExtMap {
        mid: Some(PUB_EXT_MID),
        abs_send_time: abs_send_time.then_some(EXT_ABS),
        transport_cc: transport_cc.then_some(EXT_TWCC),
        ..ExtMap::default()
    };
    h.cores[0].add_session(h.now, spec).unwrap();
    let client = ClientSession::new(
        ClientConfig {
            local_ice: client_ice,
            remote_ice: server_ice,
            server: h.servers[0],
            remote_fingerprint: h.server_cert.fingerprint(),
            cert: Arc::clone(&h.client_cert),
        },
        h.now,
    );
    h.peers.push(Peer {
        addr: SocketAddr::from(([10, 0, 0, 9], 45000 + h.peers.len() as u16)),
        shard: 0,
        session: id,
        client,
        connected: false,
        rtp: Vec::new(),
        rtcp: Vec::new(),
        sent: HashMap::new(),
        publisher: None,
        simulcast: None,
        record: true,
        audio: None,
        downlink: None,
    });
    h.peers.len() - 1
}

/// A REMB the publisher received: when, the rate, the SSRCs.
#[derive(Debug)]
struct Got {
    at: Instant,
    rate: Bitrate,
    ssrcs: Vec<Ssrc>,
}

/// Sends 1000-byte video packets every 8 ms (1 Mbit/s) for `ms`; from `congest_at` on, the
/// path's queue grows by 10 % of elapsed time (the send clock runs slower than arrivals).
/// Returns the REMBs and the number of transport-cc feedback packets received.
fn drive(
    h: &mut Harness,
    p: usize,
    from_ms: u64,
    ms: u64,
    congest_at: Option<u64>,
) -> (Vec<Got>, usize) {
    let mut got = Vec::new();
    let mut twcc = 0;
    let mut seen = h.peers[p].rtcp.len();
    for t in from_ms..from_ms + ms {
        // One packet every 8 ms: the sequence number follows from the time.
        let seq = (t / 8) as u16;
        h.step();
        if t % 8 == 0 {
            let send_ms = match congest_at {
                Some(c) if t > c => c as f64 + (t - c) as f64 / 1.1,
                _ => t as f64,
            };
            let abs = AbsSendTime::from_micros((send_ms * 1000.0) as u64).to_bytes();
            let tseq = seq.to_be_bytes();
            let mut buf = vec![0u8; 1200];
            let payload = [0u8; 1000];
            let n = write_rtp(
                &mut buf,
                &RtpFields {
                    marker: false,
                    payload_type: PayloadType(PUB_VP8),
                    seq: SeqNo(seq),
                    timestamp: u32::from(seq) * 3000,
                    ssrc: Ssrc(VIDEO_SSRC),
                    extensions: &[(PUB_EXT_MID, b"0"), (EXT_ABS, &abs), (EXT_TWCC, &tseq)],
                },
                &payload,
            )
            .unwrap();
            let n = h.peers[p].client.protect_rtp(&mut buf, n).unwrap();
            let src = h.peers[p].addr;
            let now = h.now;
            h.cores[0].handle_datagram(now, RecvMeta { src, dst_ip: None }, &mut buf[..n]);
        }
        for c in &h.peers[p].rtcp[seen..] {
            for pkt in rtcp::iter(c).flatten() {
                match pkt {
                    RtcpPacket::Remb(r) => got.push(Got {
                        at: h.now,
                        rate: r.bitrate,
                        ssrcs: r.ssrcs().collect(),
                    }),
                    RtcpPacket::TransportCc(_) => twcc += 1,
                    _ => {}
                }
            }
        }
        seen = h.peers[p].rtcp.len();
        h.now += Duration::from_millis(1);
    }
    (got, twcc)
}

#[test]
fn abs_send_time_publisher_gets_remb_every_second_and_at_once_on_congestion() {
    let mut h = Harness::new(1);
    let p = add_publisher(&mut h, true, false);
    assert!(h.connect_all(Duration::from_secs(5)), "publisher connected");
    let (steady, twcc) = drive(&mut h, p, 0, 9000, None);
    assert_eq!(twcc, 0, "no transport-cc was negotiated");
    // Initialised 5 s after the first packet, then one a second.
    assert!(
        (3..=5).contains(&steady.len()),
        "{} REMBs: {steady:?}",
        steady.len()
    );
    for w in steady.windows(2) {
        let gap = w[1].at - w[0].at;
        assert!(
            gap >= Duration::from_millis(990) && gap <= Duration::from_millis(1020),
            "REMB spacing {gap:?}"
        );
    }
    let first = &steady[0];
    assert_eq!(first.ssrcs, [Ssrc(VIDEO_SSRC)]);
    assert!(
        first.rate >= Bitrate::kbps(900) && first.rate <= Bitrate::kbps(1200),
        "first REMB {:?} for a 1 Mbit/s stream",
        first.rate
    );
    let last_steady = steady.last().unwrap().rate;
    let congest_from = h.now;
    let (congested, _) = drive(&mut h, p, 9000, 3000, Some(9000));
    let lower = congested
        .iter()
        .find(|g| (g.rate.0 as f64) < 0.97 * last_steady.0 as f64)
        .expect("a lower REMB under congestion");
    let after = lower.at - congest_from;
    println!(
        "REMB {:?} → {:?} after {after:?} of congestion",
        last_steady, lower.rate
    );
    assert!(
        after < Duration::from_millis(900),
        "the decrease went out after {after:?}, not at once"
    );
}

#[test]
fn transport_cc_publisher_gets_transport_cc_feedback_and_no_remb() {
    let mut h = Harness::new(1);
    let p = add_publisher(&mut h, true, true);
    assert!(h.connect_all(Duration::from_secs(5)), "publisher connected");
    let (rembs, twcc) = drive(&mut h, p, 0, 8000, Some(6000));
    assert!(rembs.is_empty(), "REMB sent to a transport-cc publisher");
    assert!(twcc > 100, "{twcc} transport-cc feedback packets");
}
