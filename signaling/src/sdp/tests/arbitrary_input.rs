//! Property tests: no input makes the SDP layer panic, and every answer it writes for a mutated
//! real offer still follows the answer rules.

use proptest::prelude::*;
use proptest::sample::Index;

use super::support::*;
use crate::sdp::{Role, parse_candidate, parse_trickle_sdpfrag};

/// Lines shaped like SDP, drawn from the attributes the parser interprets, with random values.
fn sdp_line() -> impl Strategy<Value = String> {
    let keys = prop::sample::select(vec![
        "m=audio 9 UDP/TLS/RTP/SAVPF",
        "m=video 0 UDP/TLS/RTP/SAVPF",
        "m=application 9 UDP/DTLS/SCTP",
        "a=mid:",
        "a=ice-ufrag:",
        "a=ice-pwd:",
        "a=fingerprint:sha-256 ",
        "a=setup:",
        "a=group:BUNDLE ",
        "a=rtpmap:",
        "a=fmtp:",
        "a=rtcp-fb:",
        "a=extmap:",
        "a=ssrc:",
        "a=ssrc-group:FID ",
        "a=msid:",
        "a=rid:",
        "a=simulcast:",
        "a=rtcp-mux",
        "a=bundle-only",
        "a=sendonly",
        "a=recvonly",
        "a=candidate:",
        "c=IN IP4 ",
        "b=AS:",
        "a=",
    ]);
    (keys, "[ -~]{0,40}").prop_map(|(k, v)| format!("{k}{v}"))
}

fn mutate(text: &str, ops: &[(u8, Index, String)]) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    for (op, at, value) in ops {
        if lines.is_empty() {
            break;
        }
        let i = at.index(lines.len());
        match op % 5 {
            0 => {
                lines.remove(i);
            }
            1 => {
                let copy = lines[i].clone();
                lines.insert(i, copy);
            }
            2 => {
                // Keep the attribute name, replace its value.
                let keep = lines[i].find(':').map_or(2, |p| p + 1).min(lines[i].len());
                let head: String = lines[i].chars().take(keep).collect();
                lines[i] = format!("{head}{value}");
            }
            3 => lines.insert(i, value.clone()),
            _ => {
                let j = (i * 7 + 3) % lines.len();
                lines.swap(i, j);
            }
        }
    }
    let mut out = lines.join("\r\n");
    out.push_str("\r\n");
    out
}

proptest! {
    // 512 cases by default; PROPTEST_CASES overrides for longer runs.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(512),
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_strings_never_panic(text in any::<String>()) {
        for role in [Role::Publisher, Role::Viewer] {
            let _ = run(&text, role);
        }
        let _ = parse_trickle_sdpfrag(&text);
        let _ = parse_candidate(&text);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = run(&text, Role::Publisher);
        let _ = parse_trickle_sdpfrag(&text);
    }

    #[test]
    fn sdp_shaped_input_never_panics(lines in prop::collection::vec(sdp_line(), 0..48)) {
        let text = format!("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n{}\r\n", lines.join("\r\n"));
        for role in [Role::Publisher, Role::Viewer] {
            let _ = run(&text, role);
        }
        let _ = parse_trickle_sdpfrag(&lines.join("\r\n"));
    }

    #[test]
    fn mutated_real_offers_fail_cleanly_or_answer_by_the_rules(
        which in 0..ALL_OFFERS.len(),
        ops in prop::collection::vec((any::<u8>(), any::<Index>(), "[ -~]{0,30}"), 1..6),
    ) {
        let (_, text, role) = ALL_OFFERS[which];
        let mutated = mutate(text, &ops);
        // `run` checks every answer rule on whatever answer comes out.
        let _ = run(&mutated, role);
    }
}
