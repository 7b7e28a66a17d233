//! Configuration of the livestream service: flags with environment-variable equivalents. JWT
//! settings (`JWT_SECRET`, `JWT_PUBLIC_KEY_FILE`), `ICE_SERVERS` and `TURN_*` are shared with
//! the stream service; `TURN_SERVER` is the seed's name for a TURN URL.

use std::path::PathBuf;

use clap::Args;

/// `/api/livestream/*` and its Socket.IO events.
#[derive(Debug, Clone, Args)]
pub struct LivestreamConfig {
    /// Directory for embedded data: the SQLite database `ringcast.sqlite3` lives here unless
    /// DATABASE_URL is set.
    #[arg(long = "data-dir", env = "DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,

    /// PostgreSQL for livestreams, viewers and chat (`postgres://user:pass@host/db`); default:
    /// SQLite in DATA_DIR.
    #[arg(long = "database-url", env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Most viewers one livestream may have at once (Socket.IO, WHEP and HTTP joins together);
    /// one more gets 429. Also the largest `maxViewers` a livestream may be created with (its
    /// own, lower limit).
    #[arg(
        long = "livestream-max-viewers",
        env = "LIVESTREAM_MAX_VIEWERS",
        default_value_t = 100
    )]
    pub max_viewers: usize,

    /// Chat messages one user may send to one livestream per CHAT_RATE_WINDOW seconds.
    #[arg(long = "chat-rate-limit", env = "CHAT_RATE_LIMIT", default_value_t = 5)]
    pub chat_rate_limit: usize,

    /// The window of CHAT_RATE_LIMIT, seconds.
    #[arg(
        long = "chat-rate-window",
        env = "CHAT_RATE_WINDOW",
        default_value_t = 10
    )]
    pub chat_rate_window: u64,

    /// Longest chat message, in characters.
    #[arg(
        long = "chat-max-length",
        env = "CHAT_MAX_LENGTH",
        default_value_t = 500
    )]
    pub chat_max_length: usize,

    /// Users (JWT `sub`) who may moderate every livestream: delete messages, mute users, end
    /// streams. Comma-separated.
    #[arg(
        long = "livestream-admins",
        env = "LIVESTREAM_ADMINS",
        value_delimiter = ','
    )]
    pub admins: Vec<String>,

    /// Seconds an HTTP join (`POST /api/livestream/{id}/join`) counts as a viewer without a
    /// Socket.IO or WHEP connection following it.
    #[arg(
        long = "livestream-join-ttl",
        env = "LIVESTREAM_JOIN_TTL",
        default_value_t = 60
    )]
    pub join_ttl: u64,

    /// Seconds a Socket.IO viewer has to answer the server's offer.
    #[arg(
        long = "livestream-answer-timeout",
        env = "LIVESTREAM_ANSWER_TIMEOUT",
        default_value_t = 30
    )]
    pub answer_timeout: u64,

    /// TURN server(s) handed to livestream clients (the seed's name; comma-separated turn:
    /// URLs), with TURN_USERNAME and TURN_PASSWORD.
    #[arg(long = "turn-server", env = "TURN_SERVER", value_delimiter = ',')]
    pub turn_server: Vec<String>,
}
