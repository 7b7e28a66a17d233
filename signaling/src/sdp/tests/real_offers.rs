//! Offers recorded from (or reconstructed after) real clients, through the whole path.

use sfu::control::ExtMap;
use sfu::{Codec, MediaKind, Mid, PayloadType, Rid, Ssrc};

use super::support::*;
use crate::sdp::{
    Capabilities, Direction, HeaderExtension, RidDirection, Role, SdpError, Setup, negotiate,
    parse_offer, write_answer,
};

fn pts(neg: &crate::sdp::Negotiated, mid: &str) -> Vec<u8> {
    let m = neg
        .media
        .iter()
        .find(|m| m.mid.0 == mid)
        .expect("line exists");
    m.codecs.iter().map(|c| c.pt.0).collect()
}

#[test]
fn every_recorded_offer_is_answered_by_the_rules_with_lf_and_crlf() {
    for (name, text, role) in ALL_OFFERS {
        for variant in [text.to_owned(), crlf(text)] {
            let a = std::panic::catch_unwind(|| answer(&variant, role));
            assert!(a.is_ok(), "{name} failed");
        }
    }
}

#[test]
fn chrome_publisher_gets_vp8_first_42e01f_before_other_h264_and_no_fec() {
    let a = answer(CHROME_PUBLISHER, Role::Publisher);
    assert_eq!(a.offer.setup, Setup::Actpass);
    assert_eq!(a.offer.ice.ufrag, "Qe8W");
    assert!(a.offer.ice_options_trickle);
    assert_eq!(a.offer.bundle, vec![Mid("0".into()), Mid("1".into())]);
    assert_eq!(pts(&a.neg, "0"), vec![111]);
    // VP8, then H.264 42e01f (109) before 42001f (103), 4d001f (117) and 64001f (119); packetization
    // mode 0 (107, 115, 39) is refused; then VP9 profiles 0 and 2; then AV1.
    assert_eq!(pts(&a.neg, "1"), vec![96, 109, 103, 117, 119, 98, 100, 45]);

    let video = &a.neg.media[1];
    assert_eq!(video.direction, Direction::RecvOnly);
    let vp8 = &video.codecs[0];
    assert_eq!((vp8.codec, vp8.rtx_pt), (Codec::Vp8, Some(PayloadType(97))));
    assert!(
        vp8.feedback.nack
            && vp8.feedback.nack_pli
            && vp8.feedback.ccm_fir
            && vp8.feedback.transport_cc
    );
    assert!(!vp8.feedback.goog_remb, "REMB is not answered");
    assert_eq!(
        video.codecs[1].fmtp,
        "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"
    );
    assert_eq!(video.remote_ssrc, Some(Ssrc(3_573_058_693)));
    assert_eq!(video.remote_rtx_ssrc, Some(Ssrc(2_436_256_575)));

    let audio = &a.neg.media[0];
    assert_eq!(audio.codecs[0].fmtp, "minptime=10;useinbandfec=1");
    assert_eq!(
        (audio.codecs[0].clock_rate, audio.codecs[0].channels),
        (48_000, 2)
    );
    assert!(audio.codecs[0].feedback.transport_cc);
    assert_eq!(audio.remote_ssrc, Some(Ssrc(1_745_453_179)));
    assert_eq!(
        audio.remote_msid.as_deref(),
        Some("0b5d6a31-7c2b-4bb1-9d4a-5e0d5b7c8a11 84a3b65a-e6fc-4e06-8a10-59202ce3c968")
    );

    assert_eq!(
        a.neg.extmap,
        ExtMap {
            mid: Some(4),
            rid: Some(10),
            repaired_rid: Some(11),
            abs_send_time: Some(2),
            transport_cc: Some(3),
            audio_level: Some(1),
            dependency_descriptor: None,
        }
    );
    let audio_line = line(&a.answer, "0");
    assert_eq!(audio_line.media_name.formats, vec!["111"]);
    assert_eq!(by_pt(audio_line, "rtcp-fb")[&111], vec!["transport-cc"]);
    let video_line = line(&a.answer, "1");
    assert_eq!(
        video_line.media_name.formats[..4],
        ["96", "97", "109", "114"]
    );
    assert!(
        !a.text.contains("red/") && !a.text.contains("ulpfec") && !a.text.contains("goog-remb")
    );
    assert_eq!(a.neg.remote_fingerprint.algorithm, "sha-256");
    assert!(a.text.contains("a=group:BUNDLE 0 1\r\n"));
    assert!(a.text.starts_with(
        "v=0\r\no=- 4611686018427387904 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=ice-lite\r\n"
    ));
}

#[test]
fn chrome_simulcast_offer_is_answered_with_its_three_encodings() {
    let a = answer(CHROME_SIMULCAST, Role::Publisher);
    let video = &a.offer.media[1];
    assert_eq!(
        video.rids,
        vec![
            (Rid("q".into()), RidDirection::Send),
            (Rid("h".into()), RidDirection::Send),
            (Rid("f".into()), RidDirection::Send)
        ]
    );
    assert_eq!(video.simulcast.as_deref(), Some("send q;h;f"));
    assert_eq!(video.ssrc, None, "simulcast offers announce no SSRC");
    assert!(!video.port_zero && video.enabled());
    let neg_video = &a.neg.media[1];
    assert_eq!(
        neg_video.rids,
        vec![Rid("q".into()), Rid("h".into()), Rid("f".into())]
    );
    assert_eq!(neg_video.remote_ssrc, None);
    // The RID header extensions identify the encodings' SSRCs.
    assert_eq!(
        (
            a.neg.extmap.rid,
            a.neg.extmap.repaired_rid,
            a.neg.extmap.mid
        ),
        (Some(10), Some(11), Some(4))
    );
    assert!(
        a.text
            .contains("a=rid:q recv\r\na=rid:h recv\r\na=rid:f recv\r\na=simulcast:recv q;h;f\r\n")
    );
    // The audio line is not simulcast.
    assert_eq!(a.text.matches("a=simulcast").count(), 1);
}

#[test]
fn simulcast_without_the_rid_extension_is_answered_with_one_encoding() {
    let offer = CHROME_SIMULCAST.replace(
        "a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id\n",
        "",
    );
    assert_ne!(offer, CHROME_SIMULCAST, "the test data has the line");
    let a = answer(&offer, Role::Publisher);
    assert!(a.neg.media[1].rids.is_empty());
    assert!(!a.text.contains("a=simulcast") && !a.text.contains("a=rid"));
}

#[test]
fn obs_style_rids_are_accepted_in_offer_order() {
    let offer = CHROME_SIMULCAST
        .replace("a=rid:q send", "a=rid:2 send")
        .replace("a=rid:h send", "a=rid:1 send")
        .replace("a=rid:f send", "a=rid:0 send")
        .replace("a=simulcast:send q;h;f", "a=simulcast:send 0;1;~2");
    let a = answer(&offer, Role::Publisher);
    let rids: Vec<&str> = a.neg.media[1].rids.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(rids, vec!["0", "1", "2"]);
    assert!(a.text.contains("a=simulcast:recv 0;1;2\r\n"));
}

#[test]
fn chrome_whep_viewer_gets_sendonly_ssrcs_and_transport_cc_but_no_abs_send_time() {
    let a = answer(CHROME_WHEP_VIEWER, Role::Viewer);
    // Every supported codec, in the offer's order, with H.264 42e01f moved ahead of the other H.264.
    assert_eq!(pts(&a.neg, "1"), vec![96, 109, 103, 117, 45, 98, 100, 119]);
    assert_eq!(
        a.neg.extmap,
        ExtMap {
            mid: Some(4),
            rid: Some(10),
            repaired_rid: Some(11),
            audio_level: Some(1),
            transport_cc: Some(3),
            ..ExtMap::default()
        }
    );
    for m in &a.neg.media {
        assert_eq!(m.direction, Direction::SendOnly);
        // Chromium offers transport-cc feedback on every codec of this fixture.
        assert!(m.codecs.iter().all(|c| c.feedback.transport_cc));
        assert_eq!(m.remote_ssrc, None);
    }
    assert!(a.text.contains(
        "a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
    ));
    assert!(a.text.contains("transport-cc") && !a.text.contains("abs-send-time"));
    let video = line(&a.answer, "1");
    let sender = a.local.send_ssrcs[1]
        .as_ref()
        .expect("fixture sends on the video line");
    assert_eq!(
        values(video, "ssrc-group"),
        vec![format!("FID {} 2001", sender.ssrc)]
    );
    assert_eq!(values(video, "msid"), vec!["ringcast track1"]);
    let audio = line(&a.answer, "0");
    assert!(
        values(audio, "ssrc-group").is_empty(),
        "Opus has no RTX here"
    );
    assert_eq!(values(audio, "ssrc"), vec!["1000 cname:ringcast-cname"]);
}

#[test]
fn viewer_offer_answered_without_senders_has_no_ssrc_lines() {
    let offer = parse_offer(CHROME_WHEP_VIEWER).expect("parses");
    let neg = negotiate(&offer, Role::Viewer, &Capabilities::default()).expect("negotiates");
    let mut local = local_for(&neg);
    local.send_ssrcs = vec![None];
    let text = write_answer(&neg, &local);
    assert!(!text.contains("a=ssrc") && !text.contains("a=msid"));
    let desc = sdp::description::session::SessionDescription::unmarshal(&mut std::io::Cursor::new(
        text.as_bytes(),
    ))
    .expect("answer parses");
    assert_eq!(desc.media_descriptions.len(), 2);
}

#[test]
fn whep_offer_used_for_publishing_and_whip_offer_used_for_viewing_are_unprocessable() {
    let viewer_offer = parse_offer(CHROME_WHEP_VIEWER).expect("parses");
    let err = negotiate(&viewer_offer, Role::Publisher, &Capabilities::default())
        .expect_err("recvonly publisher");
    assert_eq!(err, SdpError::PublisherNotSending);
    assert_eq!(err.http_status(), 422);
    let publisher_offer = parse_offer(CHROME_PUBLISHER).expect("parses");
    let err = negotiate(&publisher_offer, Role::Viewer, &Capabilities::default())
        .expect_err("sendonly viewer");
    assert_eq!(err, SdpError::ViewerNotReceiving);
    assert_eq!(err.http_status(), 422);
}

#[test]
fn firefox_session_level_fingerprint_and_fmtp_before_rtpmap_are_understood() {
    let a = answer(FIREFOX_PUBLISHER, Role::Publisher);
    assert_eq!(a.offer.fingerprint.digest[..2], [0x27, 0xa0]);
    assert_eq!(a.offer.ice.ufrag, "3f8a2c1e");
    assert_eq!(pts(&a.neg, "0"), vec![109]);
    assert_eq!(a.neg.media[0].codecs[0].fmtp, "useinbandfec=1");
    // VP8 (rtx 124), H.264 42e01f mode 1 (126), 42001f mode 1 (105), VP9 without profile-id (121).
    assert_eq!(pts(&a.neg, "1"), vec![120, 126, 105, 121]);
    let video = &a.neg.media[1];
    assert_eq!(video.codecs[0].rtx_pt, Some(PayloadType(124)));
    assert_eq!(video.codecs[3].fmtp, "");
    assert_eq!(video.remote_ssrc, Some(Ssrc(2_315_117_960)));
    assert_eq!(video.remote_rtx_ssrc, Some(Ssrc(1_843_093_342)));
    assert_eq!(
        a.neg.extmap,
        ExtMap {
            mid: Some(3),
            abs_send_time: Some(4),
            transport_cc: Some(7),
            audio_level: Some(1),
            ..ExtMap::default()
        }
    );
}

#[test]
fn safari_offer_with_h264_first_is_answered_with_our_preference_for_publishers() {
    let a = answer(SAFARI_PUBLISHER, Role::Publisher);
    // Safari lists H.264 640c1f, H.264 42e01f, H.265, VP8, VP9: publishers get VP8 first, then
    // 42e01f before 640c1f; H.265 is not supported.
    assert_eq!(pts(&a.neg, "1"), vec![127, 98, 96, 104]);
    assert_eq!(
        a.neg.media[1].codecs[2].fmtp,
        "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640c1f"
    );

    let h264_only = Capabilities {
        video_codecs: vec![Codec::H264],
        ..Capabilities::default()
    };
    let offer = parse_offer(SAFARI_PUBLISHER).expect("parses");
    let neg = negotiate(&offer, Role::Publisher, &h264_only).expect("negotiates");
    assert_eq!(pts(&neg, "1"), vec![98, 96]);
}

#[test]
fn safari_offer_for_viewing_keeps_the_offer_order_with_42e01f_first() {
    let sendrecv = SAFARI_PUBLISHER.replace("a=sendonly", "a=sendrecv");
    let a = answer(&sendrecv, Role::Viewer);
    assert_eq!(pts(&a.neg, "1"), vec![98, 96, 127, 104]);
}

#[test]
fn aiortc_offer_uses_the_strongest_fingerprint_and_separate_candidate_ports() {
    let a = answer(AIORTC, Role::Publisher);
    assert_eq!(a.offer.fingerprint.algorithm, "sha-512");
    assert_eq!(a.offer.fingerprint.digest.len(), 64);
    assert_eq!(a.offer.ice.ufrag, "6qMv");
    // Opus without fmtp; G722, PCMU and PCMA refused.
    assert_eq!(pts(&a.neg, "0"), vec![96]);
    assert_eq!(a.neg.media[0].codecs[0].fmtp, "");
    // VP8, then H.264 42e01f (101) before 42001f (99).
    assert_eq!(pts(&a.neg, "1"), vec![97, 101, 99]);
    assert_eq!(
        a.neg.extmap,
        ExtMap {
            mid: Some(1),
            audio_level: Some(2),
            abs_send_time: Some(3),
            ..ExtMap::default()
        }
    );
    // aiortc offers sendrecv: it may view too.
    let viewer = answer(AIORTC, Role::Viewer);
    assert!(
        viewer
            .neg
            .media
            .iter()
            .all(|m| m.accepted && m.direction == Direction::SendOnly)
    );
    assert_eq!(viewer.neg.extmap.abs_send_time, None);
}

#[test]
fn one_extmap_id_names_one_extension_across_the_bundle() {
    // Older aiortc mapped id 2 to the audio level on audio and to abs-send-time on video. One id
    // can name only one extension in a BUNDLE, so the first line's mapping wins.
    let clash = AIORTC.replace(
        "a=extmap:3 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
        "a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
    );
    assert_ne!(clash, AIORTC);
    let a = answer(&clash, Role::Publisher);
    assert_eq!(
        a.neg.extmap,
        ExtMap {
            mid: Some(1),
            audio_level: Some(2),
            ..ExtMap::default()
        }
    );
    assert_eq!(
        a.neg.media[1].extmaps,
        vec![(1, HeaderExtension::Mid.uri().to_owned())]
    );
    // The same extension under two ids: the first id wins, the other line drops it.
    let moved_mid = AIORTC.replacen(
        "a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid\na=extmap:3",
        "a=extmap:5 urn:ietf:params:rtp-hdrext:sdes:mid\na=extmap:3",
        1,
    );
    assert_ne!(moved_mid, AIORTC);
    let a = answer(&moved_mid, Role::Publisher);
    assert_eq!(a.neg.extmap.mid, Some(1));
    assert!(
        a.neg.media[1]
            .extmaps
            .iter()
            .all(|(_, u)| u != HeaderExtension::Mid.uri())
    );
}

#[test]
fn obs_whip_offer_without_extensions_is_accepted_with_its_announced_ssrcs() {
    let a = answer(OBS_WHIP, Role::Publisher);
    assert_eq!(a.offer.ice.ufrag, "mQ0W");
    assert!(a.offer.ice_options_trickle);
    assert_eq!(a.neg.extmap, ExtMap::default());
    assert_eq!(pts(&a.neg, "0"), vec![111]);
    assert_eq!(a.neg.media[0].codecs[0].fmtp, "minptime=10;useinbandfec=1");
    assert_eq!(pts(&a.neg, "1"), vec![96]);
    let h264 = &a.neg.media[1].codecs[0];
    assert_eq!(h264.codec, Codec::H264);
    assert!(
        h264.feedback.nack
            && h264.feedback.nack_pli
            && !h264.feedback.ccm_fir
            && !h264.feedback.transport_cc
    );
    assert_eq!(a.neg.media[0].remote_ssrc, Some(Ssrc(1_965_306_213)));
    assert_eq!(a.neg.media[1].remote_ssrc, Some(Ssrc(1_965_306_214)));
    assert_eq!(
        a.neg.media[1].remote_msid.as_deref(),
        Some("qLkQ6p4S9cjP0Eym qLkQ6p4S9cjP0Eym-video")
    );
    assert!(!a.text.contains("a=extmap"));
}

#[test]
fn gstreamer_bundle_only_line_is_accepted_on_the_shared_transport() {
    let a = answer(GSTREAMER_WEBRTCBIN, Role::Publisher);
    let audio = &a.offer.media[1];
    assert!(audio.port_zero && audio.bundle_only && audio.enabled());
    assert_eq!(
        a.neg.bundle(),
        vec![&Mid("video0".into()), &Mid("audio1".into())]
    );
    assert_eq!(a.neg.media[1].kind, MediaKind::Audio);
    assert!(a.neg.media[1].accepted, "uppercase OPUS is Opus");
    assert_eq!(line(&a.answer, "audio1").media_name.port.value, 40000);
    // Constrained Baseline written as 42c01f is echoed; sprop-parameter-sets is not.
    assert_eq!(
        a.neg.media[0].codecs[0].fmtp,
        "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42c01f"
    );
    assert_eq!(a.neg.media[0].codecs[0].rtx_pt, Some(PayloadType(97)));
    assert_eq!(
        a.neg.extmap,
        ExtMap {
            transport_cc: Some(1),
            ..ExtMap::default()
        }
    );
    assert!(
        a.neg
            .media
            .iter()
            .all(|m| m.codecs[0].feedback.transport_cc)
    );
    assert_eq!(a.neg.media[0].remote_rtx_ssrc, Some(Ssrc(2_795_829_553)));
}

#[test]
fn data_channel_line_is_rejected_with_port_zero_outside_the_bundle() {
    let with_data = format!(
        "{}m=application 9 UDP/DTLS/SCTP webrtc-datachannel\nc=IN IP4 0.0.0.0\na=ice-ufrag:Qe8W\n\
         a=ice-pwd:b4bbf0nt7fTnYqPcEHgbVmWC\na=ice-options:trickle\n\
         a=fingerprint:sha-256 A5:4D:CA:18:25:30:BB:1D:6D:13:2C:DE:D6:23:7B:2E:D9:1E:3F:72:1F:CB:19:71:17:44:94:D6:49:3C:9D:5C\n\
         a=setup:actpass\na=mid:2\na=sctp-port:5000\na=max-message-size:262144\n",
        CHROME_PUBLISHER
    )
    .replace("a=group:BUNDLE 0 1", "a=group:BUNDLE 0 1 2");
    let a = answer(&with_data, Role::Publisher);
    assert_eq!(a.offer.media[2].kind, None);
    assert_eq!(a.answer.media_descriptions.len(), 3);
    let data = &a.answer.media_descriptions[2];
    assert_eq!(data.media_name.media, "application");
    assert_eq!(data.media_name.port.value, 0);
    assert_eq!(data.media_name.formats, vec!["webrtc-datachannel"]);
    assert!(a.text.contains("a=group:BUNDLE 0 1\r\n"));
}

#[test]
fn recvonly_line_of_a_publisher_is_rejected_while_the_sending_line_is_accepted() {
    let mixed = CHROME_PUBLISHER.replacen("a=sendonly", "a=recvonly", 1);
    let a = answer(&mixed, Role::Publisher);
    assert!(!a.neg.media[0].accepted);
    assert!(
        a.neg.media[0]
            .rejection
            .as_deref()
            .is_some_and(|r| r.contains("publisher"))
    );
    assert!(a.neg.media[1].accepted);
    assert_eq!(a.neg.bundle(), vec![&Mid("1".into())]);
    assert_eq!(line(&a.answer, "0").media_name.port.value, 0);
    assert_eq!(
        a.neg.extmap.audio_level, None,
        "nothing from rejected lines"
    );
}

#[test]
fn a_line_without_usable_codecs_is_rejected_alone() {
    let pcmu_audio = OBS_WHIP
        .replace(
            "m=audio 54609 UDP/TLS/RTP/SAVPF 111",
            "m=audio 54609 UDP/TLS/RTP/SAVPF 0",
        )
        .replace("a=rtpmap:111 opus/48000/2", "a=rtpmap:0 PCMU/8000");
    let a = answer(&pcmu_audio, Role::Publisher);
    assert!(!a.neg.media[0].accepted);
    assert!(
        a.neg.media[0]
            .rejection
            .as_deref()
            .is_some_and(|r| r.contains("Opus"))
    );
    assert!(a.neg.media[1].accepted);
}

#[test]
fn single_line_offer_without_bundle_is_answered_without_a_group() {
    let text = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:v\r\na=sendonly\r\na=rtcp-mux\r\n\
        a=ice-ufrag:abcd\r\na=ice-pwd:0123456789abcdefghijkl\r\n\
        a=fingerprint:sha-256 A5:4D:CA:18:25:30:BB:1D:6D:13:2C:DE:D6:23:7B:2E:D9:1E:3F:72:1F:CB:19:71:17:44:94:D6:49:3C:9D:5C\r\n\
        a=rtpmap:96 VP8/90000\r\n";
    let a = answer(text, Role::Publisher);
    assert!(a.offer.bundle.is_empty());
    assert_eq!(
        a.offer.setup,
        Setup::Active,
        "no a=setup means active (RFC 4145)"
    );
    assert!(!a.text.contains("a=group"));
}

#[test]
fn ipv6_first_candidate_gives_an_ip6_connection_line() {
    let offer = parse_offer(OBS_WHIP).expect("parses");
    let neg = negotiate(&offer, Role::Publisher, &Capabilities::default()).expect("negotiates");
    let mut local = local_for(&neg);
    local.candidates.reverse();
    let text = write_answer(&neg, &local);
    assert!(text.contains("m=audio 40000 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP6 2001:db8::10\r\n"));
    check_answer(&offer, &neg, Role::Publisher, &local, &text);
}

#[test]
fn header_extensions_can_be_narrowed_by_capabilities() {
    let caps = Capabilities {
        header_extensions: vec![HeaderExtension::Mid],
        ..Capabilities::default()
    };
    let offer = parse_offer(CHROME_PUBLISHER).expect("parses");
    let neg = negotiate(&offer, Role::Publisher, &caps).expect("negotiates");
    assert_eq!(
        neg.extmap,
        ExtMap {
            mid: Some(4),
            ..ExtMap::default()
        }
    );
    assert!(
        neg.media
            .iter()
            .flat_map(|m| &m.codecs)
            .all(|c| !c.feedback.transport_cc),
        "no TWCC feedback without the extension"
    );
}

#[test]
fn chromium_156_offers_generated_headless_are_answered() {
    let whip = answer(CHROMIUM156_WHIP, Role::Publisher);
    // Chromium's open-source build offers H.264 42001f, 42e01f and 4d001f (no 64001f).
    assert_eq!(pts(&whip.neg, "1"), vec![96, 108, 102, 116, 98, 100, 45]);
    assert_eq!(whip.neg.media[1].codecs[1].rtx_pt, Some(PayloadType(109)));
    assert!(whip.neg.media[0].remote_ssrc.is_some() && whip.neg.media[1].remote_rtx_ssrc.is_some());

    let simulcast = answer(CHROMIUM156_SIMULCAST, Role::Publisher);
    assert_eq!(simulcast.offer.media[1].rids.len(), 3);
    assert_eq!(
        simulcast.offer.media[1].simulcast.as_deref(),
        Some("send q;h;f")
    );
    assert_eq!(simulcast.neg.media[1].rids.len(), 3);
    // Its dependency descriptor is accepted, and two-byte extensions (which a descriptor with
    // its template structure needs) allowed as offered.
    assert_eq!(simulcast.neg.extmap.dependency_descriptor, Some(12));
    assert!(simulcast.text.contains("a=extmap-allow-mixed\r\n"));
    let without = CHROMIUM156_SIMULCAST.replace("a=extmap-allow-mixed\n", "");
    assert_ne!(without, CHROMIUM156_SIMULCAST);
    assert!(
        !answer(&without, Role::Publisher)
            .text
            .contains("a=extmap-allow-mixed")
    );

    // The receive-side offer also lists VP9 profiles 1 and 3, H.264 High 4:4:4 (f4001f), AV1
    // profile 1 and FlexFEC: VP9 1/3, AV1 1 and FlexFEC are refused, f4001f mode 1 is kept.
    let whep = answer(CHROMIUM156_WHEP, Role::Viewer);
    let video = pts(&whep.neg, "1");
    assert_eq!(video, vec![96, 98, 100, 108, 102, 116, 41, 45]);
    assert!(
        !video.contains(&35)
            && !video.contains(&37)
            && !video.contains(&47)
            && !video.contains(&49)
    );
}
