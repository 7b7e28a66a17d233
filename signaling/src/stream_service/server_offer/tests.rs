//! The server's offer and the checks on the viewer's answer.

use super::*;

fn fingerprint() -> Fingerprint {
    Fingerprint {
        algorithm: "sha-256".into(),
        digest: vec![0xab; 32],
    }
}

fn offer() -> ServerOffer {
    let candidates = [Candidate::host(
        "127.0.0.1:50000".parse().expect("addr"),
        65535,
    )];
    let fp = fingerprint();
    write_offer(
        &Capabilities::default(),
        &OfferParams {
            ice: IceParams {
                ufrag: "srvufrag".into(),
                pwd: "serverpasswordserverpwd1".into(),
            },
            fingerprint: &fp,
            candidates: &candidates,
            session_id: 42,
            cname: "ringcastcname",
            msid_stream: "s1",
            ssrcs: [Ssrc(11), Ssrc(12), Ssrc(21), Ssrc(22)],
        },
    )
}

/// What Chromium answers to the offer (shape of a real answer, trimmed to what matters).
fn answer(setup: &str, video_pts: &str) -> String {
    let fp = "sha-256 12:34:56:78:9A:BC:DE:F0:12:34:56:78:9A:BC:DE:F0:12:34:56:78:9A:BC:DE:F0:12:34:56:78:9A:BC:DE:F0";
    let mut s = String::new();
    s.push_str("v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n");
    s.push_str("a=group:BUNDLE 0 1\r\na=msid-semantic: WMS\r\n");
    s.push_str(
        "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n",
    );
    s.push_str(&format!(
        "a=ice-ufrag:vwr1\r\na=ice-pwd:viewerpasswordviewerpwd\r\na=ice-options:trickle\r\na=fingerprint:{fp}\r\na=setup:{setup}\r\n"
    ));
    s.push_str(
        "a=mid:0\r\na=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid\r\na=recvonly\r\na=rtcp-mux\r\n",
    );
    s.push_str("a=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n");
    s.push_str(&format!(
        "m=video 9 UDP/TLS/RTP/SAVPF {video_pts}\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n"
    ));
    s.push_str(&format!(
        "a=ice-ufrag:vwr1\r\na=ice-pwd:viewerpasswordviewerpwd\r\na=ice-options:trickle\r\na=fingerprint:{fp}\r\na=setup:{setup}\r\n"
    ));
    s.push_str("a=mid:1\r\na=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid\r\na=recvonly\r\na=rtcp-mux\r\na=rtcp-rsize\r\n");
    s.push_str("a=rtpmap:96 VP8/90000\r\na=rtcp-fb:96 nack\r\na=rtcp-fb:96 nack pli\r\na=rtcp-fb:96 ccm fir\r\n");
    s.push_str("a=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\n");
    s.push_str("a=rtpmap:100 VP8/90000\r\n");
    s
}

#[test]
fn offer_is_ice_lite_actpass_sendonly_with_our_ssrcs() {
    let o = offer();
    let sdp = &o.sdp;
    for needle in [
        "a=ice-lite\r\n",
        "a=group:BUNDLE 0 1\r\n",
        "m=audio 50000 UDP/TLS/RTP/SAVPF 111\r\n",
        "m=video 50000 UDP/TLS/RTP/SAVPF 96 97 102 103 98 99 45 46\r\n",
        "a=setup:actpass\r\n",
        "a=sendonly\r\n",
        "a=ssrc-group:FID 21 22\r\n",
        "a=ssrc:11 cname:ringcastcname\r\n",
        "a=ice-ufrag:srvufrag\r\n",
        "a=candidate:",
        "typ host\r\n",
        "a=end-of-candidates\r\n",
    ] {
        assert!(sdp.contains(needle), "offer lacks {needle:?}:\n{sdp}");
    }
    assert!(!sdp.contains("a=recvonly"));
    assert!(!sdp.contains("a=setup:passive"));
    // The audio line has no RTX group (Opus has no RTX here).
    assert!(!sdp.contains("a=ssrc-group:FID 11 12"));
    // The sdp crate reads it back.
    let mut cur = std::io::Cursor::new(sdp.as_bytes());
    ::sdp::SessionDescription::unmarshal(&mut cur).expect("the offer is valid SDP");
}

#[test]
fn chromium_style_answer_gives_both_lines_in_our_numbering() {
    let o = offer();
    let a = accept_answer(&o, &answer("active", "96 97"), &Capabilities::default())
        .expect("answer accepted");
    assert_eq!(a.remote_ice.ufrag, "vwr1");
    assert_eq!(a.extmap.mid, Some(1));
    assert_eq!(a.lines.len(), 2);
    let subs = a.subscriptions(StreamKey(7));
    assert_eq!(subs[0].kind, MediaKind::Audio);
    assert_eq!(subs[0].ssrc, Ssrc(11));
    assert_eq!(subs[0].rtx_ssrc, None);
    assert_eq!(subs[1].ssrc, Ssrc(21));
    assert_eq!(subs[1].rtx_ssrc, Some(Ssrc(22)));
    assert_eq!(subs[1].codecs.len(), 1);
    assert_eq!(subs[1].codecs[0].pt, PayloadType(96));
    assert_eq!(subs[1].codecs[0].rtx_pt, Some(PayloadType(97)));
    assert!(subs[1].codecs[0].feedback.nack_pli);
}

#[test]
fn answer_taking_the_dtls_server_role_is_refused() {
    let o = offer();
    let e = accept_answer(&o, &answer("passive", "96 97"), &Capabilities::default())
        .expect_err("passive refused");
    assert_eq!(e, AnswerError::SetupNotActive);
    assert_eq!(e.http_status(), 422);
    let e = accept_answer(&o, &answer("actpass", "96 97"), &Capabilities::default())
        .expect_err("actpass in an answer refused");
    assert_eq!(e, AnswerError::SetupNotActive);
}

#[test]
fn answer_with_a_format_we_did_not_offer_is_refused() {
    let o = offer();
    // VP8 under payload type 100, which the offer did not use.
    let e = accept_answer(&o, &answer("active", "100"), &Capabilities::default())
        .expect_err("unoffered payload type");
    assert_eq!(
        e,
        AnswerError::UnofferedFormat {
            mid: "1".into(),
            pt: 100
        }
    );
}

#[test]
fn garbage_answers_are_400() {
    let o = offer();
    for junk in ["", "hello", "v=0\r\n", "m=video 9 RTP/AVP 0\r\n"] {
        let e = accept_answer(&o, junk, &Capabilities::default()).expect_err("refused");
        assert!(matches!(e.http_status(), 400 | 422), "{junk:?} -> {e:?}");
    }
}
