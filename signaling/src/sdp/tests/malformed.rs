//! Malformed and unsupported offers: each fails with the right class and never panics; huge
//! inputs take linear time.

use std::time::{Duration, Instant};

use super::support::*;
use crate::sdp::{
    Capabilities, Role, SdpError, SdpErrorClass, negotiate, parse_offer, parse_trickle_sdpfrag,
    write_answer,
};

fn class_of(text: &str, role: Role) -> SdpErrorClass {
    run(text, role).expect_err("the offer must fail").class()
}

#[test]
fn every_truncation_of_every_recorded_offer_fails_cleanly_or_answers_by_the_rules() {
    for (name, text, role) in ALL_OFFERS {
        let text = crlf(text);
        let mut failures = 0;
        for cut in (0..text.len()).filter(|i| text.is_char_boundary(*i)) {
            if run(&text[..cut], role).is_err() {
                failures += 1;
            }
        }
        assert!(failures > 0, "{name}: short prefixes must fail");
    }
}

#[test]
fn specific_truncations_fail_with_the_right_error() {
    let text = crlf(CHROME_PUBLISHER);
    let cut_at = |needle: &str, extra: usize| {
        let at = text.find(needle).expect("needle in the offer") + extra;
        run(&text[..at], Role::Publisher).expect_err("truncated offer fails")
    };
    assert!(matches!(parse_offer(""), Err(SdpError::NotSdp(_))));
    assert!(matches!(cut_at("s=-", 0), SdpError::NotSdp(_)));
    assert_eq!(cut_at("m=audio", 0), SdpError::NoMediaLines);
    assert!(matches!(
        cut_at("m=audio 52917 UDP/TLS", 18),
        SdpError::NotSdp(_)
    ));
    // Chrome writes a=mid after the transport attributes: a cut inside the fingerprint loses it.
    assert_eq!(
        cut_at("a=fingerprint:sha-256 A5", 30),
        SdpError::MissingMid { index: 0 }
    );
    // A fingerprint value cut short is malformed.
    let short_fp = CHROME_PUBLISHER.replace(":49:3C:9D:5C\n", ":49:3C:9\n");
    assert!(matches!(
        run(&short_fp, Role::Publisher),
        Err(SdpError::InvalidFingerprint(_))
    ));
    assert_eq!(cut_at("a=ice-pwd:", 0), SdpError::MissingMid { index: 0 });
    assert_eq!(cut_at("m=video", 40), SdpError::MissingMid { index: 1 });
    // OBS writes a=mid first and the ICE credentials last: a cut inside its video line leaves
    // that line without credentials.
    let obs = crlf(OBS_WHIP);
    let at = obs.find("a=mid:1").expect("video mid") + 9;
    assert_eq!(
        run(&obs[..at], Role::Publisher),
        Err(SdpError::MissingIceCredentials { mid: "1".into() })
    );
    for e in [
        SdpError::NoMediaLines,
        SdpError::MissingIceCredentials { mid: "0".into() },
    ] {
        assert_eq!(e.http_status(), 400);
    }
}

/// A small deterministic generator, so that failures reproduce.
fn garbage(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}

#[test]
fn binary_garbage_is_not_sdp() {
    for (i, len) in [1usize, 2, 16, 1500, 65_536].into_iter().enumerate() {
        let bytes = garbage(len, 0x9e37_79b9_7f4a_7c15 + i as u64);
        let text = String::from_utf8_lossy(&bytes);
        assert_eq!(class_of(&text, Role::Publisher), SdpErrorClass::Malformed);
        assert!(parse_trickle_sdpfrag(&text).is_err() || text.trim().is_empty());
        let after_header = format!("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n{text}");
        assert_eq!(
            class_of(&after_header, Role::Publisher),
            SdpErrorClass::Malformed
        );
    }
    assert_eq!(class_of("\0\0\0\0", Role::Viewer), SdpErrorClass::Malformed);
    assert_eq!(
        class_of("{\"type\":\"offer\",\"sdp\":\"v=0\"}", Role::Viewer),
        SdpErrorClass::Malformed
    );
}

/// Inserts `filler` right after the `a=mid:1` line of the Chrome offer.
fn chrome_with_video_filler(filler: &str) -> String {
    CHROME_PUBLISHER.replacen("a=mid:1\n", &format!("a=mid:1\n{filler}"), 1)
}

fn repeat_lines(target_len: usize, line: impl Fn(usize) -> String) -> String {
    let mut out = String::with_capacity(target_len + 128);
    let mut i = 0;
    while out.len() < target_len {
        out.push_str(&line(i));
        out.push('\n');
        i += 1;
    }
    out
}

const MEGABYTE: usize = 1 << 20;

#[test]
fn a_megabyte_of_attribute_lines_is_handled_quickly() {
    let fillers: Vec<(&str, String)> = vec![
        (
            "unknown attributes",
            repeat_lines(MEGABYTE, |i| format!("a=x-junk:{i}")),
        ),
        (
            "repeated rtcp-fb",
            repeat_lines(MEGABYTE, |_| "a=rtcp-fb:96 nack".into()),
        ),
        (
            "rtcp-fb for every payload type",
            repeat_lines(MEGABYTE, |i| format!("a=rtcp-fb:{} ccm fir", i % 128)),
        ),
        (
            "extmaps on every id",
            repeat_lines(MEGABYTE, |i| format!("a=extmap:{} urn:x:{i}", 1 + i % 255)),
        ),
        (
            "distinct ssrcs",
            repeat_lines(MEGABYTE, |i| format!("a=ssrc:{i} cname:x")),
        ),
        (
            "distinct rids",
            repeat_lines(MEGABYTE, |i| format!("a=rid:r{i} send")),
        ),
        (
            "rtpmap redefinitions",
            repeat_lines(MEGABYTE, |i| format!("a=rtpmap:{} VP8/90000", i % 128)),
        ),
        (
            "candidates",
            repeat_lines(MEGABYTE, |i| {
                format!("a=candidate:{i} 1 udp 1 192.0.2.1 {} typ host", i % 65536)
            }),
        ),
        (
            "fingerprints",
            repeat_lines(MEGABYTE, |_| {
                "a=fingerprint:sha-256 A5:4D:CA:18:25:30:BB:1D:6D:13:2C:DE:D6:23:7B:2E:D9:1E:3F:72:1F:CB:19:71:17:44:94:D6:49:3C:9D:5C".into()
            }),
        ),
    ];
    for (what, filler) in fillers {
        let text = chrome_with_video_filler(&filler);
        let start = Instant::now();
        let result = run(&text, Role::Publisher);
        let elapsed = start.elapsed();
        assert!(result.is_ok(), "{what}: {result:?}");
        assert!(elapsed < Duration::from_secs(10), "{what}: {elapsed:?}");
        eprintln!("1 MiB of {what}: {elapsed:?} (parse, negotiate, write, check)");
    }

    let session_junk = repeat_lines(MEGABYTE, |i| format!("a=x-session-junk:{i}"));
    let text = CHROME_PUBLISHER.replacen("a=extmap-allow-mixed\n", &session_junk, 1);
    assert!(run(&text, Role::Publisher).is_ok());

    let no_media = format!("v=0\no=- 1 1 IN IP4 0.0.0.0\ns=-\nt=0 0\n{session_junk}");
    assert_eq!(run(&no_media, Role::Publisher), Err(SdpError::NoMediaLines));
}

#[test]
fn a_megabyte_of_formats_or_m_lines_is_handled_quickly() {
    let many_formats = " 96".repeat(MEGABYTE / 3);
    let text = OBS_WHIP.replace(
        "m=video 54609 UDP/TLS/RTP/SAVPF 96",
        &format!("m=video 54609 UDP/TLS/RTP/SAVPF{many_formats}"),
    );
    assert!(run(&text, Role::Publisher).is_ok());

    let sections = repeat_lines(MEGABYTE, |i| {
        format!("m=audio 0 UDP/TLS/RTP/SAVPF 0\na=mid:x{i}")
    });
    let text = format!("{OBS_WHIP}{sections}");
    let start = Instant::now();
    let offer = parse_offer(&text).expect("parses");
    let neg = negotiate(&offer, Role::Publisher, &Capabilities::default()).expect("negotiates");
    let local = local_for(&neg);
    let answer = write_answer(&neg, &local);
    let elapsed = start.elapsed();
    assert!(elapsed < Duration::from_secs(20), "{elapsed:?}");
    assert_eq!(
        neg.accepted().count(),
        2,
        "the extra lines are disabled and not bundled"
    );
    check_answer(&offer, &neg, Role::Publisher, &local, &answer);

    let mids: String = (0..MEGABYTE / 8).map(|i| format!(" x{i}")).collect();
    let text = OBS_WHIP.replace("a=group:BUNDLE 0 1", &format!("a=group:BUNDLE 0 1{mids}"));
    assert_eq!(
        run(&text, Role::Publisher),
        Err(SdpError::BundleUnknownMid("x0".into()))
    );
}

/// Parse-and-negotiate time for an offer padded with `n` junk lines; the best of three runs.
fn best_time(n: usize) -> Duration {
    let filler = repeat_lines(n * 20, |i| format!("a=extmap:{} urn:x:{i}", 1 + i % 255));
    let text = chrome_with_video_filler(&filler);
    (0..3)
        .map(|_| {
            let start = Instant::now();
            let offer = parse_offer(&text).expect("parses");
            negotiate(&offer, Role::Publisher, &Capabilities::default()).expect("negotiates");
            start.elapsed()
        })
        .min()
        .unwrap_or_default()
}

#[test]
fn parse_time_grows_linearly_with_the_input() {
    let small = best_time(12_500);
    let large = best_time(100_000);
    let ratio = large.as_secs_f64() / small.as_secs_f64().max(1e-6);
    eprintln!("250 KB: {small:?}, 2 MB: {large:?}, ratio {ratio:.1}");
    // Eight times the input: a linear parser takes about eight times as long, a quadratic one 64.
    assert!(
        ratio < 24.0,
        "small {small:?}, large {large:?}, ratio {ratio:.1}"
    );
}

#[test]
fn transport_attributes_missing_or_inconsistent_are_malformed() {
    let no_fingerprint: String = CHROME_PUBLISHER
        .lines()
        .filter(|l| !l.starts_with("a=fingerprint"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(
        run(&no_fingerprint, Role::Publisher),
        Err(SdpError::MissingFingerprint { mid: "0".into() })
    );

    let no_pwd: String = CHROME_PUBLISHER
        .lines()
        .filter(|l| !l.starts_with("a=ice-pwd"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(
        run(&no_pwd, Role::Publisher),
        Err(SdpError::MissingIceCredentials { mid: "0".into() })
    );

    let mismatched = CHROME_PUBLISHER.replacen("a=ice-ufrag:Qe8W\na=ice-pwd:b4bbf0nt7fTnYqPcEHgbVmWC\na=ice-options:trickle\na=fingerprint:sha-256 A5:4D:CA:18:25:30:BB:1D:6D:13:2C:DE:D6:23:7B:2E:D9:1E:3F:72:1F:CB:19:71:17:44:94:D6:49:3C:9D:5C\na=setup:actpass\na=mid:1",
        "a=ice-ufrag:Zz9Z\na=ice-pwd:b4bbf0nt7fTnYqPcEHgbVmWC\na=ice-options:trickle\na=fingerprint:sha-256 A5:4D:CA:18:25:30:BB:1D:6D:13:2C:DE:D6:23:7B:2E:D9:1E:3F:72:1F:CB:19:71:17:44:94:D6:49:3C:9D:5C\na=setup:actpass\na=mid:1", 1);
    assert_ne!(mismatched, CHROME_PUBLISHER);
    assert_eq!(
        run(&mismatched, Role::Publisher),
        Err(SdpError::InconsistentIceCredentials {
            first: "0".into(),
            other: "1".into()
        })
    );

    let other_fp = FIREFOX_PUBLISHER.replace(
        "a=ice-pwd:9c0b5e3f6d2a41c8b7e6f5a4d3c2b1a0\na=ice-ufrag:3f8a2c1e\na=mid:1",
        "a=ice-pwd:9c0b5e3f6d2a41c8b7e6f5a4d3c2b1a0\na=ice-ufrag:3f8a2c1e\na=mid:1\na=fingerprint:sha-256 4F:BB:49:81:46:EF:70:30:CB:F9:53:72:52:DC:CE:AD:D7:64:B6:A3:2F:BB:09:AD:EA:E1:09:C4:A9:97:20:39",
    );
    assert_eq!(
        run(&other_fp, Role::Publisher),
        Err(SdpError::InconsistentFingerprint {
            first: "0".into(),
            other: "1".into()
        })
    );

    let no_bundle = CHROME_PUBLISHER.replace("a=group:BUNDLE 0 1\n", "");
    assert_eq!(
        run(&no_bundle, Role::Publisher),
        Err(SdpError::MissingBundle { count: 2 })
    );

    let unknown_mid = CHROME_PUBLISHER.replace("a=group:BUNDLE 0 1", "a=group:BUNDLE 0 1 7");
    assert_eq!(
        run(&unknown_mid, Role::Publisher),
        Err(SdpError::BundleUnknownMid("7".into()))
    );

    let duplicate_mid = CHROME_PUBLISHER.replace("a=mid:1", "a=mid:0");
    assert_eq!(
        run(&duplicate_mid, Role::Publisher),
        Err(SdpError::DuplicateMid("0".into()))
    );

    let no_mid = OBS_WHIP.replace("a=mid:1\n", "");
    assert_eq!(
        run(&no_mid, Role::Publisher),
        Err(SdpError::MissingMid { index: 1 })
    );

    let bad_mid = OBS_WHIP.replace("a=mid:1\n", "a=mid:a b\n");
    assert!(matches!(
        run(&bad_mid, Role::Publisher),
        Err(SdpError::InvalidMid(_))
    ));

    let colon_ufrag = OBS_WHIP.replace("a=ice-ufrag:mQ0W", "a=ice-ufrag:mQ:W");
    assert!(matches!(
        run(&colon_ufrag, Role::Publisher),
        Err(SdpError::InvalidIceCredentials(_))
    ));

    let bad_setup = OBS_WHIP.replace("a=setup:actpass", "a=setup:sideways");
    assert!(matches!(
        run(&bad_setup, Role::Publisher),
        Err(SdpError::InvalidAttribute {
            attribute: "setup",
            ..
        })
    ));

    for (attribute, from, to) in [
        ("rtpmap", "a=rtpmap:96 H264/90000", "a=rtpmap:96 H264"),
        ("extmap", "a=mid:1", "a=mid:1\na=extmap:300 urn:x"),
        ("ssrc", "a=ssrc:1965306214 cname", "a=ssrc:x cname"),
        ("rtcp-fb", "a=rtcp-fb:96 nack\n", "a=rtcp-fb:abc nack\n"),
        ("m", "UDP/TLS/RTP/SAVPF 96", "UDP/TLS/RTP/SAVPF 96 300"),
    ] {
        let text = OBS_WHIP.replace(from, to);
        assert_ne!(text, OBS_WHIP);
        match run(&text, Role::Publisher) {
            Err(SdpError::InvalidAttribute { attribute: a, .. }) => assert_eq!(a, attribute),
            other => panic!("{attribute}: {other:?}"),
        }
    }
}

#[test]
fn unsupported_offers_are_unprocessable() {
    let no_mux = OBS_WHIP.replace("a=rtcp-mux\n", "");
    assert_eq!(
        run(&no_mux, Role::Publisher),
        Err(SdpError::NoRtcpMux { mid: "0".into() })
    );

    let passive = OBS_WHIP.replace("a=setup:actpass", "a=setup:passive");
    assert_eq!(run(&passive, Role::Publisher), Err(SdpError::PassiveSetup));

    let holdconn = OBS_WHIP.replace("a=setup:actpass", "a=setup:holdconn");
    assert_eq!(
        run(&holdconn, Role::Publisher),
        Err(SdpError::UnsupportedSetup("holdconn".into()))
    );

    let sha1 = OBS_WHIP.replace(
        "a=fingerprint:sha-256 F5:F7:9F:2B:49:34:AF:87:F5:52:0B:69:B9:4B:0D:98:2E:85:BB:55:B6:72:A8:72:63:7A:CD:74:66:FC:B6:0E",
        "a=fingerprint:sha-1 F5:F7:9F:2B:49:34:AF:87:F5:52:0B:69:B9:4B:0D:98:2E:85:BB:55",
    );
    assert_eq!(
        run(&sha1, Role::Publisher),
        Err(SdpError::UnsupportedFingerprintHash("sha-1".into()))
    );

    let no_codec = OBS_WHIP
        .replace("UDP/TLS/RTP/SAVPF 111", "UDP/TLS/RTP/SAVPF 0")
        .replace("a=rtpmap:111 opus/48000/2", "a=rtpmap:0 PCMU/8000")
        .replace("a=rtpmap:96 H264/90000", "a=rtpmap:96 H265/90000");
    let err = run(&no_codec, Role::Publisher).expect_err("nothing usable");
    assert!(
        matches!(&err, SdpError::NoUsableCodec { mid, kind: "audio", .. } if mid == "0"),
        "{err:?}"
    );
    assert_eq!(err.http_status(), 422);

    let h264_mode0 = OBS_WHIP.replace("packetization-mode=1", "packetization-mode=0");
    let a = answer(&h264_mode0, Role::Publisher);
    assert!(
        !a.neg.media[1].accepted,
        "H.264 packetization-mode 0 is refused"
    );

    let plain_rtp = OBS_WHIP.replace("UDP/TLS/RTP/SAVPF", "RTP/AVP");
    assert_eq!(
        run(&plain_rtp, Role::Publisher),
        Err(SdpError::UnsupportedTransport {
            mid: "0".into(),
            proto: "RTP/AVP".into()
        })
    );

    let recvonly = OBS_WHIP.replace("a=sendonly", "a=recvonly");
    assert_eq!(
        run(&recvonly, Role::Publisher),
        Err(SdpError::PublisherNotSending)
    );
    let inactive = OBS_WHIP.replace("a=sendonly", "a=inactive");
    assert_eq!(
        run(&inactive, Role::Publisher),
        Err(SdpError::PublisherNotSending)
    );
    assert_eq!(
        run(OBS_WHIP, Role::Viewer),
        Err(SdpError::ViewerNotReceiving)
    );

    let lite = OBS_WHIP.replace("a=msid-semantic:WMS *", "a=ice-lite");
    assert_eq!(run(&lite, Role::Publisher), Err(SdpError::OffererIceLite));

    let all_disabled = GSTREAMER_WEBRTCBIN
        .replace("m=video 9", "m=video 0")
        .replace("a=bundle-only\n", "");
    assert_eq!(
        run(&all_disabled, Role::Publisher),
        Err(SdpError::NoUsableMedia)
    );

    for e in [
        SdpError::PassiveSetup,
        SdpError::NoUsableMedia,
        SdpError::ViewerNotReceiving,
    ] {
        assert_eq!(e.class(), SdpErrorClass::Unsupported);
    }
}

#[test]
fn error_messages_do_not_echo_huge_input() {
    let huge_mid = format!("a=mid:{}", "x".repeat(100_000));
    let text = OBS_WHIP.replace("a=mid:1", &huge_mid);
    let err = run(&text, Role::Publisher).expect_err("invalid mid");
    assert!(
        err.to_string().len() < 300,
        "{} bytes",
        err.to_string().len()
    );
    let err = run(&format!("v=0\n{}", "q".repeat(100_000)), Role::Publisher).expect_err("not sdp");
    assert!(err.to_string().len() < 300);
}

/// An offer whose `n` bundled audio lines inherit everything from the session level.
fn many_bundled_lines(n: usize, session_attributes: &str) -> String {
    let mids: String = (0..n).map(|i| format!(" a{i}")).collect();
    let lines: String = (0..n)
        .map(|i| format!("m=audio 9 UDP/TLS/RTP/SAVPF 111\na=mid:a{i}\na=sendonly\na=rtcp-mux\na=rtpmap:111 opus/48000/2\n"))
        .collect();
    format!(
        "v=0\no=- 1 1 IN IP4 0.0.0.0\ns=-\nt=0 0\na=group:BUNDLE{mids}\na=ice-ufrag:EsAw\n\
         a=ice-pwd:bP+XJMM09aR8AiX1jdukzR6Y\n{session_attributes}{lines}"
    )
}

#[test]
fn session_level_attributes_inherited_by_many_lines_cost_linear_time() {
    let fingerprint = "a=fingerprint:sha-256 A5:4D:CA:18:25:30:BB:1D:6D:13:2C:DE:D6:23:7B:2E:D9:1E:3F:72:1F:CB:19:71:17:44:94:D6:49:3C:9D:5C\n";
    let long_uri_extmaps: String = (1..=255)
        .map(|id| format!("a=extmap:{id} urn:x:{}\n", "u".repeat(2000)))
        .collect();
    let cases = [
        ("5000 session fingerprints", fingerprint.repeat(5000)),
        (
            "255 long session extmaps",
            format!("{fingerprint}{long_uri_extmaps}"),
        ),
    ];
    for (what, session) in cases {
        let text = many_bundled_lines(5000, &session);
        let start = Instant::now();
        let offer = parse_offer(&text).expect("parses");
        let neg = negotiate(&offer, Role::Publisher, &Capabilities::default()).expect("negotiates");
        let answer = write_answer(&neg, &local_for(&neg));
        let elapsed = start.elapsed();
        eprintln!(
            "{what}, 5000 lines ({} KiB): {elapsed:?}",
            text.len() / 1024
        );
        assert_eq!(neg.accepted().count(), 5000, "{what}");
        assert!(answer.len() > 5000 * 100);
        assert!(elapsed < Duration::from_secs(20), "{what}: {elapsed:?}");
    }

    // Trickle fragments: many sections inheriting session credentials.
    let sections: String = (0..20_000)
        .map(|i| format!("m=audio 9 RTP/AVP 0\na=mid:{i}\n"))
        .collect();
    let frag = format!("a=ice-ufrag:EsAw\na=ice-pwd:bP+XJMM09aR8AiX1jdukzR6Y\n{sections}");
    let start = Instant::now();
    let parsed = parse_trickle_sdpfrag(&frag).expect("parses");
    assert_eq!(parsed.media.len(), 20_000);
    assert!(start.elapsed() < Duration::from_secs(10));
}
