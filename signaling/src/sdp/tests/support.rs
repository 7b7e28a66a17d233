//! Shared fixtures: the recorded offers, a local description, and a checker that reads an answer
//! back with the `sdp` crate and enforces every answer rule against the offer it answers.

use std::collections::{HashMap, HashSet};
use std::io::Cursor;

use sdp::description::media::MediaDescription;
use sdp::description::session::SessionDescription;
use sfu::control::IceParams;
use sfu::dtls::Fingerprint;
use sfu::{MediaKind, Ssrc};

use crate::sdp::{
    Candidate, Capabilities, HeaderExtension, LocalDescription, Negotiated, Offer, Role, SendSsrcs,
    negotiate, parse_offer, write_answer,
};

pub const CHROME_PUBLISHER: &str = include_str!("../testdata/chrome_publisher.sdp");
pub const CHROME_SIMULCAST: &str = include_str!("../testdata/chrome_simulcast.sdp");
pub const CHROME_WHEP_VIEWER: &str = include_str!("../testdata/chrome_whep_viewer.sdp");
pub const FIREFOX_PUBLISHER: &str = include_str!("../testdata/firefox_publisher.sdp");
pub const SAFARI_PUBLISHER: &str = include_str!("../testdata/safari_publisher.sdp");
pub const AIORTC: &str = include_str!("../testdata/aiortc.sdp");
pub const OBS_WHIP: &str = include_str!("../testdata/obs_whip.sdp");
pub const GSTREAMER_WEBRTCBIN: &str = include_str!("../testdata/gstreamer_webrtcbin.sdp");

/// Every recorded offer with the role it is answered in.
pub const ALL_OFFERS: [(&str, &str, Role); 8] = [
    ("chrome_publisher", CHROME_PUBLISHER, Role::Publisher),
    ("chrome_simulcast", CHROME_SIMULCAST, Role::Publisher),
    ("chrome_whep_viewer", CHROME_WHEP_VIEWER, Role::Viewer),
    ("firefox_publisher", FIREFOX_PUBLISHER, Role::Publisher),
    ("safari_publisher", SAFARI_PUBLISHER, Role::Publisher),
    ("aiortc", AIORTC, Role::Publisher),
    ("obs_whip", OBS_WHIP, Role::Publisher),
    ("gstreamer_webrtcbin", GSTREAMER_WEBRTCBIN, Role::Publisher),
];

/// The files use LF; real clients send CRLF. Both must work.
pub fn crlf(text: &str) -> String {
    text.replace('\n', "\r\n")
}

pub fn local_ice() -> IceParams {
    IceParams {
        ufrag: "rcst".into(),
        pwd: "Ringcast0Password0Test0".into(),
    }
}

/// A local description with an IPv4 and an IPv6 host candidate and, for viewers, one sender per
/// negotiated line (with an RTX SSRC on every line, so that the writer must decide).
pub fn local_for(neg: &Negotiated) -> LocalDescription {
    let send_ssrcs = neg
        .media
        .iter()
        .enumerate()
        .map(|(i, _)| {
            Some(SendSsrcs {
                ssrc: Ssrc(1000 + i as u32),
                rtx_ssrc: Some(Ssrc(2000 + i as u32)),
                msid_stream: "ringcast".into(),
                msid_track: format!("track{i}"),
            })
        })
        .collect();
    LocalDescription {
        ice: local_ice(),
        fingerprint: Fingerprint::sha256_of(b"ringcast test certificate"),
        candidates: vec![
            Candidate::host(
                "198.51.100.10:40000".parse().expect("literal address"),
                65535,
            ),
            Candidate::host(
                "[2001:db8::10]:40000".parse().expect("literal address"),
                65534,
            ),
        ],
        session_id: 4_611_686_018_427_387_904,
        cname: "ringcast-cname".into(),
        send_ssrcs,
    }
}

/// The whole path on one offer text: parse, negotiate, write, read back, check.
pub struct Answered {
    pub offer: Offer,
    pub neg: Negotiated,
    pub local: LocalDescription,
    pub text: String,
    pub answer: SessionDescription,
}

pub fn answer(offer_text: &str, role: Role) -> Answered {
    let offer = parse_offer(offer_text).expect("the offer parses");
    let neg = negotiate(&offer, role, &Capabilities::default()).expect("the offer negotiates");
    let local = local_for(&neg);
    let text = write_answer(&neg, &local);
    let answer = check_answer(&offer, &neg, role, &local, &text);
    Answered {
        offer,
        neg,
        local,
        text,
        answer,
    }
}

/// Runs the whole path; returns the error of whichever step failed. Any answer that comes out
/// must satisfy every answer rule.
pub fn run(text: &str, role: Role) -> Result<(), crate::sdp::SdpError> {
    let offer = parse_offer(text)?;
    let neg = negotiate(&offer, role, &Capabilities::default())?;
    let local = local_for(&neg);
    let answer = write_answer(&neg, &local);
    check_answer(&offer, &neg, role, &local, &answer);
    Ok(())
}

pub fn values<'a>(md: &'a MediaDescription, key: &str) -> Vec<&'a str> {
    md.attributes
        .iter()
        .filter(|a| a.key == key)
        .map(|a| a.value.as_deref().unwrap_or(""))
        .collect()
}

pub fn has(md: &MediaDescription, key: &str) -> bool {
    md.attributes.iter().any(|a| a.key == key)
}

pub fn formats(md: &MediaDescription) -> Vec<u8> {
    md.media_name
        .formats
        .iter()
        .map(|f| f.parse().expect("numeric format"))
        .collect()
}

/// The `a=<key>:<pt> <rest>` values of a line, by payload type.
pub fn by_pt<'a>(md: &'a MediaDescription, key: &str) -> HashMap<u8, Vec<&'a str>> {
    let mut map: HashMap<u8, Vec<&str>> = HashMap::new();
    for v in values(md, key) {
        let (pt, rest) = v.split_once(' ').unwrap_or((v, ""));
        map.entry(pt.parse().expect("numeric pt"))
            .or_default()
            .push(rest);
    }
    map
}

/// The fmtp of an offered format as `key=value` pairs.
fn params(fmtp: &str) -> HashMap<String, String> {
    fmtp.split(';')
        .filter(|p| !p.trim().is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), v.trim().to_owned()),
            None => (p.trim().to_ascii_lowercase(), String::new()),
        })
        .collect()
}

/// Reads the answer back with the `sdp` crate and checks every rule of the answer against the
/// offer. Returns the parsed answer for further, client-specific checks.
pub fn check_answer(
    offer: &Offer,
    neg: &Negotiated,
    role: Role,
    local: &LocalDescription,
    text: &str,
) -> SessionDescription {
    let desc = SessionDescription::unmarshal(&mut Cursor::new(text.as_bytes()))
        .unwrap_or_else(|e| panic!("our answer does not parse: {e}\n{text}"));
    assert!(
        text.ends_with("\r\n") && !text.replace("\r\n", "").contains('\n'),
        "CRLF line endings"
    );
    assert!(
        desc.has_attribute("ice-lite"),
        "a=ice-lite at session level"
    );
    assert_eq!(
        desc.media_descriptions.len(),
        offer.media.len(),
        "one answer line per offer line"
    );

    let accepted: Vec<&str> = neg.accepted().map(|m| m.mid.0.as_str()).collect();
    assert!(!accepted.is_empty());
    let groups: Vec<&str> = desc
        .attributes
        .iter()
        .filter(|a| a.key == "group")
        .filter_map(|a| a.value.as_deref())
        .collect();
    if offer.bundle.is_empty() {
        assert!(groups.is_empty(), "no BUNDLE group when the offer had none");
    } else {
        assert_eq!(
            groups,
            vec![format!("BUNDLE {}", accepted.join(" "))],
            "BUNDLE of the accepted mids"
        );
    }

    let by_mid: HashMap<&str, (usize, &crate::sdp::NegotiatedMedia)> = neg
        .media
        .iter()
        .enumerate()
        .map(|(i, m)| (m.mid.0.as_str(), (i, m)))
        .collect();
    let accepted_set: HashSet<&str> = accepted.iter().copied().collect();
    let first = &local.candidates[0];
    let expected_candidates: Vec<String> = local.candidates.iter().map(|c| c.to_string()).collect();
    for (index, (md, om)) in desc.media_descriptions.iter().zip(&offer.media).enumerate() {
        let mid = om.mid.0.as_str();
        assert_eq!(
            md.media_name.media, om.media_type,
            "line {index}: same media type"
        );
        assert_eq!(
            md.media_name.protos.join("/"),
            om.proto,
            "line {index}: same protocol"
        );
        assert_eq!(
            values(md, "mid"),
            vec![mid],
            "line {index}: a=mid echoes the offer"
        );
        let negotiated = by_mid.get(mid).copied();
        let Some((neg_index, nm)) = negotiated.filter(|(_, m)| m.accepted) else {
            assert_eq!(
                md.media_name.port.value, 0,
                "line {index}: a rejected line has port 0"
            );
            assert!(
                !accepted_set.contains(mid),
                "line {index}: a rejected line is not bundled"
            );
            continue;
        };
        let kind = nm.kind;

        // Transport.
        assert_eq!(
            md.media_name.port.value, first.port as isize,
            "{mid}: port of the first candidate"
        );
        let address = md
            .connection_information
            .as_ref()
            .and_then(|c| c.address.as_ref())
            .map(|a| a.address.clone());
        assert_eq!(
            address,
            Some(first.ip.to_string()),
            "{mid}: c= carries the first candidate"
        );
        assert_eq!(values(md, "ice-ufrag"), vec![local.ice.ufrag.as_str()]);
        assert_eq!(values(md, "ice-pwd"), vec![local.ice.pwd.as_str()]);
        assert_eq!(
            values(md, "fingerprint"),
            vec![local.fingerprint.to_string()]
        );
        assert_eq!(values(md, "setup"), vec!["passive"]);
        assert!(has(md, "rtcp-mux"), "{mid}: a=rtcp-mux");
        assert_eq!(
            has(md, "rtcp-rsize"),
            om.rtcp_rsize,
            "{mid}: a=rtcp-rsize exactly when offered"
        );
        let directions: Vec<&str> = ["sendrecv", "sendonly", "recvonly", "inactive"]
            .into_iter()
            .filter(|d| has(md, d))
            .collect();
        let expected_direction = match role {
            Role::Publisher => "recvonly",
            Role::Viewer => "sendonly",
        };
        assert_eq!(directions, vec![expected_direction], "{mid}: direction");
        let candidates: Vec<&str> = values(md, "candidate");
        assert_eq!(
            candidates,
            expected_candidates
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
        );
        assert!(candidates.iter().all(|c| c.ends_with("typ host")));
        assert!(has(md, "end-of-candidates"), "{mid}: a=end-of-candidates");
        assert!(
            !has(md, "rid") && !has(md, "simulcast"),
            "{mid}: simulcast is not answered"
        );

        // Header extensions.
        let extmaps: Vec<(u8, &str)> = values(md, "extmap")
            .into_iter()
            .map(|v| {
                let (id, uri) = v.split_once(' ').expect("id and uri");
                (id.parse().expect("numeric id"), uri)
            })
            .collect();
        let twcc = HeaderExtension::TransportCc.uri();
        for (id, uri) in &extmaps {
            let ext = HeaderExtension::from_uri(uri)
                .unwrap_or_else(|| panic!("{mid}: unexpected extension {uri}"));
            assert!((1..=14).contains(id), "{mid}: one-byte id");
            assert!(
                om.extmaps
                    .iter()
                    .any(|(oid, ouri)| oid == id && ouri == uri),
                "{mid}: {id} {uri} was offered"
            );
            assert!(ext.allowed(role, kind), "{mid}: {uri} is not allowed here");
        }
        let answered_twcc = extmaps.iter().any(|(_, u)| *u == twcc);

        // Codecs.
        let rtpmaps = by_pt(md, "rtpmap");
        let fmtps = by_pt(md, "fmtp");
        let feedback = by_pt(md, "rtcp-fb");
        let answered = formats(md);
        assert!(!answered.is_empty());
        let mut primaries = Vec::new();
        for pt in &answered {
            let rtpmap = rtpmaps
                .get(pt)
                .and_then(|v| v.first())
                .unwrap_or_else(|| panic!("{mid}: no rtpmap for {pt}"));
            let oc = om
                .codecs
                .iter()
                .find(|c| c.pt.0 == *pt)
                .unwrap_or_else(|| panic!("{mid}: {pt} was not offered"));
            let (name, rest) = rtpmap.split_once('/').expect("name/clock");
            assert!(
                name.eq_ignore_ascii_case(&oc.name),
                "{mid}: {pt} keeps the offered codec"
            );
            assert!(
                rest.starts_with(&oc.clock_rate.to_string()),
                "{mid}: {pt} keeps its clock rate"
            );
            let answer_params =
                params(fmtps.get(pt).and_then(|v| v.first()).copied().unwrap_or(""));
            let offer_params = params(&oc.fmtp);
            match name.to_ascii_lowercase().as_str() {
                "rtx" => {
                    let apt: u8 = answer_params["apt"].parse().expect("numeric apt");
                    assert!(
                        answered.contains(&apt),
                        "{mid}: rtx {pt} repairs a listed format"
                    );
                    assert_eq!(
                        offer_params.get("apt"),
                        answer_params.get("apt"),
                        "{mid}: rtx {pt} keeps its apt"
                    );
                    assert_eq!(feedback.get(pt), None, "{mid}: no feedback on rtx");
                    continue;
                }
                "opus" => {
                    assert_eq!(kind, MediaKind::Audio);
                    assert_eq!(*rtpmap, "opus/48000/2");
                    for (k, v) in &answer_params {
                        assert!(
                            k == "minptime" || k == "useinbandfec",
                            "{mid}: opus keeps only minptime/useinbandfec"
                        );
                        assert_eq!(offer_params.get(k), Some(v), "{mid}: opus {k} as offered");
                    }
                }
                "h264" => {
                    assert_eq!(
                        answer_params.get("packetization-mode").map(String::as_str),
                        Some("1")
                    );
                    assert_eq!(
                        answer_params
                            .get("profile-level-id")
                            .map(|v| v.to_ascii_lowercase()),
                        offer_params
                            .get("profile-level-id")
                            .map(|v| v.to_ascii_lowercase()),
                        "{mid}: H.264 {pt} keeps the offered profile-level-id"
                    );
                    assert_eq!(
                        answer_params.contains_key("level-asymmetry-allowed"),
                        offer_params
                            .get("level-asymmetry-allowed")
                            .map(String::as_str)
                            == Some("1"),
                    );
                }
                "vp9" => {
                    let profile = answer_params
                        .get("profile-id")
                        .map(String::as_str)
                        .unwrap_or("0");
                    assert!(
                        profile == "0" || profile == "2",
                        "{mid}: VP9 profile 0 or 2"
                    );
                }
                "vp8" => assert!(answer_params.is_empty()),
                "av1" => {
                    let profile = answer_params
                        .get("profile")
                        .map(String::as_str)
                        .unwrap_or("0");
                    assert_eq!(profile, "0", "{mid}: AV1 profile 0");
                }
                other => panic!("{mid}: codec {other} must not be answered"),
            }
            primaries.push(*pt);
            for fb in feedback.get(pt).into_iter().flatten() {
                assert!(
                    ["nack", "nack pli", "ccm fir", "transport-cc"].contains(fb),
                    "{mid}: feedback {fb}"
                );
                let offered = match *fb {
                    "nack" => oc.feedback.nack,
                    "nack pli" => oc.feedback.nack_pli,
                    "ccm fir" => oc.feedback.ccm_fir,
                    _ => oc.feedback.transport_cc,
                };
                assert!(offered, "{mid}: feedback {fb} on {pt} was offered");
                if *fb == "transport-cc" {
                    assert!(
                        role == Role::Publisher && answered_twcc,
                        "{mid}: transport-cc toward publishers only"
                    );
                }
            }
        }
        let neg_pts: Vec<u8> = nm.codecs.iter().map(|c| c.pt.0).collect();
        assert_eq!(
            primaries, neg_pts,
            "{mid}: the answer lists the negotiated formats in order"
        );

        // SSRCs.
        let ssrcs = values(md, "ssrc");
        let groups = values(md, "ssrc-group");
        match role {
            Role::Publisher => {
                assert!(
                    ssrcs.is_empty() && groups.is_empty() && !has(md, "msid"),
                    "{mid}: no SSRCs toward publishers"
                )
            }
            Role::Viewer => {
                let send = local.send_ssrcs[neg_index]
                    .as_ref()
                    .expect("fixture sends on every line");
                assert_eq!(
                    values(md, "msid"),
                    vec![format!("{} {}", send.msid_stream, send.msid_track)]
                );
                assert!(ssrcs.contains(&format!("{} cname:{}", send.ssrc, local.cname).as_str()));
                let rtx_negotiated = nm.codecs.iter().any(|c| c.rtx_pt.is_some());
                let rtx = send.rtx_ssrc.expect("fixture has RTX SSRCs");
                if rtx_negotiated {
                    assert_eq!(groups, vec![format!("FID {} {}", send.ssrc, rtx)]);
                    assert!(ssrcs.contains(&format!("{rtx} cname:{}", local.cname).as_str()));
                } else {
                    assert!(groups.is_empty(), "{mid}: no FID group without RTX");
                    assert_eq!(ssrcs.len(), 1);
                }
            }
        }
    }
    assert_eq!(accepted_set.len(), accepted.len());
    desc
}

/// The answer line of a mid.
pub fn line<'a>(answer: &'a SessionDescription, mid: &str) -> &'a MediaDescription {
    answer
        .media_descriptions
        .iter()
        .find(|md| values(md, "mid") == vec![mid])
        .unwrap_or_else(|| panic!("no answer line for mid {mid}"))
}
