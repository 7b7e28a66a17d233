//! Offer writer, answer writer and parser, against our own output and captured server answers.

use std::net::SocketAddr;

use sfu::control::IceParams;
use sfu::dtls::DtlsCert;
use sfu::{MediaKind, Ssrc};

use super::*;

fn local(direction: Direction, audio: bool) -> LocalDescription {
    let cert = DtlsCert::generate().unwrap();
    LocalDescription {
        ice: IceParams {
            ufrag: "abcd1234".into(),
            pwd: "0123456789abcdefghijklmn".into(),
        },
        fingerprint: cert.fingerprint(),
        candidate: Some("127.0.0.1:40000".parse().unwrap()),
        direction,
        video: true,
        audio,
        session_id: 42,
        cname: "lgcname".into(),
        ssrcs: direction.sends().then_some(PublisherSsrcs {
            video: Ssrc(1001),
            video_rtx: Ssrc(1002),
            audio: Ssrc(2001),
        }),
        simulcast: Vec::new(),
    }
}

/// An answer as Ringcast's signaling writes it toward a WHEP viewer (captured from the server).
const RINGCAST_WHEP_ANSWER: &str = include_str!("testdata/ringcast_whep_answer.sdp");
/// An answer as Ringcast's signaling writes it toward a WHIP publisher.
const RINGCAST_WHIP_ANSWER: &str = include_str!("testdata/ringcast_whip_answer.sdp");

#[test]
fn offer_has_bundle_mux_ice_fingerprint_actpass_and_the_codecs() {
    let l = local(Direction::SendOnly, true);
    let sdp = write_offer(&l);
    for needle in [
        "a=group:BUNDLE 0 1\r\n",
        "m=video 40000 UDP/TLS/RTP/SAVPF 96 97\r\n",
        "m=audio 40000 UDP/TLS/RTP/SAVPF 111\r\n",
        "a=rtcp-mux\r\n",
        "a=ice-ufrag:abcd1234\r\n",
        "a=ice-pwd:0123456789abcdefghijklmn\r\n",
        "a=setup:actpass\r\n",
        "a=rtpmap:96 VP8/90000\r\n",
        "a=rtcp-fb:96 nack\r\n",
        "a=rtcp-fb:96 nack pli\r\n",
        "a=rtcp-fb:96 transport-cc\r\n",
        "a=rtpmap:97 rtx/90000\r\n",
        "a=fmtp:97 apt=96\r\n",
        "a=rtpmap:111 opus/48000/2\r\n",
        "a=ssrc-group:FID 1001 1002\r\n",
        "a=ssrc:2001 cname:lgcname\r\n",
        "a=sendonly\r\n",
        "a=candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host generation 0\r\n",
    ] {
        assert!(sdp.contains(needle), "offer lacks {needle:?}:\n{sdp}");
    }
    assert!(sdp.contains(&format!("a=fingerprint:{}\r\n", l.fingerprint)));
    assert!(sdp.starts_with("v=0\r\n"));
}

#[test]
fn viewer_offer_is_recvonly_without_ssrcs_and_video_only_without_audio() {
    let sdp = write_offer(&local(Direction::RecvOnly, false));
    assert!(sdp.contains("a=recvonly\r\n"));
    assert!(sdp.contains("a=group:BUNDLE 0\r\n"));
    assert!(!sdp.contains("a=ssrc"));
    assert!(!sdp.contains("m=audio"));
}

#[test]
fn our_offer_parses_back_with_rtx_folded_and_fid_read() {
    let l = local(Direction::SendOnly, true);
    let r = RemoteDescription::parse(&write_offer(&l)).unwrap();
    assert_eq!(r.ice, l.ice);
    assert_eq!(r.fingerprint, l.fingerprint);
    assert_eq!(r.setup, Some(Setup::ActPass));
    assert!(!r.ice_lite);
    assert_eq!(r.bundle, vec!["0", "1"]);
    let v = r.section(MediaKind::Video).unwrap();
    assert_eq!(v.codecs.len(), 1, "rtx folded into VP8: {:?}", v.codecs);
    assert_eq!((v.codecs[0].pt, v.codecs[0].rtx_pt), (96, Some(97)));
    assert_eq!(v.fid, Some((1001, 1002)));
    assert_eq!(v.primary_ssrc(), Some(1001));
    assert_eq!(v.ext_id(EXT_MID), Some(EXT_ID_MID));
    let a = r.section(MediaKind::Audio).unwrap();
    assert_eq!(a.pt_of("opus"), Some(111));
    assert_eq!(a.ext_id(EXT_AUDIO_LEVEL), Some(EXT_ID_AUDIO_LEVEL));
    assert_eq!(
        r.candidates.iter().map(|c| c.addr).collect::<Vec<_>>(),
        vec!["127.0.0.1:40000".parse::<SocketAddr>().unwrap()]
    );
}

#[test]
fn ringcast_viewer_answer_gives_lite_ice_candidates_and_announced_ssrcs() {
    let r = RemoteDescription::parse(RINGCAST_WHEP_ANSWER).unwrap();
    assert!(r.ice_lite);
    assert_eq!(r.setup, Some(Setup::Passive));
    assert!(!r.candidates.is_empty());
    let l = local(Direction::RecvOnly, true);
    let plan = plan_media(&l, &r).unwrap();
    let v = plan.video.unwrap();
    assert_eq!((v.pt, v.rtx_pt), (96, Some(97)));
    assert!(v.ssrc.is_some() && v.rtx_ssrc.is_some() && v.ssrc != v.rtx_ssrc);
    let a = plan.audio.unwrap();
    assert_eq!(a.pt, 111);
    assert!(a.ssrc.is_some());
    let c = r
        .pick_candidate(Some("127.0.0.1".parse().unwrap()))
        .unwrap();
    assert_eq!(c.ip().to_string(), "127.0.0.1");
}

#[test]
fn ringcast_publisher_answer_plans_our_ssrcs_and_the_accepted_extensions() {
    let r = RemoteDescription::parse(RINGCAST_WHIP_ANSWER).unwrap();
    let l = local(Direction::SendOnly, true);
    let plan = plan_media(&l, &r).unwrap();
    let v = plan.video.unwrap();
    assert_eq!((v.ssrc, v.rtx_ssrc), (Some(1001), Some(1002)));
    assert_eq!(v.ext.mid, Some(EXT_ID_MID));
    assert_eq!(plan.audio.unwrap().ssrc, Some(2001));
}

#[test]
fn answer_to_a_server_offer_mirrors_its_numbering_and_rejects_the_rest() {
    let offer = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE a v d\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 109\r\nc=IN IP4 10.0.0.1\r\na=mid:a\r\na=sendonly\r\n\
        a=ice-ufrag:srv1\r\na=ice-pwd:serverpasswordserverpass\r\n\
        a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r\n\
        a=setup:actpass\r\na=rtcp-mux\r\na=extmap:7 urn:ietf:params:rtp-hdrext:sdes:mid\r\n\
        a=rtpmap:109 opus/48000/2\r\na=ssrc:55 cname:x\r\n\
        a=candidate:1 1 udp 2015363327 10.0.0.1 10000 typ host\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 100 101\r\na=mid:v\r\na=sendonly\r\na=rtcp-mux\r\n\
        a=rtpmap:100 VP8/90000\r\na=rtpmap:101 rtx/90000\r\na=fmtp:101 apt=100\r\n\
        a=ssrc-group:FID 66 67\r\na=ssrc:66 cname:x\r\na=ssrc:67 cname:x\r\n\
        m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:d\r\n";
    let r = RemoteDescription::parse(offer).unwrap();
    let l = local(Direction::RecvOnly, true);
    let answer = write_answer(&l, &r).unwrap();
    for needle in [
        "a=group:BUNDLE a v\r\n",
        "m=audio 40000 UDP/TLS/RTP/SAVPF 109\r\n",
        "a=extmap:7 urn:ietf:params:rtp-hdrext:sdes:mid\r\n",
        "m=video 40000 UDP/TLS/RTP/SAVPF 100 101\r\n",
        "a=fmtp:101 apt=100\r\n",
        "a=recvonly\r\n",
        "a=setup:active\r\n",
        "m=application 0 UDP/DTLS/SCTP webrtc-datachannel\r\n",
    ] {
        assert!(
            answer.contains(needle),
            "answer lacks {needle:?}:\n{answer}"
        );
    }
    let plan = plan_media(&l, &r).unwrap();
    let v = plan.video.unwrap();
    assert_eq!(
        (v.pt, v.rtx_pt, v.ssrc, v.rtx_ssrc),
        (100, Some(101), Some(66), Some(67))
    );
    assert_eq!(plan.audio.unwrap().ssrc, Some(55));
}

#[test]
fn descriptions_without_credentials_or_fingerprint_are_refused() {
    let sdp = write_offer(&local(Direction::SendOnly, false));
    let no_pwd: String = sdp
        .lines()
        .filter(|l| !l.starts_with("a=ice-pwd"))
        .map(|l| format!("{l}\r\n"))
        .collect();
    assert_eq!(
        RemoteDescription::parse(&no_pwd),
        Err(SdpError::Missing("a=ice-pwd"))
    );
    let no_fp: String = sdp
        .lines()
        .filter(|l| !l.starts_with("a=fingerprint"))
        .map(|l| format!("{l}\r\n"))
        .collect();
    assert_eq!(
        RemoteDescription::parse(&no_fp),
        Err(SdpError::Missing("a=fingerprint"))
    );
    assert!(RemoteDescription::parse("hello").is_err());
    assert!(RemoteDescription::parse("v=0\r\nm=video x\r\n").is_err());
}

mod arbitrary {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn parser_never_panics_on_arbitrary_text(s in "\\PC{0,400}") {
            let _ = RemoteDescription::parse(&s);
        }

        #[test]
        fn parser_never_panics_on_mangled_answers(cut in 0usize..2000, junk in "[a-z=:0-9 /\r\n]{0,40}") {
            let base = RINGCAST_WHEP_ANSWER;
            let cut = cut.min(base.len());
            let cut = (0..=cut).rev().find(|&i| base.is_char_boundary(i)).unwrap_or(0);
            let s = format!("{}{}{}", &base[..cut], junk, &base[cut..]);
            let _ = RemoteDescription::parse(&s);
        }
    }
}

#[test]
fn a_simulcast_offer_names_its_encodings_and_the_plan_takes_what_the_answer_accepts() {
    let mut l = local(Direction::SendOnly, false);
    l.simulcast = SIMULCAST_RIDS.iter().map(|r| r.to_string()).collect();
    let offer = write_offer(&l);
    for want in [
        "a=rid:q send\r\n",
        "a=rid:h send\r\n",
        "a=rid:f send\r\n",
        "a=simulcast:send q;h;f\r\n",
        "a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id\r\n",
        "a=extmap:11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id\r\n",
    ] {
        assert!(offer.contains(want), "{want:?} in\n{offer}");
    }
    assert!(
        !offer.contains("a=ssrc:"),
        "simulcast SSRCs are not announced\n{offer}"
    );
    // What Ringcast answers: the rids as recv, the rid extension kept.
    let answer = RINGCAST_WHIP_ANSWER.replace(
        "a=rtcp-mux\r\n",
        "a=rtcp-mux\r\na=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id\r\na=rid:q recv\r\na=rid:h recv\r\na=rid:f recv\r\na=simulcast:recv q;h;f\r\n",
    );
    assert_ne!(answer, RINGCAST_WHIP_ANSWER);
    let remote = RemoteDescription::parse(&answer).unwrap();
    let plan = plan_media(&l, &remote).unwrap();
    let video = plan.video.unwrap();
    assert_eq!(video.rids, vec!["q", "h", "f"]);
    assert_eq!(video.ext.rid, Some(10));
    // An answer without simulcast: one encoding.
    let plan = plan_media(&l, &RemoteDescription::parse(RINGCAST_WHIP_ANSWER).unwrap()).unwrap();
    assert!(plan.video.unwrap().rids.is_empty());
}
