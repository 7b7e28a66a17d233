//! A virtual network for driving shard cores with client sessions under a virtual clock.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use sfu::client::{ClientConfig, ClientEvent, ClientSession};
use sfu::control::{
    CodecParams, ExtMap, IceParams, PublishSpec, RtcpFeedback, SessionSpec, SubscribeSpec,
};
use sfu::core::{CoreConfig, ShardCore};
use sfu::dtls::DtlsCert;
use sfu::io::{RecvMeta, TxBatch};
use sfu::shard::Mesh;
use sfu::wire::rtcp::{self, RtcpPacket};
use sfu::wire::rtp::{self, RtpFields, RtpHeader};
use sfu::{
    Codec, MediaKind, Mid, PayloadType, SeqNo, SessionId, ShardId, Ssrc, StreamKey, TrackId,
};

thread_local! {
    /// Set while this thread's harness is inside a core call, so a counting allocator can
    /// attribute allocations (per thread: tests run in parallel).
    pub static IN_CORE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn in_core<R>(f: impl FnOnce() -> R) -> R {
    IN_CORE.with(|c| c.set(true));
    let r = f();
    IN_CORE.with(|c| c.set(false));
    r
}

pub const PUB_VP8: u8 = 96;
pub const PUB_VP8_RTX: u8 = 97;
pub const PUB_OPUS: u8 = 111;
pub const VIEW_VP8: u8 = 100;
pub const VIEW_VP8_RTX: u8 = 101;
pub const VIEW_OPUS: u8 = 109;
pub const VIDEO_SSRC: u32 = 0x1111_0000;
pub const RTX_SSRC: u32 = 0x1111_0001;
pub const AUDIO_SSRC: u32 = 0x2222_0000;

fn fb() -> RtcpFeedback {
    RtcpFeedback {
        nack: true,
        nack_pli: true,
        ccm_fir: true,
        transport_cc: false,
        goog_remb: false,
    }
}

pub fn vp8(pt: u8, rtx: Option<u8>) -> CodecParams {
    CodecParams {
        pt: PayloadType(pt),
        codec: Codec::Vp8,
        clock_rate: 90_000,
        channels: 0,
        fmtp: String::new(),
        rtx_pt: rtx.map(PayloadType),
        feedback: fb(),
    }
}

pub fn opus(pt: u8) -> CodecParams {
    CodecParams {
        pt: PayloadType(pt),
        codec: Codec::Opus,
        clock_rate: 48_000,
        channels: 2,
        fmtp: "minptime=10;useinbandfec=1".into(),
        rtx_pt: None,
        feedback: RtcpFeedback::default(),
    }
}

/// A client peer on the virtual network.
pub struct Peer {
    pub addr: SocketAddr,
    pub shard: usize,
    pub session: SessionId,
    pub client: ClientSession,
    pub connected: bool,
    /// Decrypted RTP packets received.
    pub rtp: Vec<Vec<u8>>,
    /// Decrypted RTCP compounds received.
    pub rtcp: Vec<Vec<u8>>,
    /// Plaintext RTP sent, by sequence number (a publisher answers NACKs from it).
    pub sent: HashMap<u16, Vec<u8>>,
    pub publisher: Option<MediaSource>,
}

/// Synthetic VP8-like video and Opus-like audio, the shape of a camera publisher.
pub struct MediaSource {
    pub video_seq: u16,
    pub audio_seq: u16,
    pub rtx_seq: u16,
    pub frame: u64,
    pub keyframe_interval: u64,
    pub force_keyframe: bool,
    pub packets_per_frame: usize,
    pub next_frame: Instant,
    pub next_audio: Instant,
    pub plis: u64,
    pub nacks: u64,
}

/// Decides whether to drop a datagram: (from, to, bytes as sent).
pub type DropFilter = Box<dyn FnMut(SocketAddr, SocketAddr, &[u8]) -> bool>;

pub struct Harness {
    pub now: Instant,
    pub cores: Vec<ShardCore>,
    pub servers: Vec<SocketAddr>,
    pub peers: Vec<Peer>,
    pub client_cert: Arc<DtlsCert>,
    pub server_cert: Arc<DtlsCert>,
    /// Return true to drop a datagram (from, to, bytes before decryption).
    pub drop_filter: Option<DropFilter>,
    batch: TxBatch,
    next_port: u16,
    next_id: u64,
}

impl Harness {
    pub fn new(shards: usize) -> Self {
        let now = Instant::now();
        let server_cert = Arc::new(DtlsCert::generate().unwrap());
        let mesh = Mesh::new(shards, 1024);
        let cores = (0..shards)
            .map(|i| {
                let port = if shards > 1 {
                    Some(mesh.port(ShardId(i as u16)))
                } else {
                    None
                };
                ShardCore::new(
                    ShardId(i as u16),
                    CoreConfig::default(),
                    Arc::clone(&server_cert),
                    port,
                    now,
                    SystemTime::now(),
                )
            })
            .collect();
        let servers = (0..shards)
            .map(|i| SocketAddr::from(([10, 0, 0, 1], 50000 + i as u16)))
            .collect();
        Harness {
            now,
            cores,
            servers,
            peers: Vec::new(),
            client_cert: Arc::new(DtlsCert::generate().unwrap()),
            server_cert,
            drop_filter: None,
            batch: TxBatch::new(256),
            next_port: 40000,
            next_id: 1,
        }
    }

    fn new_peer(
        &mut self,
        shard: usize,
        spec: impl FnOnce(SessionId, IceParams, IceParams) -> SessionSpec,
    ) -> usize {
        let id = SessionId(self.next_id);
        self.next_id += 1;
        self.next_port += 1;
        let addr = SocketAddr::from(([10, 0, 0, 2], self.next_port));
        let server_ice = IceParams {
            ufrag: format!("srv{}", id.0),
            pwd: format!("server-password-{:08}", id.0),
        };
        let client_ice = IceParams {
            ufrag: format!("cli{}", id.0),
            pwd: format!("client-password-{:08}", id.0),
        };
        let spec = spec(id, server_ice.clone(), client_ice.clone());
        self.cores[shard]
            .add_session(self.now, spec)
            .expect("session added");
        let client = ClientSession::new(
            ClientConfig {
                local_ice: client_ice,
                remote_ice: server_ice,
                server: self.servers[shard],
                remote_fingerprint: self.server_cert.fingerprint(),
                cert: Arc::clone(&self.client_cert),
            },
            self.now,
        );
        self.peers.push(Peer {
            addr,
            shard,
            session: id,
            client,
            connected: false,
            rtp: Vec::new(),
            rtcp: Vec::new(),
            sent: HashMap::new(),
            publisher: None,
        });
        self.peers.len() - 1
    }

    /// A publisher of VP8 (with RTX) and Opus on `stream`.
    pub fn add_publisher(&mut self, shard: usize, stream: u64) -> usize {
        let fp = self.client_cert.fingerprint();
        let ext = ExtMap {
            mid: Some(1),
            audio_level: Some(2),
            ..ExtMap::default()
        };
        let idx = self.new_peer(shard, |id, local_ice, remote_ice| SessionSpec {
            id,
            local_ice,
            remote_ice,
            remote_fingerprint: fp,
            extmap: ext,
            publish: vec![
                PublishSpec {
                    stream: StreamKey(stream),
                    track: TrackId(id.0 * 10),
                    kind: MediaKind::Video,
                    mid: Mid("0".into()),
                    ssrc: Some(Ssrc(VIDEO_SSRC)),
                    rtx_ssrc: Some(Ssrc(RTX_SSRC)),
                    codecs: vec![vp8(PUB_VP8, Some(PUB_VP8_RTX))],
                },
                PublishSpec {
                    stream: StreamKey(stream),
                    track: TrackId(id.0 * 10 + 1),
                    kind: MediaKind::Audio,
                    mid: Mid("1".into()),
                    ssrc: None,
                    rtx_ssrc: None,
                    codecs: vec![opus(PUB_OPUS)],
                },
            ],
            subscribe: vec![],
        });
        let now = self.now;
        self.peers[idx].publisher = Some(MediaSource {
            video_seq: 65_500, // wraps within the first seconds
            audio_seq: 1,
            rtx_seq: 100,
            frame: 0,
            keyframe_interval: 90,
            force_keyframe: false,
            packets_per_frame: 3,
            next_frame: now,
            next_audio: now,
            plis: 0,
            nacks: 0,
        });
        idx
    }

    /// A viewer of `stream` with its own payload types and RTX.
    pub fn add_viewer(&mut self, shard: usize, stream: u64) -> usize {
        let fp = self.client_cert.fingerprint();
        let ext = ExtMap {
            mid: Some(3),
            audio_level: Some(5),
            ..ExtMap::default()
        };
        let n = self.next_id as u32;
        self.new_peer(shard, |id, local_ice, remote_ice| SessionSpec {
            id,
            local_ice,
            remote_ice,
            remote_fingerprint: fp,
            extmap: ext,
            publish: vec![],
            subscribe: vec![
                SubscribeSpec {
                    stream: StreamKey(stream),
                    kind: MediaKind::Video,
                    mid: Mid("0".into()),
                    ssrc: Ssrc(0x5000_0000 + n),
                    rtx_ssrc: Some(Ssrc(0x5100_0000 + n)),
                    codecs: vec![vp8(VIEW_VP8, Some(VIEW_VP8_RTX))],
                },
                SubscribeSpec {
                    stream: StreamKey(stream),
                    kind: MediaKind::Audio,
                    mid: Mid("1".into()),
                    ssrc: Ssrc(0x6000_0000 + n),
                    rtx_ssrc: None,
                    codecs: vec![opus(VIEW_OPUS)],
                },
            ],
        })
    }

    /// Advances the virtual clock by `d` in steps of 1 ms, moving every datagram.
    pub fn run(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.step();
            self.now += Duration::from_millis(1);
        }
    }

    /// One tick: clients emit, cores handle, cores transmit, clients receive.
    pub fn step(&mut self) {
        let now = self.now;
        for p in 0..self.peers.len() {
            self.peer_emit(p, now);
        }
        for c in 0..self.cores.len() {
            let core = &mut self.cores[c];
            in_core(|| {
                core.poll_mesh(now, usize::MAX);
                core.handle_timeout(now);
            });
            loop {
                self.batch.clear();
                let (core, batch) = (&mut self.cores[c], &mut self.batch);
                in_core(|| core.poll_transmit(now, batch));
                if self.batch.is_empty() {
                    break;
                }
                let datagrams: Vec<(SocketAddr, Vec<u8>)> = self
                    .batch
                    .iter()
                    .map(|(m, b)| (m.dest, b.to_vec()))
                    .collect();
                for (dest, mut bytes) in datagrams {
                    if let Some(f) = self.drop_filter.as_mut()
                        && f(self.servers[c], dest, &bytes)
                    {
                        continue;
                    }
                    self.deliver_to_peer(dest, &mut bytes);
                }
            }
            let core = &mut self.cores[c];
            in_core(|| core.wake_peers());
        }
    }

    fn peer_emit(&mut self, p: usize, now: Instant) {
        let _ = self.peers[p].client.handle_timeout(now);
        let mut out = Vec::new();
        while let Some(d) = self.peers[p].client.poll_transmit() {
            out.push(d);
        }
        if self.peers[p].client.is_connected() {
            out.extend(self.generate_media(p, now));
        }
        let (src, shard) = (self.peers[p].addr, self.peers[p].shard);
        for mut d in out {
            if let Some(f) = self.drop_filter.as_mut()
                && f(src, self.servers[shard], &d)
            {
                continue;
            }
            let core = &mut self.cores[shard];
            in_core(|| core.handle_datagram(now, RecvMeta { src, dst_ip: None }, &mut d));
        }
    }

    fn deliver_to_peer(&mut self, dest: SocketAddr, bytes: &mut [u8]) {
        let now = self.now;
        let Some(p) = self.peers.iter().position(|p| p.addr == dest) else {
            return;
        };
        match self.peers[p].client.handle_datagram(now, bytes) {
            Ok(Some(ClientEvent::Connected)) => self.peers[p].connected = true,
            Ok(Some(ClientEvent::Rtp { len })) => self.peers[p].rtp.push(bytes[..len].to_vec()),
            Ok(Some(ClientEvent::Rtcp { len })) => {
                let pkt = bytes[..len].to_vec();
                self.on_publisher_rtcp(p, &pkt);
                self.peers[p].rtcp.push(pkt);
            }
            _ => {}
        }
    }

    /// A publisher answers PLI with a keyframe and NACK with RTX retransmissions.
    fn on_publisher_rtcp(&mut self, p: usize, pkt: &[u8]) {
        if self.peers[p].publisher.is_none() {
            return;
        }
        let mut resend = Vec::new();
        for r in rtcp::iter(pkt) {
            match r {
                Ok(RtcpPacket::Pli { .. }) | Ok(RtcpPacket::Fir(_)) => {
                    let src = self.peers[p].publisher.as_mut().unwrap();
                    src.force_keyframe = true;
                    src.plis += 1;
                }
                Ok(RtcpPacket::Nack(n)) => {
                    self.peers[p].publisher.as_mut().unwrap().nacks += 1;
                    resend.extend(n.lost().map(|s| s.0));
                }
                _ => {}
            }
        }
        for seq in resend {
            let Some(orig) = self.peers[p].sent.get(&seq).cloned() else {
                continue;
            };
            let hdr = RtpHeader::parse(&orig).unwrap();
            let src = self.peers[p].publisher.as_mut().unwrap();
            let rtx_seq = SeqNo(src.rtx_seq);
            src.rtx_seq = src.rtx_seq.wrapping_add(1);
            let mut buf = vec![0u8; 2048];
            let n = rtp::write_rtx(
                &orig,
                &hdr,
                &mut buf,
                Ssrc(RTX_SSRC),
                PayloadType(PUB_VP8_RTX),
                rtx_seq,
            )
            .unwrap();
            let n = self.peers[p].client.protect_rtp(&mut buf, n).unwrap();
            buf.truncate(n);
            let (src_addr, shard) = (self.peers[p].addr, self.peers[p].shard);
            let (core, now) = (&mut self.cores[shard], self.now);
            in_core(|| {
                core.handle_datagram(
                    now,
                    RecvMeta {
                        src: src_addr,
                        dst_ip: None,
                    },
                    &mut buf,
                )
            });
        }
    }

    /// Produces the publisher's media due at `now`, already encrypted.
    fn generate_media(&mut self, p: usize, now: Instant) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut plain = Vec::new();
        let Some(src) = self.peers[p].publisher.as_mut() else {
            return out;
        };
        while now >= src.next_frame {
            let key = src.frame % src.keyframe_interval == 0 || src.force_keyframe;
            src.force_keyframe = false;
            let ts = (src.frame * 3000) as u32;
            for i in 0..src.packets_per_frame {
                let mut payload = vec![0u8; 1000];
                payload[0] = if i == 0 { 0x10 } else { 0x00 }; // VP8 descriptor: S bit on the first packet
                payload[1] = if key { 0x00 } else { 0x01 }; // VP8 header: P=0 on keyframes
                if key {
                    payload[4..7].copy_from_slice(&[0x9d, 0x01, 0x2a]);
                }
                payload[8..16].copy_from_slice(&src.frame.to_be_bytes());
                let fields = RtpFields {
                    marker: i + 1 == src.packets_per_frame,
                    payload_type: PayloadType(PUB_VP8),
                    seq: SeqNo(src.video_seq),
                    timestamp: ts,
                    ssrc: Ssrc(VIDEO_SSRC),
                    extensions: &[(1, b"0")],
                };
                let mut buf = vec![0u8; 2048];
                let n = rtp::write_rtp(&mut buf, &fields, &payload).unwrap();
                buf.truncate(n);
                plain.push((src.video_seq, buf));
                src.video_seq = src.video_seq.wrapping_add(1);
            }
            src.frame += 1;
            src.next_frame += Duration::from_micros(33_333);
        }
        while now >= src.next_audio {
            let fields = RtpFields {
                marker: false,
                payload_type: PayloadType(PUB_OPUS),
                seq: SeqNo(src.audio_seq),
                timestamp: src.audio_seq as u32 * 960,
                ssrc: Ssrc(AUDIO_SSRC),
                extensions: &[(1, b"1"), (2, &[0x85])],
            };
            let mut buf = vec![0u8; 2048];
            let n = rtp::write_rtp(&mut buf, &fields, &[0xfc; 160]).unwrap();
            buf.truncate(n);
            plain.push((0, buf));
            src.audio_seq = src.audio_seq.wrapping_add(1);
            src.next_audio += Duration::from_millis(20);
        }
        for (seq, pkt) in plain {
            let hdr = RtpHeader::parse(&pkt).unwrap();
            if hdr.ssrc == Ssrc(VIDEO_SSRC) {
                self.peers[p].sent.insert(seq, pkt.clone());
            }
            let mut buf = pkt.clone();
            buf.resize(pkt.len() + 64, 0);
            let n = self.peers[p]
                .client
                .protect_rtp(&mut buf, pkt.len())
                .unwrap();
            buf.truncate(n);
            out.push(buf);
        }
        out
    }

    /// Video packets a peer received, parsed.
    pub fn video_received(&self, p: usize) -> Vec<(RtpHeader, Vec<u8>)> {
        self.peers[p]
            .rtp
            .iter()
            .filter_map(|b| {
                let h = RtpHeader::parse(b).ok()?;
                (h.payload_type == PayloadType(VIEW_VP8)).then(|| (h, b.clone()))
            })
            .collect()
    }

    pub fn audio_received(&self, p: usize) -> usize {
        self.peers[p]
            .rtp
            .iter()
            .filter(|b| RtpHeader::parse(b).is_ok_and(|h| h.payload_type == PayloadType(VIEW_OPUS)))
            .count()
    }
}
