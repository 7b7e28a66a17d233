//! The embedded media node: the process certificate, the shards (one pinned thread each), and
//! the addresses announced as host candidates.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use sfu::ShardId;
use sfu::control::{Command, Event};
use sfu::core::CoreConfig;
use sfu::dtls::{DtlsCert, Fingerprint};
use sfu::io::{IoConfig, IoKind};
use sfu::shard::{self, EventSink, Mesh, ShardConfig, ShardHandle};

use crate::config::{Config, IoChoice};
use crate::netif;

/// Capacity of each queue between two shards, in packets.
const MESH_QUEUE: usize = 1024;

/// Why the media node could not start.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("certificate: {0}")]
    Certificate(String),
    #[error(transparent)]
    Shard(#[from] shard::ShardError),
}

/// The running shards of this process.
#[derive(Debug)]
pub struct MediaNode {
    shards: Vec<ShardHandle>,
    pub fingerprint: Fingerprint,
    /// Addresses written into host candidates, in order of preference.
    pub candidate_ips: Vec<IpAddr>,
}

impl MediaNode {
    /// Generates the certificate and starts `cfg.shard_count()` shards.
    pub fn start(
        cfg: &Config,
        events: impl Fn(Event) + Send + Sync + 'static,
    ) -> Result<Self, MediaError> {
        let cert =
            Arc::new(DtlsCert::generate().map_err(|e| MediaError::Certificate(e.to_string()))?);
        let fingerprint = cert.fingerprint();
        let n = cfg.shard_count();
        let mesh = Mesh::new(n, MESH_QUEUE);
        let sink: EventSink = Arc::new(events);
        let cores = core_ids();
        let io = match cfg.io {
            IoChoice::Uring => IoKind::Uring,
            IoChoice::Mmsg => IoKind::Mmsg,
        };
        let mut shards = Vec::with_capacity(n);
        for i in 0..n {
            let core = CoreConfig {
                max_sessions: cfg.max_sessions_per_shard,
                ..CoreConfig::default()
            };
            let pin = if cfg.no_pin || cores.is_empty() {
                None
            } else if n < cores.len() {
                // Leave the first core to signaling and the kernel.
                Some(cores[(i + 1) % cores.len()])
            } else {
                Some(cores[i % cores.len()])
            };
            let sc = ShardConfig {
                id: ShardId(i as u16),
                bind: SocketAddr::new(
                    cfg.rtc_bind,
                    if cfg.rtc_min_port == 0 {
                        0
                    } else {
                        cfg.rtc_min_port.saturating_add(i as u16)
                    },
                ),
                io,
                // The ring is created and driven on the shard's own thread, so it may defer task work.
                io_config: IoConfig {
                    uring_defer_taskrun: true,
                    ..IoConfig::default()
                },
                core,
                pin,
            };
            let handle = shard::spawn(sc, Arc::clone(&cert), Arc::clone(&mesh), Arc::clone(&sink))?;
            tracing::info!(shard = i, addr = %handle.local_addr, io = ?handle.io, core = ?pin, "shard started");
            shards.push(handle);
        }
        let mut candidate_ips = if cfg.rtc_bind.is_unspecified() {
            netif::local_ipv4_addrs()
        } else {
            vec![cfg.rtc_bind]
        };
        if let Some(ip) = cfg.public_ip {
            candidate_ips.retain(|a| *a != ip);
            candidate_ips.insert(0, ip);
        }
        Ok(MediaNode {
            shards,
            fingerprint,
            candidate_ips,
        })
    }

    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    pub fn shards(&self) -> &[ShardHandle] {
        &self.shards
    }

    /// The UDP port of a shard.
    pub fn port(&self, shard: ShardId) -> u16 {
        self.shards[shard.0 as usize].local_addr.port()
    }

    /// Where a process-local client reaches a shard: its socket's address, loopback in place of
    /// an unspecified bind address.
    pub fn local_addr(&self, shard: ShardId) -> Option<SocketAddr> {
        let mut addr = self.shards.get(shard.0 as usize)?.local_addr;
        if addr.ip().is_unspecified() {
            addr.set_ip(match addr.ip() {
                IpAddr::V4(_) => IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
                IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
            });
        }
        Some(addr)
    }

    pub fn send(&self, shard: ShardId, cmd: Command) {
        if let Some(s) = self.shards.get(shard.0 as usize) {
            s.send(cmd);
        }
    }

    /// Closes every session and joins the shard threads.
    pub fn shutdown(&self) {
        for s in &self.shards {
            s.send(Command::Shutdown);
        }
        for s in &self.shards {
            s.shutdown();
        }
    }
}

fn core_ids() -> Vec<usize> {
    core_affinity::get_core_ids()
        .map(|v| v.into_iter().map(|c| c.id).collect())
        .unwrap_or_default()
}
