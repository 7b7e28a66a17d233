//! Interop with real WebRTC stacks, which must accept the answers Ringcast writes to their
//! offers. Each stack creates an offer, Ringcast answers it, and the stack builds the same peer
//! connection again and applies the answer (offers are deterministic in mids and payload types).
//! They need the stacks that `scripts/install-test-deps.sh` installs and fail without them:
//! `CHROMIUM` (default `/usr/bin/chromium`) and `AIORTC_PYTHON` (default: the repository's
//! `.venv/bin/python`).

use std::path::Path;
use std::process::Command;

use super::support::*;
use crate::sdp::{Candidate, Capabilities, Role, negotiate, parse_offer, write_answer};

/// The page: a WHIP publisher (audio + canvas video), the same with three simulcast layers, or a
/// WHEP viewer (recvonly transceivers). With `ANSWER` set it applies the answer and reports the
/// outcome; otherwise it reports its offer once ICE gathering is done.
const PAGE: &str = r#"<html><body><pre id="out">pending</pre><script>
const MODE = __MODE__;
const ANSWER = __ANSWER__;
async function main() {
  const out = document.getElementById('out');
  try {
    const ac = new AudioContext();
    const dst = ac.createMediaStreamDestination();
    const osc = ac.createOscillator(); osc.connect(dst); osc.start();
    const canvas = document.createElement('canvas'); canvas.width = 640; canvas.height = 360;
    canvas.getContext('2d').fillRect(0, 0, 10, 10);
    const stream = new MediaStream([dst.stream.getAudioTracks()[0], canvas.captureStream(30).getVideoTracks()[0]]);
    const pc = new RTCPeerConnection({bundlePolicy: 'max-bundle'});
    if (MODE === 'whep') {
      pc.addTransceiver('audio', {direction: 'recvonly'});
      pc.addTransceiver('video', {direction: 'recvonly'});
    } else {
      pc.addTransceiver(stream.getAudioTracks()[0], {direction: 'sendonly', streams: [stream]});
      const init = {direction: 'sendonly', streams: [stream]};
      if (MODE === 'simulcast') {
        init.sendEncodings = [{rid: 'q', scaleResolutionDownBy: 4}, {rid: 'h', scaleResolutionDownBy: 2}, {rid: 'f'}];
      }
      pc.addTransceiver(stream.getVideoTracks()[0], init);
    }
    await pc.setLocalDescription(await pc.createOffer());
    if (ANSWER === null) {
      await new Promise(r => {
        pc.onicegatheringstatechange = () => { if (pc.iceGatheringState === 'complete') r(); };
        setTimeout(r, 3000);
      });
      out.textContent = 'BEGIN' + JSON.stringify(pc.localDescription.sdp) + 'END';
      return;
    }
    await pc.setRemoteDescription({type: 'answer', sdp: ANSWER});
    const lines = pc.getTransceivers().map(t => {
      const p = t.sender.getParameters();
      return t.mid + ' ' + t.currentDirection + ' ' + (p.codecs.length ? p.codecs[0].mimeType : '-') + ' ' + p.encodings.length;
    });
    out.textContent = 'BEGIN' + JSON.stringify(lines.join('\n') + '\n' + pc.signalingState) + 'END';
  } catch (e) {
    out.textContent = 'BEGIN' + JSON.stringify('ERROR ' + e) + 'END';
  }
}
main();
</script></body></html>"#;

/// Loads the page for `mode` (with `answer`, if any) and returns what it reported.
fn run_page(chromium: &str, dir: &Path, mode: &str, answer: Option<&str>) -> String {
    let page = PAGE
        .replace(
            "__MODE__",
            &serde_json::to_string(mode).expect("a string serializes"),
        )
        .replace(
            "__ANSWER__",
            &serde_json::to_string(&answer).expect("a string serializes"),
        );
    let path = dir.join(format!("{mode}-{}.html", answer.is_some()));
    std::fs::write(&path, page).expect("temporary page is writable");
    for _ in 0..3 {
        let output = Command::new("timeout")
            .arg("120")
            .arg(chromium)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--virtual-time-budget=20000",
                "--dump-dom",
            ])
            .arg(format!("file://{}", path.display()))
            .output()
            .expect("chromium runs");
        let dom = String::from_utf8_lossy(&output.stdout);
        // The report is JSON inside the <pre>; JSON strings carry no '<', '>' or '&'.
        if let (Some(start), Some(end)) = (dom.find("BEGIN"), dom.find("END</pre>")) {
            let json = dom[start + 5..end].replace("&quot;", "\"");
            return serde_json::from_str(&json).expect("the page reports a JSON string");
        }
    }
    panic!("{mode}: the page reported nothing");
}

#[test]
fn chromium_applies_the_answers_to_its_own_offers() {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let dir = std::env::temp_dir().join(format!("ringcast-sdp-interop-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temporary directory");
    for (mode, role) in [
        ("whip", Role::Publisher),
        ("simulcast", Role::Publisher),
        ("whep", Role::Viewer),
    ] {
        let offer_text = run_page(&chromium, &dir, mode, None);
        let offer =
            parse_offer(&offer_text).unwrap_or_else(|e| panic!("{mode}: {e}\n{offer_text}"));
        let neg = negotiate(&offer, role, &Capabilities::default()).expect("negotiates");
        let mut local = local_for(&neg);
        local.candidates = vec![Candidate::host(
            "127.0.0.1:40000".parse().expect("literal"),
            65535,
        )];
        let answer_text = write_answer(&neg, &local);
        check_answer(&offer, &neg, role, &local, &answer_text);

        let report = run_page(&chromium, &dir, mode, Some(&answer_text));
        assert!(
            report.ends_with("\nstable"),
            "{mode}: Chromium rejected the answer: {report}\n{answer_text}"
        );
        let lines: Vec<&str> = report.lines().collect();
        match role {
            Role::Publisher => {
                assert_eq!(lines[0], "0 sendonly audio/opus 1", "{mode}");
                // Our preferred codec is what Chromium sends, as three encodings in simulcast.
                let encodings = if mode == "simulcast" { 3 } else { 1 };
                assert_eq!(
                    lines[1],
                    format!("1 sendonly video/VP8 {encodings}"),
                    "{mode}"
                );
            }
            Role::Viewer => {
                assert!(
                    lines[0].starts_with("0 recvonly") && lines[1].starts_with("1 recvonly"),
                    "{report}"
                );
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// aiortc: a WHIP publisher (sendonly), a WHEP viewer (recvonly) and a sendrecv peer. With an
/// answer file it applies the answer and prints `<mid> <direction> <first codec>` per
/// transceiver and the signaling state; otherwise it prints its offer.
const AIORTC_SCRIPT: &str = r#"
import asyncio, sys
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack

async def main():
    mode = sys.argv[1]
    pc = RTCPeerConnection()
    if mode == "whip":
        pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
        pc.addTransceiver(VideoStreamTrack(), direction="sendonly")
    elif mode == "whep":
        pc.addTransceiver("audio", direction="recvonly")
        pc.addTransceiver("video", direction="recvonly")
    else:
        pc.addTrack(AudioStreamTrack())
        pc.addTrack(VideoStreamTrack())
    await pc.setLocalDescription(await pc.createOffer())
    if len(sys.argv) > 2:
        with open(sys.argv[2]) as f:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=f.read(), type="answer"))
        for t in pc.getTransceivers():
            print(t.mid, t.currentDirection, t._codecs[0].mimeType)
        print(pc.signalingState)
    else:
        sys.stdout.write(pc.localDescription.sdp)
    await pc.close()

asyncio.run(main())
"#;

fn run_aiortc(python: &str, script: &Path, mode: &str, answer: Option<&Path>) -> String {
    let mut command = Command::new("timeout");
    command.arg("60").arg(python).arg(script).arg(mode);
    if let Some(answer) = answer {
        command.arg(answer);
    }
    let output = command.output().expect("python runs");
    assert!(
        output.status.success(),
        "{mode}: aiortc failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("aiortc prints UTF-8")
}

#[test]
fn aiortc_applies_the_answers_to_its_own_offers() {
    // The repository's test virtualenv (scripts/install-test-deps.sh), unless told otherwise.
    let venv = concat!(env!("CARGO_MANIFEST_DIR"), "/../.venv/bin/python");
    let python = std::env::var("AIORTC_PYTHON").unwrap_or_else(|_| venv.into());
    let dir = std::env::temp_dir().join(format!("ringcast-sdp-aiortc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temporary directory");
    let script = dir.join("peer.py");
    std::fs::write(&script, AIORTC_SCRIPT).expect("temporary script is writable");
    for (mode, role) in [
        ("whip", Role::Publisher),
        ("whep", Role::Viewer),
        ("sendrecv", Role::Publisher),
        ("sendrecv", Role::Viewer),
    ] {
        let offer_text = run_aiortc(&python, &script, mode, None);
        let offer =
            parse_offer(&offer_text).unwrap_or_else(|e| panic!("{mode}: {e}\n{offer_text}"));
        let neg = negotiate(&offer, role, &Capabilities::default()).expect("negotiates");
        let local = local_for(&neg);
        let answer_text = write_answer(&neg, &local);
        check_answer(&offer, &neg, role, &local, &answer_text);
        let answer_path = dir.join(format!("{mode}-{role:?}.sdp"));
        std::fs::write(&answer_path, &answer_text).expect("temporary answer is writable");

        let report = run_aiortc(&python, &script, mode, Some(&answer_path));
        let lines: Vec<&str> = report.lines().collect();
        assert_eq!(lines.last(), Some(&"stable"), "{mode}: {report}");
        let direction = match role {
            Role::Publisher => "sendonly",
            Role::Viewer => "recvonly",
        };
        assert_eq!(
            lines[0],
            format!("0 {direction} audio/opus"),
            "{mode}: {report}"
        );
        assert_eq!(
            lines[1],
            format!("1 {direction} video/VP8"),
            "{mode}: {report}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
