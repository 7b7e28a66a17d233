//! Server configuration: command-line flags, each with an environment-variable equivalent.

use std::net::IpAddr;

use clap::{Parser, ValueEnum};

/// Which UDP backend the shards use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum IoChoice {
    /// io_uring: multishot recvmsg into a buffer ring, batched sendmsg (falls back to mmsg when
    /// the kernel refuses io_uring).
    Uring,
    /// recvmmsg/sendmmsg over epoll.
    Mmsg,
}

/// How sessions are spread over shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Placement {
    /// Keep a stream's viewers on their stream's shard while it has room, else the least loaded.
    Stream,
    /// Every new session goes to the least loaded shard.
    Spread,
}

/// Ringcast: a WebRTC SFU. Publish with WHIP (POST /whip/{stream}), watch with WHEP
/// (POST /whep/{stream}); a demo page is served at /.
#[derive(Debug, Clone, Parser)]
#[command(name = "ringcast", version, about, long_about = None)]
pub struct Config {
    /// HTTP port for signaling, the demo page, /health and /metrics.
    #[arg(long, env = "PORT", default_value_t = 8080)]
    pub port: u16,

    /// Address the HTTP server binds to.
    #[arg(long = "bind", env = "BIND_ADDR", default_value = "127.0.0.1")]
    pub bind: IpAddr,

    /// Address the media (UDP) sockets bind to. 0.0.0.0 announces every local IPv4 address.
    #[arg(long = "rtc-bind", env = "RTC_BIND_ADDR", default_value = "0.0.0.0")]
    pub rtc_bind: IpAddr,

    /// First UDP port for media: shard i binds RTC_MIN_PORT + i (0: ephemeral ports).
    #[arg(long = "rtc-min-port", env = "RTC_MIN_PORT", default_value_t = 50000)]
    pub rtc_min_port: u16,

    /// Number of media shards (one pinned thread each). Default: available cores minus one, at least 1.
    #[arg(long, env = "SHARDS")]
    pub shards: Option<usize>,

    /// UDP I/O backend of the shards.
    #[arg(long = "io", env = "IO_BACKEND", value_enum, default_value_t = IoChoice::Uring)]
    pub io: IoChoice,

    /// Public IP announced as an extra host candidate (1:1 NAT, e.g. a cloud instance's elastic IP).
    #[arg(long = "public-ip", env = "PUBLIC_IP")]
    pub public_ip: Option<IpAddr>,

    /// ICE servers handed to clients (Link headers), comma-separated stun:/turn:/turns: URLs.
    #[arg(long = "ice-servers", env = "ICE_SERVERS", value_delimiter = ',')]
    pub ice_servers: Vec<String>,

    /// Username for the turn:/turns: entries of --ice-servers.
    #[arg(long = "ice-username", env = "ICE_USERNAME")]
    pub ice_username: Option<String>,

    /// Credential for the turn:/turns: entries of --ice-servers.
    #[arg(long = "ice-credential", env = "ICE_CREDENTIAL")]
    pub ice_credential: Option<String>,

    /// When set, WHIP and WHEP require `Authorization: Bearer <secret>`.
    #[arg(long = "auth-secret", env = "AUTH_SECRET", hide_env_values = true)]
    pub auth_secret: Option<String>,

    /// Most sessions one shard accepts; when every shard is full, new sessions get 503.
    #[arg(
        long = "max-sessions-per-shard",
        env = "MAX_SESSIONS_PER_SHARD",
        default_value_t = 2000
    )]
    pub max_sessions_per_shard: usize,

    /// How sessions are placed on shards.
    #[arg(long, env = "PLACEMENT", value_enum, default_value_t = Placement::Stream)]
    pub placement: Placement,

    /// Do not pin shard threads to cores.
    #[arg(long = "no-pin", env = "NO_PIN")]
    pub no_pin: bool,

    /// Largest accepted SDP body in bytes.
    #[arg(long = "max-sdp-bytes", env = "MAX_SDP_BYTES", default_value_t = 64 * 1024)]
    pub max_sdp_bytes: usize,

    /// The stream service (`/stream/*`).
    #[command(flatten)]
    pub stream: crate::stream_service::StreamConfig,

    /// The media server (`/sessions/*`).
    #[command(flatten)]
    pub media_server: crate::media_server::MediaServerConfig,

    /// The livestream service (`/api/livestream/*` and Socket.IO).
    #[command(flatten)]
    pub livestream: crate::livestream::LivestreamConfig,
}

impl Config {
    /// The number of shards to run.
    pub fn shard_count(&self) -> usize {
        self.shards.unwrap_or_else(|| {
            let cores = std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1);
            cores.saturating_sub(1).max(1)
        })
    }
}
