//! The `ice_servers` handed to stream clients (WebRTC `RTCIceServer` dictionaries): the STUN and
//! TURN URLs of the configuration, with static TURN credentials or, when a TURN secret is set,
//! time-limited ones (the TURN REST API scheme of coturn's `use-auth-secret`: username
//! `expiry:user`, credential `base64(HMAC-SHA1(secret, username))`).

use base64::Engine;
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha1::Sha1;

use super::config::StreamConfig;
use crate::config::Config;

/// One `RTCIceServer`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IceServer {
    pub urls: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// The TURN REST credential for `username` (RFC 2104 HMAC-SHA1, standard base64).
pub fn turn_rest_credential(secret: &str, username: &str) -> String {
    // HMAC takes keys of any length.
    let mut mac = Hmac::<Sha1>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(username.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn is_turn(url: &str) -> bool {
    url.starts_with("turn:") || url.starts_with("turns:")
}

/// The ICE servers for `user` at `now_unix` (seconds).
pub fn ice_servers(cfg: &Config, scfg: &StreamConfig, user: &str, now_unix: u64) -> Vec<IceServer> {
    let mut out = Vec::new();
    // --ice-servers (ICE_SERVERS) with ICE_USERNAME/ICE_CREDENTIAL, as WHIP/WHEP announce them.
    for url in cfg
        .ice_servers
        .iter()
        .map(|u| u.trim())
        .filter(|u| !u.is_empty())
    {
        let turn = is_turn(url);
        out.push(IceServer {
            urls: vec![url.to_string()],
            username: cfg.ice_username.clone().filter(|_| turn),
            credential: cfg.ice_credential.clone().filter(|_| turn),
        });
    }
    let turn_urls: Vec<String> = scfg
        .turn_urls
        .iter()
        .map(|u| u.trim().to_string())
        .filter(|u| !u.is_empty())
        .collect();
    if !turn_urls.is_empty() {
        let (username, credential) = match scfg.turn_secret.as_deref().filter(|s| !s.is_empty()) {
            Some(secret) => {
                let username = format!("{}:{user}", now_unix + scfg.turn_ttl);
                let credential = turn_rest_credential(secret, &username);
                (Some(username), Some(credential))
            }
            None => (scfg.turn_username.clone(), scfg.turn_password.clone()),
        };
        out.push(IceServer {
            urls: turn_urls,
            username,
            credential,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn configs(args: &[&str]) -> Config {
        let mut argv = vec!["ringcast"];
        argv.extend_from_slice(args);
        Config::try_parse_from(argv).expect("valid flags")
    }

    #[test]
    fn turn_rest_credential_matches_a_known_vector() {
        // python3: base64.b64encode(hmac.new(b"north", b"1700000000:alice", "sha1").digest())
        assert_eq!(
            turn_rest_credential("north", "1700000000:alice"),
            "Cd/49soE35ICqcJF/bCTn8Z4OyE="
        );
    }

    #[test]
    fn turn_secret_gives_time_limited_credentials() {
        let cfg = configs(&[
            "--turn-url",
            "turn:t.example:3478",
            "--turn-secret",
            "north",
            "--turn-ttl",
            "600",
            "--turn-username",
            "ignored",
        ]);
        let s = ice_servers(&cfg, &cfg.stream, "alice", 1_700_000_000);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].urls, vec!["turn:t.example:3478"]);
        assert_eq!(s[0].username.as_deref(), Some("1700000600:alice"));
        assert_eq!(
            s[0].credential.as_deref(),
            Some(turn_rest_credential("north", "1700000600:alice").as_str())
        );
    }

    #[test]
    fn static_turn_credentials_and_stun_servers() {
        let cfg = configs(&[
            "--ice-servers",
            "stun:s.example:3478",
            "--turn-url",
            "turn:a:3478,turns:b:5349",
            "--turn-username",
            "discord",
            "--turn-password",
            "pw",
        ]);
        let s = ice_servers(&cfg, &cfg.stream, "alice", 0);
        assert_eq!(s[0].urls, vec!["stun:s.example:3478"]);
        assert_eq!(s[0].username, None);
        assert_eq!(s[1].urls, vec!["turn:a:3478", "turns:b:5349"]);
        assert_eq!(s[1].username.as_deref(), Some("discord"));
        assert_eq!(s[1].credential.as_deref(), Some("pw"));
    }
}
