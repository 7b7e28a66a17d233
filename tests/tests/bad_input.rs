//! Hostile input: garbage datagrams of every first-byte class at a shard while a publisher streams
//! to a viewer, and malformed SDP offers at WHIP/WHEP.

use std::collections::BTreeMap;
use std::net::UdpSocket;
use std::time::{Duration, Instant};

use ringcast_tests::garbage::{self, ByteClass};
use ringcast_tests::{
    HttpResponse, Io, PeerProcess, PeerSpec, Server, ServerOptions, Stack, deps, http, media_lock,
};
use sfu::metrics::DropReason;

const CHROME_OFFER: &str = include_str!("../browser/testdata/chrome-offer.sdp");
const CHROME_VIEW_OFFER: &str = include_str!("../browser/testdata/chrome-view-offer.sdp");

const DATAGRAMS: usize = 6000;
const BURST: usize = 50;
const BURST_GAP: Duration = Duration::from_millis(50);

fn garbage_is_dropped_and_counted(io: Io) {
    deps::require_browser();
    let _media = media_lock();
    let mut server = Server::start(ServerOptions::new(1, io)).expect("server starts");
    let stream = format!("bad-input-{}", io.as_str());
    let mut run = PeerProcess::spawn(
        Stack::Chromium,
        &server.base_url(),
        &[PeerSpec::publish(&stream), PeerSpec::view(&stream)],
        Duration::from_secs(20),
        &[],
    )
    .expect("Chromium starts");
    run.wait_decoding("view-0", Duration::from_secs(40))
        .unwrap_or_else(|e| panic!("{e}"));

    // Baseline window, then the flood.
    let baseline_start = Instant::now();
    std::thread::sleep(Duration::from_secs(5));
    let before = server.metrics().expect("metrics before");
    let flood_start = Instant::now();

    let target = server.rtc_addr(0);
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind attacker socket");
    sock.set_nonblocking(true).expect("nonblocking");
    let datagrams = garbage::datagrams(0x5eed_0000 + u64::from(server.rtc_port(0)), DATAGRAMS);
    let mut sent_by_class: BTreeMap<ByteClass, usize> = BTreeMap::new();
    let (mut sent, mut sent_bytes, mut reply_bytes, mut replies) = (0usize, 0usize, 0usize, 0usize);
    let mut buf = [0u8; 2048];
    let mut drain = |reply_bytes: &mut usize, replies: &mut usize| {
        while let Ok(n) = sock.recv(&mut buf) {
            *reply_bytes += n;
            *replies += 1;
        }
    };
    for burst in datagrams.chunks(BURST) {
        for d in burst {
            match sock.send_to(d, target) {
                Ok(_) => {
                    sent += 1;
                    sent_bytes += d.len();
                    *sent_by_class.entry(ByteClass::of(d)).or_insert(0) += 1;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("send_to {target}: {e}"),
            }
        }
        drain(&mut reply_bytes, &mut replies);
        std::thread::sleep(BURST_GAP);
    }
    let flood_end = Instant::now();
    std::thread::sleep(Duration::from_secs(1));
    drain(&mut reply_bytes, &mut replies);
    let after = server.metrics().expect("metrics after");
    server.assert_alive();

    let report = run.wait().expect("Chromium run ends");
    report.assert_ok();
    let frames = ["video", "framesDecoded"];
    let fps_before = report
        .rate_between("view-0", &frames, baseline_start, flood_start)
        .expect("baseline samples");
    let fps_during = report
        .rate_between("view-0", &frames, flood_start, flood_end)
        .expect("samples during the flood");
    eprintln!(
        "{}: {sent} garbage datagrams ({sent_bytes} B) in {:?}; viewer {fps_before:.1} fps before, {fps_during:.1} during; {replies} replies ({reply_bytes} B)",
        io.as_str(),
        flood_end - flood_start
    );
    assert!(
        fps_during >= 20.0 && fps_during >= 0.8 * fps_before,
        "viewer fps fell from {fps_before:.1} to {fps_during:.1} under garbage\n{}",
        report.describe()
    );
    // The server never answers an unverified address with more than it received (here: nothing
    // it sent is legitimate, so any reply at all is suspect, but amplification is the hard rule).
    assert!(
        reply_bytes <= sent_bytes,
        "server sent {reply_bytes} B in reply to {sent_bytes} B of garbage"
    );

    let drops = after.delta_by_label(&before, "ringcast_drops_total", "reason");
    let total_drops: f64 = drops.values().sum();
    let dgrams_in = after.sum("ringcast_datagrams_in_total", &[])
        - before.sum("ringcast_datagrams_in_total", &[]);
    eprintln!(
        "drops by reason during the flood: {drops:?}; datagrams in: {dgrams_in}; sent by class: {sent_by_class:?}"
    );
    assert!(
        sent >= DATAGRAMS * 9 / 10,
        "only {sent} of {DATAGRAMS} garbage datagrams could be sent"
    );
    assert!(
        dgrams_in >= sent as f64 * 0.95,
        "server counted {dgrams_in} datagrams in, {sent} garbage ones were sent"
    );
    assert!(
        total_drops >= sent as f64 * 0.95,
        "only {total_drops} drops counted for {sent} garbage datagrams: {drops:?}"
    );
    let known: Vec<&str> = DropReason::ALL.iter().map(|r| r.label()).collect();
    for reason in after.by_label("ringcast_drops_total", "reason").keys() {
        assert!(
            known.contains(&reason.as_str()),
            "unknown drop reason label {reason:?} (known: {known:?})"
        );
    }
    let unassigned = [
        ByteClass::Unassigned4To19,
        ByteClass::Unassigned64To127,
        ByteClass::Unassigned192To255,
    ]
    .iter()
    .map(|c| sent_by_class.get(c).copied().unwrap_or(0))
    .sum::<usize>() as f64;
    // A datagram whose first byte no protocol claims is dropped as such, or, by a server that
    // checks the source address before the class, as coming from nobody it knows.
    let reason = |r: DropReason| drops.get(r.label()).copied().unwrap_or(0.0);
    let unclaimed = reason(DropReason::UnknownClass) + reason(DropReason::UnknownSource);
    assert!(
        unclaimed >= unassigned * 0.95,
        "{unclaimed} unknown_class + unknown_source drops for {unassigned} datagrams with an unassigned first byte: {drops:?}"
    );
    let reasons_used = drops.values().filter(|v| **v > 0.0).count();
    assert!(
        reasons_used >= 3,
        "garbage of every class was counted under only {reasons_used} reason(s): {drops:?}"
    );

    server.assert_alive();
    let (status, _) = server
        .terminate(Duration::from_secs(5))
        .expect("server stops");
    assert!(status.success(), "server exited with {status}");
}

#[test]
fn garbage_datagrams_are_dropped_and_counted_while_media_flows_over_uring() {
    garbage_is_dropped_and_counted(Io::Uring);
}

#[test]
fn garbage_datagrams_are_dropped_and_counted_while_media_flows_over_mmsg() {
    garbage_is_dropped_and_counted(Io::Mmsg);
}

// ------------------------------------------------------------------------------------ SDP

fn assert_problem(case: &str, r: &HttpResponse) {
    assert!(
        (400..500).contains(&r.status),
        "{case}: want 4xx, got {}",
        r.describe()
    );
    assert_eq!(
        r.content_type().as_deref(),
        Some("application/problem+json"),
        "{case}: error body must be problem+json: {}",
        r.describe()
    );
    let body = r
        .json()
        .unwrap_or_else(|e| panic!("{case}: problem body is not JSON ({e}): {}", r.describe()));
    assert!(
        body.is_object(),
        "{case}: problem body is not an object: {}",
        r.describe()
    );
}

/// The offer without the lines for which `drop_line` is true (CRLF kept).
fn without_lines(offer: &str, drop_line: impl Fn(&str) -> bool) -> String {
    offer
        .split_inclusive('\n')
        .filter(|l| !drop_line(l.trim_end()))
        .collect()
}

fn malformed_offers(offer: &str) -> Vec<(&'static str, Option<&'static str>, Vec<u8>)> {
    const SDP: Option<&str> = Some("application/sdp");
    let first_candidate_end = offer
        .find("a=candidate")
        .and_then(|i| offer[i..].find('\n').map(|j| i + j + 1));
    let mut pseudo_random = garbage::Rng::new(42);
    vec![
        ("empty body", SDP, Vec::new()),
        ("binary body", SDP, pseudo_random.bytes(4096)),
        (
            "offer cut inside the session header",
            SDP,
            offer.as_bytes()[..60].to_vec(),
        ),
        (
            "offer cut before ICE credentials and fingerprint",
            SDP,
            offer.as_bytes()[..first_candidate_end.expect("offer has candidates")].to_vec(),
        ),
        (
            "offer without fingerprint",
            SDP,
            without_lines(offer, |l| l.starts_with("a=fingerprint")).into_bytes(),
        ),
        (
            "offer without ICE credentials",
            SDP,
            without_lines(offer, |l| {
                l.starts_with("a=ice-ufrag") || l.starts_with("a=ice-pwd")
            })
            .into_bytes(),
        ),
        (
            "offer without media sections",
            SDP,
            offer.split("m=").next().unwrap_or("").as_bytes().to_vec(),
        ),
        (
            "NUL bytes inside the offer",
            SDP,
            offer.replacen("a=mid:0", "a=mid:\0\0\0", 1).into_bytes(),
        ),
        ("2 MB body", SDP, {
            let mut b = offer.as_bytes().to_vec();
            while b.len() < 2 << 20 {
                b.extend_from_slice(
                    b"a=x-padding:0123456789abcdef0123456789abcdef0123456789abcdef\r\n",
                );
            }
            b
        }),
        (
            "text/plain content type",
            Some("text/plain"),
            offer.as_bytes().to_vec(),
        ),
        (
            "application/json content type",
            Some("application/json"),
            br#"{"type":"offer","sdp":"v=0"}"#.to_vec(),
        ),
        ("no content type", None, offer.as_bytes().to_vec()),
    ]
}

#[test]
fn malformed_offers_get_problem_json_4xx_never_5xx() {
    let mut server = Server::start(ServerOptions::default()).expect("server starts");
    for (endpoint, offer) in [("whip", CHROME_OFFER), ("whep", CHROME_VIEW_OFFER)] {
        let path = format!("/{endpoint}/malformed");
        for (case, content_type, body) in malformed_offers(offer) {
            let r = http::post_raw(server.http_addr(), &path, content_type, body)
                .unwrap_or_else(|e| panic!("{endpoint}, {case}: no HTTP response: {e}"));
            assert_problem(&format!("{endpoint}, {case}"), &r);
        }
        server.assert_alive();
        // Still serving: the intact offer is accepted and its resource can be deleted.
        let ok = server
            .post(&path, "application/sdp", offer.as_bytes())
            .expect("valid offer");
        assert_eq!(
            ok.status,
            201,
            "{endpoint}: valid offer after the bad ones: {}",
            ok.describe()
        );
        assert_eq!(
            ok.content_type().as_deref(),
            Some("application/sdp"),
            "{}",
            ok.describe()
        );
        assert!(
            ok.text().starts_with("v=0"),
            "answer is not SDP: {}",
            ok.describe()
        );
        let location = ok
            .header("location")
            .unwrap_or_else(|| panic!("{endpoint}: 201 without Location"));
        let location = if location.starts_with("http") {
            location.to_string()
        } else {
            server.url(location)
        };
        let del = server.delete(&location).expect("DELETE session");
        assert!(
            matches!(del.status, 200 | 204),
            "{endpoint}: DELETE {location}: {}",
            del.describe()
        );
    }
    let (status, _) = server
        .terminate(Duration::from_secs(5))
        .expect("server stops");
    assert!(status.success(), "server exited with {status}");
}
