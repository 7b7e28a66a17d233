//! One participant's recorder: a viewer inside this process. It is an ordinary shard session
//! (ICE-lite, DTLS, SRTP, the allocator's layer choice, keyframe requests on switches) that
//! receives the participant's tracks over loopback UDP through [`sfu::client::ClientSession`],
//! and hands each decrypted RTP packet to a [`RtpSink`] (the WebM writer). It runs on its own
//! thread, so file writes never wait on the async runtime.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sfu::client::{ClientConfig, ClientEvent, ClientSession};
use sfu::control::{CodecParams, ExtMap, SessionSpec, SubscribeSpec};
use sfu::dtls::{DtlsCert, Fingerprint};
use sfu::wire::rtcp::write_pli;
use sfu::wire::rtp::RtpHeader;
use sfu::{MediaKind, Mid, SessionId, Ssrc, StreamKey};

/// How long ICE and DTLS may take before the recorder gives up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait on the socket between two looks at the stop flag and the timers.
const MAX_WAIT: Duration = Duration::from_millis(20);
/// At most one keyframe request per track in this interval.
const KEYFRAME_REQUEST_INTERVAL: Duration = Duration::from_millis(500);

/// Where the recorder's decrypted packets go.
pub trait RtpSink: Send {
    /// A decrypted RTP packet of track `track` (its index in the plan), received at `now`.
    fn on_rtp(&mut self, track: usize, now: Instant, packet: &[u8]);
    /// Whether track `track` waits for a keyframe (the recorder then asks the publisher).
    fn wants_keyframe(&self, track: usize) -> bool;
    /// Time passes (at least every few tens of milliseconds while the recorder runs).
    fn on_tick(&mut self, now: Instant) {
        let _ = now;
    }
}

/// One track to record: the producer's stream and the codec it sends.
#[derive(Debug, Clone)]
pub struct RecordedTrack {
    pub stream: StreamKey,
    pub kind: MediaKind,
    /// The producer's codec, in its numbering (the recorder accepts exactly that format).
    pub codec: CodecParams,
}

/// A recorder's shard session and the client that will drive it.
#[derive(Debug)]
pub struct Plan {
    /// The shard session to add (`Command::AddSession`).
    pub spec: SessionSpec,
    client: ClientConfig,
    /// The SSRC each track arrives with, in track order.
    ssrcs: Vec<Ssrc>,
}

/// Why a recorder stopped before it was asked to.
#[derive(Debug, thiserror::Error)]
pub enum RecorderError {
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
    #[error("connection to the shard: {0}")]
    Client(#[from] sfu::client::ClientError),
    #[error("ICE and DTLS with the shard did not complete within {0:?}")]
    ConnectTimeout(Duration),
    #[error("the shard ended the recorder's session")]
    Failed,
}

/// What a recorder saw.
#[derive(Debug, Clone, Default)]
pub struct RunStats {
    pub connected: bool,
    pub packets: u64,
    pub bytes: u64,
    pub keyframe_requests: u64,
    /// Datagrams that failed to decrypt or parse.
    pub bad_packets: u64,
}

/// Plans a recorder of `tracks` on the shard at `server` (whose certificate has
/// `server_fingerprint`), as session `id`; the recorder authenticates with `cert`.
pub fn plan(
    id: SessionId,
    server: SocketAddr,
    server_fingerprint: Fingerprint,
    cert: Arc<DtlsCert>,
    tracks: &[RecordedTrack],
) -> Plan {
    let server_ice = crate::session_spec::local_ice();
    let client_ice = crate::session_spec::local_ice();
    let mut ssrcs = Vec::with_capacity(tracks.len());
    let subscribe = tracks
        .iter()
        .enumerate()
        .map(|(k, t)| {
            let ssrc = Ssrc(crate::session_spec::random_id() as u32 | 1);
            ssrcs.push(ssrc);
            let mut codec = t.codec.clone();
            codec.rtx_pt = None;
            codec.feedback.nack_pli = true;
            codec.feedback.transport_cc = false;
            codec.feedback.goog_remb = false;
            SubscribeSpec {
                stream: t.stream,
                kind: t.kind,
                mid: Mid(k.to_string()),
                ssrc,
                rtx_ssrc: None,
                codecs: vec![codec],
            }
        })
        .collect();
    let spec = SessionSpec {
        id,
        local_ice: server_ice.clone(),
        remote_ice: client_ice.clone(),
        remote_fingerprint: cert.fingerprint(),
        // No header extensions: the recorder needs none, and without transport-wide sequence
        // numbers the shard runs no estimator toward it (the recording's cap bounds the layer).
        extmap: ExtMap::default(),
        publish: Vec::new(),
        subscribe,
    };
    Plan {
        spec,
        client: ClientConfig {
            local_ice: client_ice,
            remote_ice: server_ice,
            server,
            remote_fingerprint: server_fingerprint,
            cert,
        },
        ssrcs,
    }
}

/// A running recorder.
pub struct Recorder<S: RtpSink + 'static> {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<(S, RunStats, Option<RecorderError>)>,
}

impl<S: RtpSink + 'static> std::fmt::Debug for Recorder<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("thread", &self.thread.thread().name())
            .field("finished", &self.thread.is_finished())
            .finish()
    }
}

impl<S: RtpSink + 'static> Recorder<S> {
    /// Starts the recorder's thread: it connects to the shard (which must have the plan's
    /// session by then, or soon: checks are retried) and feeds `sink` until stopped.
    pub fn spawn(plan: Plan, sink: S, name: String) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new().name(name).spawn(move || {
            let mut sink = sink;
            let mut stats = RunStats::default();
            let err = run(&plan, &mut sink, &flag, &mut stats).err();
            (sink, stats, err)
        })?;
        Ok(Recorder { stop, thread })
    }

    /// Whether the thread has ended (stopped, or failed).
    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }

    /// Stops the recorder and gives back its sink, what it saw and why it ended early, if it did.
    /// Blocks until the thread ends (at most one socket wait).
    pub fn stop(self) -> (S, RunStats, Option<RecorderError>) {
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.join() {
            Ok(r) => r,
            // The thread's code does not panic on any input; a panic is a defect worth
            // surfacing where it happened.
            Err(p) => std::panic::resume_unwind(p),
        }
    }
}

fn run<S: RtpSink>(
    plan: &Plan,
    sink: &mut S,
    stop: &AtomicBool,
    stats: &mut RunStats,
) -> Result<(), RecorderError> {
    let server = plan.client.server;
    let bind: SocketAddr = if server.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    }
    .parse()
    .unwrap_or_else(|_| unreachable!("a literal socket address"));
    let sock = UdpSocket::bind(bind)?;
    let start = Instant::now();
    let mut client = ClientSession::new(plan.client.clone(), start);
    let mut buf = vec![0u8; 2048];
    let mut last_request = vec![None::<Instant>; plan.ssrcs.len()];
    let rtcp_ssrc = Ssrc(0x5245_4331);
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if client.poll_timeout() <= now {
            client.handle_timeout(now)?;
        }
        while let Some((to, d)) = client.poll_transmit_to() {
            sock.send_to(&d, to)?;
        }
        if client.has_failed() {
            return Err(RecorderError::Failed);
        }
        if !client.is_connected() && now.duration_since(start) > CONNECT_TIMEOUT {
            return Err(RecorderError::ConnectTimeout(CONNECT_TIMEOUT));
        }
        sink.on_tick(now);
        if client.is_connected() {
            for (k, &ssrc) in plan.ssrcs.iter().enumerate() {
                let due = last_request[k]
                    .is_none_or(|t: Instant| now.duration_since(t) >= KEYFRAME_REQUEST_INTERVAL);
                if due && sink.wants_keyframe(k) {
                    let mut out = [0u8; 64];
                    if let Ok(n) = write_pli(&mut out, rtcp_ssrc, ssrc)
                        && let Ok(n) = client.protect_rtcp(&mut out, n)
                    {
                        sock.send_to(&out[..n], server)?;
                        stats.keyframe_requests += 1;
                    }
                    last_request[k] = Some(now);
                }
            }
        }
        let wait = client
            .poll_timeout()
            .saturating_duration_since(Instant::now())
            .clamp(Duration::from_millis(1), MAX_WAIT);
        sock.set_read_timeout(Some(wait))?;
        let (n, src) = match sock.recv_from(&mut buf) {
            Ok(r) => r,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let now = Instant::now();
        match client.handle_datagram_from(now, src, &mut buf[..n]) {
            Ok(Some(ClientEvent::Connected)) => {
                stats.connected = true;
                tracing::debug!(%server, "recorder connected");
            }
            Ok(Some(ClientEvent::Rtp { len })) => {
                let Ok(hdr) = RtpHeader::parse(&buf[..len]) else {
                    stats.bad_packets += 1;
                    continue;
                };
                let Some(track) = plan.ssrcs.iter().position(|&s| s == hdr.ssrc) else {
                    continue;
                };
                stats.packets += 1;
                stats.bytes += len as u64;
                sink.on_rtp(track, now, &buf[..len]);
            }
            Ok(Some(ClientEvent::Rtcp { .. })) | Ok(None) => {}
            // A datagram that does not decrypt is dropped, as any receiver would.
            Err(sfu::client::ClientError::Srtp(_)) => stats.bad_packets += 1,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
