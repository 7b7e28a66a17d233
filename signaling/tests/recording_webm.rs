//! Recording real RTP into WebM files that a real decoder reads back: ffmpeg encodes a test
//! pattern (VP8 or VP9) and a tone (Opus) and sends them as RTP to loopback sockets; the packets
//! go through the recorder on a virtual clock (with loss, reordering and duplicates where a test
//! asks), and ffprobe and ffmpeg must read and decode the file without error.
//!
//! Needs `ffmpeg` and `ffprobe` on the PATH (scripts/install-test-deps.sh installs them); the
//! tests fail without them.

#![allow(clippy::unwrap_used)] // in tests an unwrap is an assertion

use std::fs::File;
use std::io::BufWriter;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;
use sfu::Codec;
use sfu::wire::rtp::RtpHeader;
use signaling::recording::recorder::{Recorder, RecordingSummary, TrackSpec};

const SECONDS: f64 = 3.0;
const VIDEO_PT: u8 = 96;
const AUDIO_PT: u8 = 111;

fn require_tools() {
    for tool in ["ffmpeg", "ffprobe"] {
        let ok = Command::new(tool)
            .arg("-version")
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            ok,
            "`{tool}` is needed by the recording tests and was not found: install the test \
             dependencies with scripts/install-test-deps.sh (on Debian: apt-get install ffmpeg)"
        );
    }
}

/// RTP packets captured from ffmpeg, per stream, in the order they arrived.
#[derive(Debug)]
struct Captured {
    video: Vec<Vec<u8>>,
    audio: Vec<Vec<u8>>,
}

/// Runs ffmpeg in real time: a 320x240 30 fps moving test pattern encoded with `video_args` and a
/// 440 Hz stereo tone in Opus, for [`SECONDS`], each sent as RTP to a loopback socket.
fn capture(video_args: &[&str]) -> Captured {
    require_tools();
    let vsock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let asock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let vport = vsock.local_addr().unwrap().port();
    let aport = asock.local_addr().unwrap().port();
    let done = Arc::new(AtomicBool::new(false));
    let reader = |sock: UdpSocket, pt: u8| {
        let done = Arc::clone(&done);
        sock.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        std::thread::spawn(move || {
            let mut out = Vec::new();
            let mut buf = [0u8; 2048];
            loop {
                match sock.recv(&mut buf) {
                    // RTCP from ffmpeg lands on port + 1 and may reach the other socket: keep
                    // only this stream's payload type.
                    Ok(n) if n > 12 && buf[1] & 0x7f == pt => out.push(buf[..n].to_vec()),
                    Ok(_) => {}
                    Err(_) if done.load(Ordering::Acquire) => break,
                    Err(_) => {}
                }
            }
            out
        })
    };
    let vthread = reader(vsock, VIDEO_PT);
    let athread = reader(asock, AUDIO_PT);
    let secs = SECONDS.to_string();
    let vurl = format!("rtp://127.0.0.1:{vport}?pkt_size=1200");
    let aurl = format!("rtp://127.0.0.1:{aport}?pkt_size=1200");
    let mut args: Vec<&str> = vec![
        "-hide_banner",
        "-nostdin",
        "-v",
        "error",
        "-re",
        "-t",
        &secs,
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=320x240:rate=30",
        "-re",
        "-t",
        &secs,
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=48000",
        "-map",
        "0:v",
    ];
    args.extend_from_slice(video_args);
    args.extend_from_slice(&[
        "-f",
        "rtp",
        "-payload_type",
        "96",
        "-ssrc",
        "1111",
        &vurl,
        "-map",
        "1:a",
        "-c:a",
        "libopus",
        "-ac",
        "2",
        "-b:a",
        "64000",
        "-f",
        "rtp",
        "-payload_type",
        "111",
        "-ssrc",
        "2222",
        &aurl,
    ]);
    let out = Command::new("ffmpeg").args(&args).output().unwrap();
    done.store(true, Ordering::Release);
    let video = vthread.join().unwrap();
    let audio = athread.join().unwrap();
    assert!(
        out.status.success(),
        "ffmpeg failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!video.is_empty() && !audio.is_empty(), "no RTP captured");
    Captured { video, audio }
}

fn vp8_capture() -> &'static Captured {
    static C: OnceLock<Captured> = OnceLock::new();
    C.get_or_init(|| {
        capture(&[
            "-c:v",
            "libvpx",
            "-g",
            "15",
            "-deadline",
            "realtime",
            "-cpu-used",
            "8",
            "-b:v",
            "1M",
            "-minrate",
            "1M",
            "-maxrate",
            "1M",
        ])
    })
}

/// A small deterministic generator (xorshift) for loss and delay patterns.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// True with probability `p`.
    fn chance(&mut self, p: f64) -> bool {
        (self.next() % 10_000) as f64 / 10_000.0 < p
    }
}

fn rtp_timestamp(p: &[u8]) -> u32 {
    u32::from_be_bytes([p[4], p[5], p[6], p[7]])
}

fn marker(p: &[u8]) -> bool {
    p[1] & 0x80 != 0
}

/// What the network does to the packets.
#[derive(Debug, Clone, Copy, Default)]
struct Network {
    loss: f64,
    /// Share of packets delayed by 40 to 250 ms (reordered; like a late retransmission).
    delayed: f64,
    duplicated: f64,
}

/// Arrival events (virtual ms, track, packet) for the captured streams: each packet arrives at
/// its RTP time since the stream's first packet plus up to 5 ms of jitter, then the network is
/// applied to every packet but each stream's first (which anchors the stream's time line).
fn arrivals(streams: &[(&[Vec<u8>], u32)], net: Network, seed: u64) -> Vec<(u64, usize, Vec<u8>)> {
    let mut rng = Rng(seed);
    let mut ev = Vec::new();
    for (track, (pkts, rate)) in streams.iter().enumerate() {
        let ts0 = rtp_timestamp(&pkts[0]);
        for (i, p) in pkts.iter().enumerate() {
            let since = u64::from(rtp_timestamp(p).wrapping_sub(ts0)) * 1000 / u64::from(*rate);
            let jitter = rng.next() % 6;
            let (mut at, net) = if i == 0 {
                (since, Network::default())
            } else {
                (since + jitter, net)
            };
            if rng.chance(net.loss) {
                continue;
            }
            if rng.chance(net.delayed) {
                at += 40 + rng.next() % 211;
            }
            if rng.chance(net.duplicated) {
                ev.push((at + 1 + rng.next() % 100, track, p.clone()));
            }
            ev.push((at, track, p.clone()));
        }
    }
    ev.sort_by_key(|e| e.0);
    ev
}

/// Feeds the events to a recorder writing `path`, driving its timers on the virtual clock.
fn record(path: &Path, tracks: &[TrackSpec], events: &[(u64, usize, Vec<u8>)]) -> RecordingSummary {
    let sink = BufWriter::new(File::create(path).unwrap());
    let mut r = Recorder::new(sink, tracks).unwrap();
    let base = Instant::now();
    for (at, track, pkt) in events {
        let now = base + Duration::from_millis(*at);
        while let Some(t) = r.poll_timeout().filter(|&t| t <= now) {
            r.handle_timeout(t).unwrap();
        }
        if let Err(e) = r.handle_rtp(*track, now, pkt) {
            assert!(!e.is_fatal(), "{e}");
        }
    }
    let (_, summary) = r.finish().unwrap();
    summary
}

fn out_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("ringcast-rec-{}-{name}.webm", std::process::id()))
}

/// ffprobe's view of a file: its streams (with frames counted by decoding) and format.
fn probe(path: &Path) -> Value {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-show_streams",
            "-show_format",
        ])
        .args(["-of", "json"])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ffprobe failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Decodes every frame of the file with ffmpeg; returns what it reported as errors.
fn decode_errors(path: &Path) -> String {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    let mut msg = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        msg.push_str(&format!(" (exit {:?})", out.status.code()));
    }
    msg
}

fn stream<'a>(p: &'a Value, codec: &str) -> &'a Value {
    p["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["codec_name"] == codec)
        .unwrap_or_else(|| panic!("no {codec} stream in {p}"))
}

fn frames_read(s: &Value) -> u64 {
    s["nb_read_frames"].as_str().unwrap().parse().unwrap()
}

fn duration(p: &Value) -> f64 {
    p["format"]["duration"].as_str().unwrap().parse().unwrap()
}

fn av_tracks(video: Codec) -> [TrackSpec; 2] {
    [TrackSpec::video(video), TrackSpec::opus(2)]
}

/// What a recording decoded to.
#[derive(Debug)]
struct Checked {
    video_frames: u64,
    audio_frames: u64,
    summary: RecordingSummary,
    /// (pts, MD5 of the decoded picture) for every video frame.
    pictures: Vec<(i64, String)>,
}

/// The MD5 of every decoded video picture of a file, by presentation time.
fn picture_md5s(path: &Path) -> Vec<(i64, String)> {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-v", "error", "-i"])
        .arg(path)
        .args(["-map", "0:v", "-f", "framemd5", "-"])
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let f: Vec<&str> = l.split(',').map(str::trim).collect();
            (f[2].parse().unwrap(), f[5].to_string())
        })
        .collect()
}

/// Records the capture through `net`, checks the file decodes without error and has VP8 (or
/// VP9) 320x240 and stereo Opus within 10 % of the input's duration; returns what it decoded
/// to.
fn record_and_check(name: &str, codec: Codec, cap: &Captured, net: Network, seed: u64) -> Checked {
    let path = out_path(name);
    let ev = arrivals(&[(&cap.video, 90_000), (&cap.audio, 48_000)], net, seed);
    let summary = record(&path, &av_tracks(codec), &ev);
    let p = probe(&path);
    let v = stream(&p, if codec == Codec::Vp8 { "vp8" } else { "vp9" });
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(320), Some(240))
    );
    let a = stream(&p, "opus");
    assert_eq!(a["sample_rate"], "48000");
    assert_eq!(a["channels"], 2);
    let d = duration(&p);
    assert!(
        (d - SECONDS).abs() <= SECONDS * 0.1,
        "duration {d} s for {SECONDS} s of input"
    );
    assert_eq!(p["format"]["format_name"], "matroska,webm");
    let errors = decode_errors(&path);
    assert!(errors.is_empty(), "decoding {}: {errors}", path.display());
    let counts = (frames_read(v), frames_read(a));
    eprintln!(
        "{name}: {} video and {} audio frames decoded, {d:.3} s, {} bytes",
        counts.0, counts.1, summary.webm.bytes
    );
    let pictures = picture_md5s(&path);
    assert_eq!(pictures.len() as u64, counts.0);
    std::fs::remove_file(&path).unwrap();
    Checked {
        video_frames: counts.0,
        audio_frames: counts.1,
        summary,
        pictures,
    }
}

/// Frames sent: video pictures end with the marker bit; each Opus packet is a frame.
fn sent(cap: &Captured) -> (u64, u64) {
    let v = cap.video.iter().filter(|p| marker(p)).count() as u64;
    (v, cap.audio.len() as u64)
}

/// Keyframes sent, read from the packets with the media plane's own payload inspection (VP8)
/// or from the VP9 frame header after ffmpeg's one-byte descriptor (ffmpeg leaves the
/// descriptor's P bit clear).
fn keyframes_sent(codec: Codec, cap: &Captured) -> u64 {
    cap.video
        .iter()
        .filter(|p| {
            let h = RtpHeader::parse(p).unwrap();
            let payload = h.payload(p);
            match codec {
                Codec::Vp8 => sfu::wire::codec::vp8::is_keyframe_start(payload),
                // B set; profile 0 header: not show_existing_frame, frame_type KEY.
                _ => payload[0] & 0x08 != 0 && payload.get(1).is_some_and(|b| b & 0x0c == 0),
            }
        })
        .count() as u64
}

/// The lossless recording of the VP8 capture, made once.
fn vp8_reference() -> &'static Checked {
    static R: OnceLock<Checked> = OnceLock::new();
    R.get_or_init(|| {
        record_and_check(
            "vp8-clean",
            Codec::Vp8,
            vp8_capture(),
            Network::default(),
            1,
        )
    })
}

#[test]
fn vp8_and_opus_rtp_record_to_a_webm_that_ffmpeg_decodes_frame_for_frame() {
    let cap = vp8_capture();
    let (sent_v, sent_a) = sent(cap);
    assert!(
        sent_v >= 85,
        "ffmpeg sent {sent_v} video frames for 3 s at 30 fps"
    );
    let r = vp8_reference();
    assert_eq!(r.video_frames, sent_v, "every video frame decoded");
    assert_eq!(r.audio_frames, sent_a, "every audio frame decoded");
    let s = &r.summary;
    assert_eq!(s.webm.tracks[0].frames, sent_v);
    // A cluster and a cue for each keyframe.
    let keys = keyframes_sent(Codec::Vp8, cap);
    assert!(
        keys >= 6,
        "{keys} keyframes for 3 s with one every 15 frames"
    );
    assert_eq!(s.webm.tracks[0].cues, keys);
    assert_eq!(s.tracks[0].depacketizer.lost, 0);
}

#[test]
fn five_percent_loss_decodes_without_errors_or_corrupt_pictures() {
    let cap = vp8_capture();
    let (sent_v, sent_a) = sent(cap);
    let net = Network {
        loss: 0.05,
        ..Default::default()
    };
    let c = record_and_check("vp8-loss", Codec::Vp8, cap, net, 7);
    let (v, a) = (c.video_frames, c.audio_frames);
    let vs = c.summary.tracks[0].depacketizer;
    eprintln!("5 % loss: {v}/{sent_v} video and {a}/{sent_a} audio frames decoded; video {vs:?}");
    assert!(vs.lost > 0 && vs.incomplete_frames > 0, "{vs:?}");
    assert!(
        vs.awaiting_keyframe > 0,
        "frames after a loss waited: {vs:?}"
    );
    assert!(v < sent_v && v > 0, "{v} of {sent_v} video frames");
    // VP8 decodes a frame whose reference was lost without complaint, into a wrong picture:
    // every picture decoded must be the one the lossless recording has at that time.
    let reference: std::collections::HashMap<i64, &str> = vp8_reference()
        .pictures
        .iter()
        .map(|(pts, md5)| (*pts, md5.as_str()))
        .collect();
    for (pts, md5) in &c.pictures {
        assert_eq!(
            reference.get(pts),
            Some(&md5.as_str()),
            "picture at {pts} ms differs from the lossless recording's"
        );
    }
    // Opus frames are lost one by one.
    assert!(
        a < sent_a && a as f64 >= sent_a as f64 * 0.85,
        "{a} of {sent_a}"
    );
}

#[test]
fn late_reordered_and_duplicated_packets_lose_no_frame() {
    let cap = vp8_capture();
    let net = Network {
        delayed: 0.10,
        duplicated: 0.03,
        ..Default::default()
    };
    let c = record_and_check("vp8-reorder", Codec::Vp8, cap, net, 3);
    let vs = c.summary.tracks[0].depacketizer;
    assert!(vs.duplicate + vs.late > 0, "{vs:?}");
    assert_eq!(vs.lost, 0, "{vs:?}");
    let r = vp8_reference();
    assert_eq!(
        (c.video_frames, c.audio_frames),
        (r.video_frames, r.audio_frames)
    );
    assert_eq!(
        c.pictures, r.pictures,
        "the same pictures at the same times"
    );
}

#[test]
fn vp9_and_opus_rtp_record_to_a_webm_that_ffmpeg_decodes_frame_for_frame() {
    let cap = capture(&[
        "-c:v",
        "libvpx-vp9",
        "-g",
        "30",
        "-deadline",
        "realtime",
        "-cpu-used",
        "8",
        "-b:v",
        "1M",
        "-strict",
        "experimental",
    ]);
    let (sent_v, sent_a) = sent(&cap);
    let c = record_and_check("vp9-clean", Codec::Vp9, &cap, Network::default(), 1);
    assert_eq!((c.video_frames, c.audio_frames), (sent_v, sent_a));
    let s = c.summary;
    let keys = keyframes_sent(Codec::Vp9, &cap);
    assert!(
        keys >= 3,
        "{keys} keyframes for 3 s with one every 30 frames"
    );
    assert_eq!(s.webm.tracks[0].cues, keys, "one cue per keyframe");
}

/// The frames of an IVF file (the container libvpx's tools write).
fn ivf_frames(data: &[u8]) -> Vec<&[u8]> {
    assert_eq!(&data[..4], b"DKIF");
    let mut pos = usize::from(u16::from_le_bytes([data[6], data[7]]));
    let mut out = Vec::new();
    while pos + 12 <= data.len() {
        let len = u32::from_le_bytes(data[pos..pos + 4].try_into().unwrap()) as usize;
        out.push(&data[pos + 12..pos + 12 + len]);
        pos += 12 + len;
    }
    out
}

/// The frames of a VP9 superframe (bitstream specification, Annex B), or the data itself.
fn split_superframe(data: &[u8]) -> Vec<&[u8]> {
    let m = data[data.len() - 1];
    if m & 0xe0 != 0xc0 {
        return vec![data];
    }
    let n = usize::from(m & 7) + 1;
    let mag = usize::from((m >> 3) & 3) + 1;
    let idx = data.len() - (2 + mag * n);
    assert_eq!(data[idx], m);
    let mut pos = 0;
    (0..n)
        .map(|i| {
            let b = &data[idx + 1 + i * mag..idx + 1 + (i + 1) * mag];
            let size = b
                .iter()
                .rev()
                .fold(0usize, |a, &x| (a << 8) | usize::from(x));
            let f = &data[pos..pos + size];
            pos += size;
            f
        })
        .collect()
}

/// RTP packets for one VP9 picture whose frames are sent as spatial layers 0, 1, ... (RFC 9628
/// non-flexible mode: picture ID, layer indices, TL0PICIDX), 1000 bytes of data per packet.
fn packetize_vp9_layers(seq: &mut u16, ts: u32, pic: u16, layers: &[&[u8]]) -> Vec<Vec<u8>> {
    let key = layers[0][0] & 0x04 == 0; // profile 0: frame_type bit
    let mut out = Vec::new();
    for (sid, layer) in layers.iter().enumerate() {
        let chunks: Vec<&[u8]> = layer.chunks(1000).collect();
        for (i, c) in chunks.iter().enumerate() {
            let first = i == 0;
            let last = i + 1 == chunks.len();
            let mut p = vec![0x80, VIDEO_PT, 0, 0, 0, 0, 0, 0, 0, 0, 0x11, 0x11];
            p[2..4].copy_from_slice(&seq.to_be_bytes());
            p[4..8].copy_from_slice(&ts.to_be_bytes());
            if last && sid + 1 == layers.len() {
                p[1] |= 0x80;
            }
            let inter = !(key && sid == 0);
            p.push(
                0x80 | 0x20
                    | if inter { 0x40 } else { 0 }
                    | if first { 0x08 } else { 0 }
                    | if last { 0x04 } else { 0 },
            );
            p.extend_from_slice(&(0x8000 | pic).to_be_bytes());
            p.push((sid as u8) << 1 | u8::from(sid > 0));
            p.push(pic as u8);
            p.extend_from_slice(c);
            out.push(p);
            *seq = seq.wrapping_add(1);
        }
    }
    out
}

#[test]
fn vp9_frames_of_one_picture_sent_as_spatial_layers_become_a_decodable_superframe() {
    require_tools();
    // libvpx with alternate reference frames: many pictures are superframes of a hidden frame
    // and a shown one. Each frame of a superframe is sent as its own spatial layer.
    // Alternate reference frames need two passes.
    let tmp = std::env::temp_dir();
    let pid = std::process::id();
    let ivf = tmp.join(format!("ringcast-rec-{pid}-arf.ivf"));
    let log = tmp.join(format!("ringcast-rec-{pid}-arf"));
    for pass in ["1", "2"] {
        let mut cmd = Command::new("ffmpeg");
        cmd.args(["-hide_banner", "-nostdin", "-v", "error", "-y"])
            .args([
                "-f",
                "lavfi",
                "-i",
                "testsrc=size=320x240:rate=30",
                "-t",
                "2",
            ])
            .args(["-c:v", "libvpx-vp9", "-deadline", "good", "-cpu-used", "8"])
            .args(["-auto-alt-ref", "1", "-lag-in-frames", "16"])
            .args(["-g", "30", "-b:v", "300k", "-pass", pass, "-passlogfile"])
            .arg(&log);
        if pass == "1" {
            cmd.args(["-f", "null", "-"]);
        } else {
            cmd.arg(&ivf);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let _ = std::fs::remove_file(tmp.join(format!("ringcast-rec-{pid}-arf-0.log")));
    let data = std::fs::read(&ivf).unwrap();
    let shown = frames_read(stream(&probe(&ivf), "vp9"));
    std::fs::remove_file(&ivf).unwrap();
    let pictures = ivf_frames(&data);
    let layered = pictures
        .iter()
        .filter(|p| split_superframe(p).len() > 1)
        .count();
    assert!(layered > 0, "libvpx made no superframe to split");

    let mut seq = 1000u16;
    let mut events = Vec::new();
    for (i, pic) in pictures.iter().enumerate() {
        let ts = 7_000 + i as u32 * 3000;
        for p in packetize_vp9_layers(&mut seq, ts, i as u16, &split_superframe(pic)) {
            events.push((i as u64 * 33, 0, p));
        }
    }
    let path = out_path("vp9-layers");
    let s = record(&path, &[TrackSpec::video(Codec::Vp9)], &events);
    assert_eq!(s.webm.tracks[0].frames, pictures.len() as u64);
    let p = probe(&path);
    let v = stream(&p, "vp9");
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(320), Some(240))
    );
    assert_eq!(
        frames_read(v),
        shown,
        "as many frames shown as from the encoder's own file"
    );
    let errors = decode_errors(&path);
    assert!(errors.is_empty(), "decoding {}: {errors}", path.display());
    std::fs::remove_file(&path).unwrap();
}
