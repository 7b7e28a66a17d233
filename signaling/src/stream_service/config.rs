//! Configuration of the stream service: flags with environment-variable equivalents, the
//! variable names of the service's contract (seed 000) where it names them.

use std::path::PathBuf;

use clap::Args;

/// `/stream/*`: screen-share streams with JWT auth, an event bus and a state store.
#[derive(Debug, Clone, Args)]
pub struct StreamConfig {
    /// HS256 secret for bearer JWTs on /stream/*.
    #[arg(long = "jwt-secret", env = "JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// PEM file with the RSA public key for RS256 bearer JWTs on /stream/*.
    #[arg(long = "jwt-public-key-file", env = "JWT_PUBLIC_KEY_FILE")]
    pub jwt_public_key_file: Option<PathBuf>,

    /// Most streams one channel may have at once (a further start gets 409).
    #[arg(
        long = "max-streams-per-channel",
        env = "MAX_STREAMS_PER_CHANNEL",
        default_value_t = 5
    )]
    pub max_streams_per_channel: usize,

    /// Most viewers one stream may have at once (a further watch gets 429).
    #[arg(
        long = "max-viewers-per-stream",
        env = "MAX_VIEWERS_PER_STREAM",
        default_value_t = 50
    )]
    pub max_viewers_per_stream: usize,

    /// Redis for the stream state, shared between signaling processes (default: in memory).
    #[arg(long = "redis-url", env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,

    /// NATS for the stream events (default: in process only).
    #[arg(long = "nats-url", env = "NATS_URL", hide_env_values = true)]
    pub nats_url: Option<String>,

    /// TURN server(s) handed to stream clients, comma-separated turn:/turns: URLs.
    #[arg(long = "turn-url", env = "TURN_URL", value_delimiter = ',')]
    pub turn_urls: Vec<String>,

    /// Static TURN username (when TURN_SECRET is not set).
    #[arg(long = "turn-username", env = "TURN_USERNAME")]
    pub turn_username: Option<String>,

    /// Static TURN password (when TURN_SECRET is not set).
    #[arg(long = "turn-password", env = "TURN_PASSWORD", hide_env_values = true)]
    pub turn_password: Option<String>,

    /// Shared secret of the TURN server's REST API (coturn use-auth-secret): clients get
    /// time-limited credentials instead of TURN_USERNAME/TURN_PASSWORD.
    #[arg(long = "turn-secret", env = "TURN_SECRET", hide_env_values = true)]
    pub turn_secret: Option<String>,

    /// Lifetime of TURN REST credentials, seconds.
    #[arg(long = "turn-ttl", env = "TURN_TTL", default_value_t = 86400)]
    pub turn_ttl: u64,

    /// `server_endpoint` of /stream/start (default: this node's HTTP host:port).
    #[arg(long = "server-endpoint", env = "SERVER_ENDPOINT")]
    pub server_endpoint: Option<String>,

    /// Base URL clients reach this node at, written into response URLs and into the state store
    /// for other nodes (default: http://BIND_ADDR:PORT).
    #[arg(long = "public-url", env = "PUBLIC_URL")]
    pub public_url: Option<String>,

    /// This node's id in the state store (default: a random UUID per start).
    #[arg(long = "node-id", env = "NODE_ID")]
    pub node_id: Option<String>,

    /// Seconds a node's heartbeat in the state store lasts (renewed every third of it). Streams
    /// of a node silent for longer are removed by the other nodes.
    #[arg(long = "node-ttl", env = "NODE_TTL", default_value_t = 15)]
    pub node_ttl: u64,

    /// Seconds a viewer has to answer the offer of /stream/watch before it is dropped.
    #[arg(
        long = "watch-answer-timeout",
        env = "WATCH_ANSWER_TIMEOUT",
        default_value_t = 30
    )]
    pub watch_answer_timeout: u64,
}
