//! The WHIP (RFC 9725) and WHEP target: publishers POST their offer to `/whip/{stream}`,
//! subscribers to `/whep/{stream}`; the `201 Created` answer carries the SDP and a `Location`
//! that is DELETEd to leave.

use std::time::Duration;

use super::{Answered, JoinRequest, OfferSide, Role, SessionHandle, Target, TargetError};
use crate::http::{self, Url};

/// A Ringcast (or any WHIP/WHEP) server at `http://host:port`.
#[derive(Debug, Clone)]
pub struct WhipTarget {
    base: Url,
    token: Option<String>,
    timeout: Duration,
}

impl WhipTarget {
    /// A target at `base` (`http://host:port`, optionally with a path prefix), sending
    /// `Authorization: Bearer <token>` when a token is given.
    pub fn new(base: &str, token: Option<String>, timeout: Duration) -> Result<Self, TargetError> {
        let mut base = Url::parse(base).map_err(|e| TargetError::Config(e.to_string()))?;
        while base.path.ends_with('/') {
            base.path.pop();
        }
        Ok(WhipTarget {
            base,
            token,
            timeout,
        })
    }

    /// The endpoint URL for a role and stream.
    pub fn endpoint(&self, role: Role, stream: &str) -> Url {
        let kind = match role {
            Role::Publisher => "whip",
            Role::Subscriber => "whep",
        };
        Url {
            host: self.base.host.clone(),
            port: self.base.port,
            path: format!("{}/{kind}/{stream}", self.base.path),
        }
    }

    fn request(
        &self,
        method: &str,
        url: &Url,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<http::Response, TargetError> {
        let auth = self.token.as_ref().map(|t| format!("Bearer {t}"));
        let mut headers: Vec<(&str, &str)> = Vec::with_capacity(3);
        if let Some(ct) = content_type {
            headers.push(("Content-Type", ct));
            headers.push(("Accept", "application/sdp"));
        }
        if let Some(a) = auth.as_deref() {
            headers.push(("Authorization", a));
        }
        http::send(&http::Request {
            method,
            url,
            headers: &headers,
            body,
            timeout: self.timeout,
        })
        .map_err(|e| TargetError::Transport {
            what: format!("{method} {}", url.to_url_string()),
            reason: e.to_string(),
        })
    }
}

impl Target for WhipTarget {
    fn describe(&self) -> String {
        format!("whip {}", self.base.to_url_string())
    }

    fn offer_side(&self, _role: Role) -> OfferSide {
        OfferSide::Client
    }

    fn send_offer(&self, req: &JoinRequest, offer: &str) -> Result<Answered, TargetError> {
        let url = self.endpoint(req.role, &req.stream);
        let what = format!("POST {}", url.to_url_string());
        let r = self.request("POST", &url, Some("application/sdp"), offer.as_bytes())?;
        if r.status != 201 {
            return Err(TargetError::Status {
                what,
                status: r.status,
                body: r.text().chars().take(300).collect(),
            });
        }
        let location = r.header("location").ok_or_else(|| TargetError::Protocol {
            what: what.clone(),
            reason: "201 without Location".into(),
        })?;
        let resource = url
            .join(location)
            .map_err(|e| TargetError::Protocol {
                what: what.clone(),
                reason: e.to_string(),
            })?
            .to_url_string();
        let sdp = String::from_utf8(r.body).map_err(|_| TargetError::Protocol {
            what,
            reason: "answer is not UTF-8".into(),
        })?;
        Ok(Answered {
            sdp,
            session: SessionHandle::new(resource),
        })
    }

    fn leave(&self, session: SessionHandle) -> Result<(), TargetError> {
        let url = Url::parse(&session.resource).map_err(|e| TargetError::Protocol {
            what: "DELETE".into(),
            reason: e.to_string(),
        })?;
        let r = self.request("DELETE", &url, None, &[])?;
        if !(200..300).contains(&r.status) {
            return Err(TargetError::Status {
                what: format!("DELETE {}", session.resource),
                status: r.status,
                body: r.text().chars().take(300).collect(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests an unwrap is an assertion
mod tests {
    use super::*;

    #[test]
    fn endpoints_follow_the_role_and_keep_a_path_prefix() {
        let t = WhipTarget::new("http://127.0.0.1:8080/", None, Duration::from_secs(1)).unwrap();
        assert_eq!(t.endpoint(Role::Publisher, "a").path, "/whip/a");
        assert_eq!(t.endpoint(Role::Subscriber, "a").path, "/whep/a");
        let t = WhipTarget::new("http://h:1/api", None, Duration::from_secs(1)).unwrap();
        assert_eq!(t.endpoint(Role::Subscriber, "s").path, "/api/whep/s");
        assert!(WhipTarget::new("ftp://x", None, Duration::from_secs(1)).is_err());
    }

    #[test]
    fn a_refused_connection_is_a_transport_error() {
        // Port 1 on loopback is closed in any sane environment.
        let t = WhipTarget::new("http://127.0.0.1:1", None, Duration::from_secs(1)).unwrap();
        let req = JoinRequest {
            role: Role::Publisher,
            client: 0,
            room: 0,
            publisher: 0,
            stream: "s".into(),
        };
        match t.send_offer(&req, "v=0\r\n") {
            Err(TargetError::Transport { .. }) => {}
            other => panic!("expected a transport error, got {other:?}"),
        }
    }
}
