//! Codec coverage beyond VP8: a publisher whose offer lists only VP9, AV1 or H.264
//! (packetization-mode 1) reaches viewers that offer everything they can decode. Each test
//! asserts from the publisher's stats that it really encodes that codec and from each viewer's
//! stats that it receives and decodes that codec at close to the source frame rate.
//!
//! Chromium publishes with `--codec` (`RTCRtpTransceiver.setCodecPreferences`); H.264 is also
//! published by aiortc (libx264 through PyAV) and viewed by aiortc (FFmpeg's decoder), so
//! an H.264 packetization the server only gets right for one encoder shows up. aiortc has no
//! VP9 or AV1 at all, so those run Chromium to Chromium. A stack that cannot encode the codec
//! fails the test with the stack's own list of what it can send; nothing is skipped.

use std::time::{Duration, Instant};

use ringcast_tests::{
    Io, PeerProcess, PeerReport, PeerSpec, Server, ServerOptions, Stack, deps, media_lock,
};

/// The sources run at 30 fps; viewers must decode at least this many frames per second.
const MIN_FPS: f64 = 20.0;
/// Frame rates are measured over the last this-much of each run.
const WINDOW: Duration = Duration::from_secs(5);
/// How long a Chromium publisher-and-viewer run lasts after its last peer started.
const RUN: Duration = Duration::from_secs(10);

/// What one test expects.
struct Expect {
    /// The `mimeType` of the `codec` stats, e.g. `video/VP9`.
    mime: &'static str,
    /// The `--codec` argument.
    arg: &'static str,
}

const VP9: Expect = Expect {
    mime: "video/VP9",
    arg: "vp9",
};
const AV1: Expect = Expect {
    mime: "video/AV1",
    arg: "av1",
};
const H264: Expect = Expect {
    mime: "video/H264",
    arg: "h264",
};

fn start_server(stream: &str) -> Server {
    Server::start(ServerOptions::new(1, Io::Mmsg))
        .unwrap_or_else(|e| panic!("server for {stream} starts: {e}"))
}

/// Asserts that `peer` (a publisher) encoded `want` and kept encoding at `MIN_FPS` or better.
/// Returns the encoder fps and the encoder's name.
fn assert_publisher_encodes(report: &PeerReport, peer: &str, want: &Expect) -> (f64, String) {
    let codecs = report.distinct_strs(peer, &["video", "codec"]);
    let encoder = report
        .last_str(peer, &["video", "encoderImplementation"])
        .unwrap_or_else(|| "unknown".into());
    assert!(
        codecs == [want.mime],
        "{:?} publisher {peer} should encode {} only (offer restricted with --codec {}), \
         but its outbound-rtp codec stats say {codecs:?} (encoder {encoder}); errors: {:?}\n{}",
        report.stack,
        want.mime,
        want.arg,
        report.errors(),
        report.describe()
    );
    let fps = report
        .rate_last(peer, &["video", "framesEncoded"], WINDOW)
        .unwrap_or_else(|| panic!("{peer}: no framesEncoded samples\n{}", report.describe()));
    assert!(
        fps >= MIN_FPS,
        "{peer} encoded {} at {fps:.1} fps over the last {WINDOW:?}, want >= {MIN_FPS} \
         (encoder {encoder})\n{}",
        want.mime,
        report.describe()
    );
    (fps, encoder)
}

/// Asserts that viewer `peer` received only `want` and decoded it at `MIN_FPS` or better, with
/// a picture of non-zero size. Returns the fps and the frame size.
fn assert_viewer_decodes(
    report: &PeerReport,
    peer: &str,
    want: &Expect,
    audio_path: &[&str],
) -> (f64, f64, f64) {
    let codecs = report.distinct_strs(peer, &["video", "codec"]);
    assert!(
        codecs == [want.mime],
        "{:?} viewer {peer} should receive {} only, but its inbound codec stats say {codecs:?}\n{}",
        report.stack,
        want.mime,
        report.describe()
    );
    let fps = report.assert_viewer_healthy(peer, MIN_FPS, WINDOW, audio_path);
    let width = report.last(peer, &["video", "frameWidth"]).unwrap_or(0.0);
    let height = report.last(peer, &["video", "frameHeight"]).unwrap_or(0.0);
    assert!(
        width > 0.0 && height > 0.0,
        "{peer} decoded {} frames of size {width}x{height}\n{}",
        want.mime,
        report.describe()
    );
    (fps, width, height)
}

/// The server dropped no packet for an unnegotiated payload type and is still healthy; then it
/// stops cleanly.
fn assert_server_clean(mut server: Server, want: &Expect) {
    let m = server.metrics().expect("metrics scrape");
    let unknown_pt = m.sum(
        "ringcast_drops_total",
        &[("reason", "codec_not_negotiated")],
    );
    assert_eq!(
        unknown_pt, 0.0,
        "the server dropped {unknown_pt} {} packets as codec_not_negotiated",
        want.mime
    );
    assert!(m.sum("ringcast_rtp_out_total", &[]) > 0.0);
    server.assert_alive();
    let (status, _) = server
        .terminate(Duration::from_secs(5))
        .expect("server stops on SIGTERM");
    assert!(status.success(), "server exited with {status}");
}

/// A Chromium publisher restricted to `want` and a Chromium viewer, in one browser.
fn chromium_to_chromium(want: &Expect) {
    deps::require_browser();
    let _media = media_lock();
    let started = Instant::now();
    let stream = format!("codec-{}", want.arg);
    let server = start_server(&stream);
    let run = PeerProcess::spawn(
        Stack::Chromium,
        &server.base_url(),
        &[PeerSpec::publish(&stream), PeerSpec::view(&stream)],
        RUN,
        &["--codec", want.arg],
    )
    .expect("Chromium starts");
    let report = run.wait().expect("Chromium run ends");
    let (enc_fps, encoder) = assert_publisher_encodes(&report, "publish-0", want);
    report.assert_ok();
    let (fps, w, h) = assert_viewer_decodes(&report, "view-0", want, &["audio", "packetsReceived"]);
    eprintln!(
        "{}: Chromium publisher encodes {enc_fps:.1} fps with {encoder}; Chromium viewer decodes \
         {fps:.1} fps at {w}x{h}; lost {:?}, nacks {:?}, plis {:?}; {:.1} s",
        want.mime,
        report.last("view-0", &["video", "packetsLost"]),
        report.last("view-0", &["video", "nackCount"]),
        report.last("view-0", &["video", "pliCount"]),
        started.elapsed().as_secs_f64()
    );
    assert_server_clean(server, want);
}

#[test]
fn vp9_from_chromium_reaches_chromium_viewer() {
    chromium_to_chromium(&VP9);
}

#[test]
fn av1_from_chromium_reaches_chromium_viewer() {
    chromium_to_chromium(&AV1);
}

/// Chromium publishes H.264 (its OpenH264 encoder); a Chromium viewer in the same browser and an
/// aiortc viewer (FFmpeg's H.264 decoder) both decode it.
#[test]
fn h264_from_chromium_reaches_chromium_and_aiortc_viewers() {
    deps::require_browser();
    deps::require_aiortc();
    let want = &H264;
    let _media = media_lock();
    let started = Instant::now();
    let stream = "codec-h264-chromium";
    let server = start_server(stream);
    let mut chromium = PeerProcess::spawn(
        Stack::Chromium,
        &server.base_url(),
        &[PeerSpec::publish(stream), PeerSpec::view(stream)],
        // Long enough to cover the aiortc viewer's whole run, which starts once view-0 decodes.
        RUN + Duration::from_secs(5),
        &["--codec", want.arg],
    )
    .expect("Chromium starts");
    chromium
        .wait_decoding("view-0", Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}"));
    let aiortc = PeerProcess::spawn(
        Stack::Aiortc,
        &server.base_url(),
        &[PeerSpec::view(stream)],
        Duration::from_secs(7),
        &[],
    )
    .expect("aiortc starts")
    .wait()
    .expect("aiortc viewer run ends");
    let chromium = chromium.wait().expect("Chromium run ends");

    let (enc_fps, encoder) = assert_publisher_encodes(&chromium, "publish-0", want);
    chromium.assert_ok();
    let (fps, w, h) =
        assert_viewer_decodes(&chromium, "view-0", want, &["audio", "packetsReceived"]);
    aiortc.assert_ok();
    let (a_fps, a_w, a_h) =
        assert_viewer_decodes(&aiortc, "view-0", want, &["audio", "framesDecoded"]);
    eprintln!(
        "{}: Chromium publisher encodes {enc_fps:.1} fps with {encoder}; Chromium viewer decodes \
         {fps:.1} fps at {w}x{h}; aiortc viewer decodes {a_fps:.1} fps at {a_w}x{a_h}; {:.1} s",
        want.mime,
        started.elapsed().as_secs_f64()
    );
    assert_server_clean(server, want);
}

/// aiortc publishes H.264 (libx264 through PyAV, aiortc's own packetizer); a Chromium viewer
/// decodes it at full size.
#[test]
fn h264_from_aiortc_reaches_chromium_viewer() {
    deps::require_browser();
    deps::require_aiortc();
    let want = &H264;
    let _media = media_lock();
    let started = Instant::now();
    let stream = "codec-h264-aiortc";
    let server = start_server(stream);
    let mut publisher = PeerProcess::spawn(
        Stack::Aiortc,
        &server.base_url(),
        &[PeerSpec::publish(stream)],
        // Outlives the viewer's run, which starts once the publisher is connected.
        RUN + Duration::from_secs(6),
        &["--codec", want.arg],
    )
    .expect("aiortc starts");
    publisher
        .wait_connected("publish-0", Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}"));
    let viewer = PeerProcess::spawn(
        Stack::Chromium,
        &server.base_url(),
        &[PeerSpec::view(stream)],
        RUN,
        &[],
    )
    .expect("Chromium starts")
    .wait()
    .expect("Chromium viewer run ends");
    let publisher = publisher.wait().expect("aiortc publisher run ends");

    let (enc_fps, encoder) = assert_publisher_encodes(&publisher, "publish-0", want);
    publisher.assert_ok();
    viewer.assert_ok();
    let (fps, w, h) = assert_viewer_decodes(&viewer, "view-0", want, &["audio", "packetsReceived"]);
    assert_eq!(
        (w, h),
        (640.0, 480.0),
        "aiortc sends 640x480\n{}",
        viewer.describe()
    );
    eprintln!(
        "{}: aiortc publisher encodes {enc_fps:.1} fps with {encoder}; Chromium viewer decodes \
         {fps:.1} fps at {w}x{h}; {:.1} s",
        want.mime,
        started.elapsed().as_secs_f64()
    );
    assert_server_clean(server, want);
}
