//! The virtual network: shard cores and client peers exchanging datagrams in memory under a
//! virtual clock that advances in 1 ms steps, with an optional filter that drops datagrams.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::codecs::{
    PUB_VP8_RTX, RTX_SSRC, VIEW_OPUS, VIEW_VP8, ice_credentials, multi_viewer_spec, publisher_spec,
    simulcast_av_publisher_spec, simulcast_publisher_spec, viewer_spec,
};
use super::in_core;
use super::media_source::MediaSource;
use super::simulcast_source::SimulcastSource;
use crate::bwe::sim_link::{LinkConfig, SimLink};
use crate::bwe::{TwccReceiver, TwccReceiverConfig};
use crate::client::{ClientConfig, ClientEvent, ClientSession};
use crate::control::LayerOrder;
use crate::control::TrackContent;
use crate::control::{IceParams, SessionSpec};
use crate::core::{CoreConfig, ShardCore};
use crate::dtls::DtlsCert;
use crate::io::{RecvMeta, SLOT_SIZE, TxBatch};
use crate::shard::Mesh;
use crate::wire::demux::{PacketClass, classify};
use crate::wire::rtcp::{self, RtcpPacket};
use crate::wire::rtp::{self, RtpHeader};
use crate::{PayloadType, SeqNo, SessionId, ShardId, Ssrc, StreamKey};

/// A client peer on the virtual network.
#[derive(Debug)]
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
    /// A simulcast video publisher's encodings.
    pub simulcast: Option<SimulcastSource>,
    /// Whether received media is kept in `rtp` and `rtcp` (benchmarks turn it off).
    pub record: bool,
    /// Audio sent beside a simulcast publisher's video.
    pub audio: Option<MediaSource>,
    /// A bottleneck the shard's RTP to this peer crosses (see [`Harness::set_downlink`]).
    pub downlink: Option<Downlink>,
}

/// A viewer's downlink: a simulated bottleneck for the RTP the shard sends it, and the
/// transport-cc feedback the viewer returns about what arrived (every 50 ms).
#[derive(Debug)]
pub struct Downlink {
    pub link: SimLink<Vec<u8>>,
    /// The viewer's transport-wide sequence number extension id.
    pub twcc_id: u8,
    pub twcc: TwccReceiver,
}

/// Decides whether to drop a datagram: (from, to, bytes as sent).
pub type DropFilter = Box<dyn FnMut(SocketAddr, SocketAddr, &[u8]) -> bool>;

/// Shard cores and peers on one virtual network.
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

impl std::fmt::Debug for Harness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness")
            .field("cores", &self.cores)
            .field("peers", &self.peers.len())
            .finish_non_exhaustive()
    }
}

impl Harness {
    /// `shards` cores with the default configuration, connected by a mesh when more than one.
    pub fn new(shards: usize) -> Self {
        Self::with_config(shards, CoreConfig::default())
    }

    /// `shards` cores with configuration `cfg`.
    pub fn with_config(shards: usize, cfg: CoreConfig) -> Self {
        let now = Instant::now();
        // Certificate generation only fails if the system has no randomness; a harness cannot
        // run without one.
        let server_cert = Arc::new(DtlsCert::generate().expect("server certificate"));
        let client_cert = Arc::new(DtlsCert::generate().expect("client certificate"));
        let mesh = Mesh::new(shards, 1024);
        let cores = (0..shards)
            .map(|i| {
                let port = (shards > 1).then(|| mesh.port(ShardId(i as u16)));
                ShardCore::new(
                    ShardId(i as u16),
                    cfg.clone(),
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
            client_cert,
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
        let (server_ice, client_ice) = ice_credentials(id);
        let spec = spec(id, server_ice.clone(), client_ice.clone());
        if let Err(e) = self.cores[shard].add_session(self.now, spec) {
            panic!("shard {shard} refused session {id}: {e}");
        }
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
            simulcast: None,
            record: true,
            audio: None,
            downlink: None,
        });
        self.peers.len() - 1
    }

    /// A publisher of VP8 (with RTX) and Opus on `stream`.
    pub fn add_publisher(&mut self, shard: usize, stream: u64) -> usize {
        let fp = self.client_cert.fingerprint();
        let idx = self.new_peer(shard, |id, local_ice, remote_ice| {
            publisher_spec(id, local_ice, remote_ice, fp, StreamKey(stream))
        });
        self.peers[idx].publisher = Some(MediaSource::new(self.now));
        idx
    }

    /// A simulcast VP8 publisher on `stream`: encodings named `rids` (publisher's order) with
    /// `sizes[i]` = (packets per picture, payload bytes), ordered as `order` says.
    pub fn add_simulcast_publisher(
        &mut self,
        shard: usize,
        stream: u64,
        rids: &[&str],
        sizes: &[(usize, usize)],
        order: LayerOrder,
    ) -> usize {
        let fp = self.client_cert.fingerprint();
        let idx = self.new_peer(shard, |id, local_ice, remote_ice| {
            simulcast_publisher_spec(
                id,
                local_ice,
                remote_ice,
                fp,
                StreamKey(stream),
                rids,
                order,
            )
        });
        self.peers[idx].simulcast = Some(SimulcastSource::new(self.now, rids, sizes));
        idx
    }

    /// A simulcast VP8 publisher on `stream` (encodings `rids`, lowest first, named order) whose
    /// video shows `content`, with Opus audio beside it when `audio`.
    pub fn add_simulcast_av_publisher(
        &mut self,
        shard: usize,
        stream: u64,
        rids: &[&str],
        sizes: &[(usize, usize)],
        content: TrackContent,
        audio: bool,
    ) -> usize {
        let fp = self.client_cert.fingerprint();
        let idx = self.new_peer(shard, |id, local_ice, remote_ice| {
            simulcast_av_publisher_spec(
                id,
                local_ice,
                remote_ice,
                fp,
                StreamKey(stream),
                rids,
                content,
                audio,
            )
        });
        self.peers[idx].simulcast = Some(SimulcastSource::new(self.now, rids, sizes));
        if audio {
            self.peers[idx].audio = Some(MediaSource::new(self.now));
        }
        idx
    }

    /// A viewer of the video of every stream in `streams` (one section each) and the audio of
    /// the first, with transport-wide sequence numbers under `twcc_id` when given.
    pub fn add_multi_viewer(
        &mut self,
        shard: usize,
        streams: &[u64],
        twcc_id: Option<u8>,
    ) -> usize {
        let fp = self.client_cert.fingerprint();
        let keys: Vec<StreamKey> = streams.iter().map(|&s| StreamKey(s)).collect();
        self.new_peer(shard, |id, local_ice, remote_ice| {
            let mut spec = multi_viewer_spec(id, local_ice, remote_ice, fp, &keys, id.0 as u32);
            spec.extmap.transport_cc = twcc_id;
            spec
        })
    }

    /// Puts viewer `p` (which negotiated transport-cc under `twcc_id`) behind a bottleneck:
    /// from now on the shard's RTP to it crosses `link` (counted with IP and UDP headers), and
    /// the viewer sends transport-cc feedback about what arrives.
    pub fn set_downlink(&mut self, p: usize, link: LinkConfig, twcc_id: u8) {
        self.peers[p].downlink = Some(Downlink {
            link: SimLink::new(link, self.now),
            twcc_id,
            twcc: TwccReceiver::new(TwccReceiverConfig::default()),
        });
    }

    /// A viewer of `stream` with its own payload types and RTX.
    pub fn add_viewer(&mut self, shard: usize, stream: u64) -> usize {
        let fp = self.client_cert.fingerprint();
        self.new_peer(shard, |id, local_ice, remote_ice| {
            viewer_spec(
                id,
                local_ice,
                remote_ice,
                fp,
                StreamKey(stream),
                id.0 as u32,
            )
        })
    }

    /// A viewer like [`Harness::add_viewer`] that negotiated transport-wide sequence numbers
    /// under extension id `twcc_id`, so the shard estimates its downlink.
    pub fn add_twcc_viewer(&mut self, shard: usize, stream: u64, twcc_id: u8) -> usize {
        let fp = self.client_cert.fingerprint();
        self.new_peer(shard, |id, local_ice, remote_ice| {
            let mut spec = viewer_spec(
                id,
                local_ice,
                remote_ice,
                fp,
                StreamKey(stream),
                id.0 as u32,
            );
            spec.extmap.transport_cc = Some(twcc_id);
            spec
        })
    }

    /// Runs until every peer is connected or `limit` passes; returns whether all connected.
    pub fn connect_all(&mut self, limit: Duration) -> bool {
        let end = self.now + limit;
        while self.now < end {
            if self.peers.iter().all(|p| p.connected) {
                return true;
            }
            self.step();
            self.now += Duration::from_millis(1);
        }
        self.peers.iter().all(|p| p.connected)
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
                    if classify(&bytes) == PacketClass::Rtp
                        && let Some(d) = self
                            .peers
                            .iter_mut()
                            .find(|p| p.addr == dest)
                            .and_then(|p| p.downlink.as_mut())
                    {
                        let size = bytes.len() + 28;
                        d.link.send(now, bytes, size);
                        continue;
                    }
                    self.deliver_to_peer(dest, &mut bytes);
                }
            }
            let core = &mut self.cores[c];
            in_core(|| core.wake_peers());
        }
        self.serve_downlinks(now);
    }

    /// Delivers what the downlinks carried by `now` and sends the viewers' feedback.
    fn serve_downlinks(&mut self, now: Instant) {
        for p in 0..self.peers.len() {
            let mut arrived = Vec::new();
            let Some(d) = self.peers[p].downlink.as_mut() else {
                continue;
            };
            while let Some((_, bytes)) = d.link.poll_deliver(now) {
                arrived.push(bytes);
            }
            let addr = self.peers[p].addr;
            for mut bytes in arrived {
                self.deliver_to_peer(addr, &mut bytes);
            }
            let mut feedback = Vec::new();
            let Some(d) = self.peers[p].downlink.as_mut() else {
                continue;
            };
            loop {
                let mut buf = vec![0u8; 1500];
                let Some(n) = d
                    .twcc
                    .poll_feedback(now, Ssrc(77), Ssrc(1), &mut buf[..1400])
                else {
                    break;
                };
                buf.truncate(n);
                feedback.push(buf);
            }
            for mut buf in feedback {
                let n = buf.len();
                buf.resize(n + 64, 0);
                // Connected: it received media.
                let Ok(n) = self.peers[p].client.protect_rtcp(&mut buf, n) else {
                    continue;
                };
                buf.truncate(n);
                let (shard, src) = (self.peers[p].shard, self.peers[p].addr);
                let core = &mut self.cores[shard];
                in_core(|| core.handle_datagram(now, RecvMeta { src, dst_ip: None }, &mut buf));
            }
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
        let record = self.peers[p].record;
        match self.peers[p].client.handle_datagram(now, bytes) {
            Ok(Some(ClientEvent::Connected)) => self.peers[p].connected = true,
            Ok(Some(ClientEvent::Rtp { len })) => {
                let pkt = &bytes[..len];
                if let Some(d) = self.peers[p].downlink.as_mut()
                    && let Ok(h) = RtpHeader::parse(pkt)
                    && let Some(v) = h.extension(pkt, d.twcc_id)
                    && v.len() >= 2
                {
                    d.twcc.on_packet(now, u16::from_be_bytes([v[0], v[1]]));
                }
                if record {
                    self.peers[p].rtp.push(pkt.to_vec());
                }
            }
            Ok(Some(ClientEvent::Rtcp { len })) => {
                let pkt = &bytes[..len];
                self.on_publisher_rtcp(p, pkt);
                if record {
                    self.peers[p].rtcp.push(pkt.to_vec());
                }
            }
            _ => {}
        }
    }

    /// A publisher answers PLI with a keyframe and NACK with RTX retransmissions.
    fn on_publisher_rtcp(&mut self, p: usize, pkt: &[u8]) {
        if let Some(sc) = self.peers[p].simulcast.as_mut() {
            for r in rtcp::iter(pkt) {
                let media = match r {
                    Ok(RtcpPacket::Pli { media, .. }) => media,
                    Ok(RtcpPacket::Fir(f)) => match f.entries().next() {
                        Some((m, _)) => m,
                        None => continue,
                    },
                    _ => continue,
                };
                if let Some(e) = sc.encodings.iter_mut().find(|e| e.ssrc == media) {
                    e.force_keyframe = true;
                    e.plis += 1;
                }
            }
            return;
        }
        let Some(src) = self.peers[p].publisher.as_mut() else {
            return;
        };
        let mut resend = Vec::new();
        for r in rtcp::iter(pkt) {
            match r {
                Ok(RtcpPacket::Pli { .. }) | Ok(RtcpPacket::Fir(_)) => {
                    src.force_keyframe = true;
                    src.plis += 1;
                }
                Ok(RtcpPacket::Nack(n)) => {
                    src.nacks += 1;
                    resend.extend(n.lost().map(|s| s.0));
                }
                _ => {}
            }
        }
        for seq in resend {
            let peer = &mut self.peers[p];
            let Some(orig) = peer.sent.get(&seq) else {
                continue;
            };
            let Ok(hdr) = RtpHeader::parse(orig) else {
                continue;
            };
            let Some(src) = peer.publisher.as_mut() else {
                return;
            };
            let rtx_seq = SeqNo(src.rtx_seq);
            src.rtx_seq = src.rtx_seq.wrapping_add(1);
            let mut buf = vec![0u8; SLOT_SIZE];
            let Ok(n) = rtp::write_rtx(
                orig,
                &hdr,
                &mut buf,
                Ssrc(RTX_SSRC),
                PayloadType(PUB_VP8_RTX),
                rtx_seq,
            ) else {
                continue;
            };
            let Ok(n) = peer.client.protect_rtp(&mut buf, n) else {
                continue;
            };
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
        if let Some(sc) = self.peers[p].simulcast.as_mut() {
            let mut pictures: Vec<Vec<u8>> = Vec::new();
            while now >= sc.next_frame {
                sc.write_picture(|pkt| pictures.push(pkt.to_vec()));
            }
            if let Some(a) = self.peers[p].audio.as_mut() {
                while now >= a.next_audio {
                    let mut buf = vec![0u8; SLOT_SIZE];
                    let n = a.write_audio(&mut buf);
                    buf.truncate(n);
                    pictures.push(buf);
                }
            }
            for pkt in pictures {
                let mut buf = pkt.clone();
                buf.resize(pkt.len() + 64, 0);
                // Connected (checked by the caller) and sized with tailroom for the tag.
                let n = self.peers[p]
                    .client
                    .protect_rtp(&mut buf, pkt.len())
                    .expect("a connected client protects RTP");
                buf.truncate(n);
                out.push(buf);
            }
            return out;
        }
        let Some(src) = self.peers[p].publisher.as_mut() else {
            return out;
        };
        if src.paused {
            return out;
        }
        while now >= src.next_frame {
            loop {
                let mut buf = vec![0u8; SLOT_SIZE];
                let (seq, n) = src.write_video(&mut buf);
                buf.truncate(n);
                plain.push((Some(seq), buf));
                if src.at_frame_start() {
                    break;
                }
            }
        }
        while now >= src.next_audio {
            let mut buf = vec![0u8; SLOT_SIZE];
            let n = src.write_audio(&mut buf);
            buf.truncate(n);
            plain.push((None, buf));
        }
        for (seq, pkt) in plain {
            if let Some(seq) = seq {
                self.peers[p].sent.insert(seq, pkt.clone());
            }
            let mut buf = pkt.clone();
            buf.resize(pkt.len() + 64, 0);
            // The peer is connected (checked by the caller), so its SRTP context exists, and
            // the buffer has the tailroom for the tag.
            let n = self.peers[p]
                .client
                .protect_rtp(&mut buf, pkt.len())
                .expect("a connected client protects RTP");
            buf.truncate(n);
            out.push(buf);
        }
        out
    }

    /// Writes the publisher `p`'s next video packet into `out`, encrypted, as the harness would
    /// send it (but not recorded for retransmission), and returns its length. For drivers that
    /// feed the core themselves while the source is paused. `out` needs the packet plus 16
    /// bytes of tailroom for the tag.
    ///
    /// # Panics
    /// If `p` is not a connected publisher.
    pub fn next_video_packet(&mut self, p: usize, out: &mut [u8]) -> usize {
        let peer = &mut self.peers[p];
        let src = peer.publisher.as_mut().expect("peer is a publisher");
        let (_, n) = src.write_video(out);
        peer.client
            .protect_rtp(out, n)
            .expect("publisher is connected and the buffer has tailroom")
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

    /// Video packets a peer received on SSRC `ssrc` (one of its sections), parsed.
    pub fn video_received_on(&self, p: usize, ssrc: Ssrc) -> Vec<(RtpHeader, Vec<u8>)> {
        self.video_received(p)
            .into_iter()
            .filter(|(h, _)| h.ssrc == ssrc)
            .collect()
    }

    /// Audio packets a peer received.
    pub fn audio_received(&self, p: usize) -> usize {
        self.peers[p]
            .rtp
            .iter()
            .filter(|b| RtpHeader::parse(b).is_ok_and(|h| h.payload_type == PayloadType(VIEW_OPUS)))
            .count()
    }
}
