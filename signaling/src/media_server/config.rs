//! Configuration of the media server (seed 002): flags with the environment variables the seed
//! names. `PORT`, `RTC_MIN_PORT`, `REDIS_URL`, `NATS_URL` and `TURN_*` are shared with the rest of
//! the server (see [`crate::config::Config`] and the stream service's configuration).

use clap::Args;

/// `/sessions`: ORTC media sessions (mediasoup-client compatible).
#[derive(Debug, Clone, Args)]
pub struct MediaServerConfig {
    /// Most media sessions (`POST /sessions`) this node holds at once; one more gets 429.
    #[arg(long = "max-sessions", env = "MAX_SESSIONS", default_value_t = 1000)]
    pub max_sessions: usize,

    /// Last UDP port for media. Shard i binds RTC_MIN_PORT + i, so RTC_MIN_PORT..=RTC_MAX_PORT must
    /// hold one port per shard; the server refuses to start otherwise.
    #[arg(long = "rtc-max-port", env = "RTC_MAX_PORT")]
    pub rtc_max_port: Option<u16>,

    /// Channel recording (`POST /channels/{id}/recording/start`): WebM files per participant,
    /// stored in RECORDING_STORAGE. Off: the recording endpoints answer 403.
    #[arg(
        long = "enable-recording",
        env = "ENABLE_RECORDING",
        default_value_t = false,
        action = clap::ArgAction::Set,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub enable_recording: bool,

    /// Where recordings are stored: `minio://[key:secret@]host:port[/bucket]` (S3 over HTTP,
    /// path-style; bucket `recordings` by default), `minio+https://…`, `https://host/bucket`, or
    /// `file:///dir`. Credentials: RECORDING_ACCESS_KEY/RECORDING_SECRET_KEY, else
    /// MINIO_ROOT_USER/MINIO_ROOT_PASSWORD, else AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY.
    /// Default with ENABLE_RECORDING=true: `minio://localhost:9000`.
    #[arg(long = "recording-storage", env = "RECORDING_STORAGE")]
    pub recording_storage: Option<String>,

    /// Seconds a media session may go without a connected transport before it is closed.
    #[arg(
        long = "session-connect-timeout",
        env = "SESSION_CONNECT_TIMEOUT",
        default_value_t = 60
    )]
    pub session_connect_timeout: u64,
}

/// Why the media ports do not fit the shards.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RtcPortsError {
    #[error("RTC_MAX_PORT ({max}) is below RTC_MIN_PORT ({min})")]
    Inverted { min: u16, max: u16 },
    #[error(
        "RTC_MIN_PORT..RTC_MAX_PORT ({min}-{max}, {ports} port(s)) is too small for {shards} media shards: each shard binds one UDP port; widen the range or lower SHARDS"
    )]
    TooSmall {
        min: u16,
        max: u16,
        ports: usize,
        shards: usize,
    },
    #[error("RTC_MAX_PORT needs a fixed RTC_MIN_PORT (0 asks for ephemeral ports)")]
    Ephemeral,
}

/// Checks that `min..=max` holds a port for each of `shards` shards (no limit without `max`).
pub fn check_rtc_ports(min: u16, max: Option<u16>, shards: usize) -> Result<(), RtcPortsError> {
    let Some(max) = max else { return Ok(()) };
    if min == 0 {
        return Err(RtcPortsError::Ephemeral);
    }
    if max < min {
        return Err(RtcPortsError::Inverted { min, max });
    }
    let ports = usize::from(max - min) + 1;
    if ports < shards {
        return Err(RtcPortsError::TooSmall {
            min,
            max,
            ports,
            shards,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_port_range_must_hold_every_shard() {
        assert_eq!(check_rtc_ports(50000, None, 64), Ok(()));
        assert_eq!(check_rtc_ports(50000, Some(60000), 8), Ok(()));
        assert_eq!(check_rtc_ports(50000, Some(50001), 2), Ok(()));
        let e = check_rtc_ports(50000, Some(50001), 3).unwrap_err();
        assert!(matches!(
            e,
            RtcPortsError::TooSmall {
                ports: 2,
                shards: 3,
                ..
            }
        ));
        assert!(
            e.to_string().contains("too small for 3 media shards"),
            "{e}"
        );
        assert_eq!(
            check_rtc_ports(50000, Some(49999), 1),
            Err(RtcPortsError::Inverted {
                min: 50000,
                max: 49999
            })
        );
        assert_eq!(
            check_rtc_ports(0, Some(1), 1),
            Err(RtcPortsError::Ephemeral)
        );
    }
}
