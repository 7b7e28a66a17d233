//! The Janus VideoRoom target (`--target janus+http://HOST:PORT/janus`): the same workload the
//! WHIP/WHEP target runs, over the Janus HTTP API. One Janus session per run carries one plugin
//! handle per client; a background long poll (`GET /janus/{session}`) collects the plugin's
//! asynchronous events and hands each to the join waiting on its transaction, and keeps the
//! session alive. Publishers `joinandconfigure` with the client's offer and get Janus's answer;
//! subscribers `join` (Janus offers), answer with `start`. Rooms are created on first use.

pub mod api;
mod poller;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::http::{self, Url};
use crate::target::{
    Answered, JoinRequest, OfferSide, Role, ServerOffer, SessionHandle, Target, TargetError,
};
use api::Reply;
use poller::Events;

/// First VideoRoom room number the target uses; run room `i` is `ROOM_BASE + i`.
pub const ROOM_BASE: u64 = 4_200;
/// How often the session is kept alive (Janus drops sessions idle for 60 s by default).
pub const KEEPALIVE: Duration = Duration::from_secs(25);
/// How long a subscriber retries while its publisher's feed is not in the room yet.
const FEED_WAIT: Duration = Duration::from_secs(10);

/// One client's place in Janus: its plugin handle and, for publishers, its feed id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JanusPeer {
    pub session: u64,
    pub handle: u64,
    pub room: u64,
    pub feed: u64,
}

/// A Janus server's VideoRoom plugin, reached over the HTTP transport.
#[derive(Debug, Clone)]
pub struct JanusTarget {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    base: Url,
    timeout: Duration,
    publishers_per_room: usize,
    next_tx: AtomicU64,
    /// The Janus session and the handle that creates rooms, made on first use.
    session: Mutex<Option<(u64, u64)>>,
    rooms: Mutex<Vec<u64>>,
    last_keepalive: Mutex<Option<Instant>>,
    events: Arc<Events>,
}

/// The feed id a publisher gets (unique in the run, so unique in its room).
pub fn feed_id(publisher: usize) -> u64 {
    publisher as u64 + 1
}

impl JanusTarget {
    /// A target at `url`: `janus+http://host:port/janus` (or the plain `http://` form). Rooms
    /// are created for up to `publishers_per_room` publishers.
    pub fn new(
        url: &str,
        publishers_per_room: usize,
        timeout: Duration,
    ) -> Result<Self, TargetError> {
        let plain = url.strip_prefix("janus+").unwrap_or(url);
        let mut base = Url::parse(plain).map_err(|e| TargetError::Config(e.to_string()))?;
        while base.path.ends_with('/') {
            base.path.pop();
        }
        Ok(JanusTarget {
            inner: Arc::new(Inner {
                base,
                timeout,
                publishers_per_room: publishers_per_room.max(1),
                next_tx: AtomicU64::new(1),
                session: Mutex::new(None),
                rooms: Mutex::new(Vec::new()),
                last_keepalive: Mutex::new(None),
                events: Arc::new(Events::default()),
            }),
        })
    }

    /// Janus events read that no request waited for (`webrtcup`, `media`, `hangup`, ...).
    pub fn unclaimed_events(&self) -> u64 {
        self.inner.events.unclaimed()
    }

    /// The base URL (`http://host:port/janus`).
    pub fn base(&self) -> &Url {
        &self.inner.base
    }
}

impl Inner {
    fn tx(&self) -> String {
        format!("lg{}", self.next_tx.fetch_add(1, Ordering::Relaxed))
    }

    fn url(&self, path: &[u64]) -> Url {
        let mut p = self.base.path.clone();
        for id in path {
            p.push('/');
            p.push_str(&id.to_string());
        }
        Url {
            host: self.base.host.clone(),
            port: self.base.port,
            path: p,
        }
    }

    /// POSTs a Janus request to `path` (session, handle ids) and returns the parsed reply.
    fn post(&self, path: &[u64], body: &Value) -> Result<Value, TargetError> {
        let url = self.url(path);
        let what = format!("POST {} {}", url.to_url_string(), body["janus"]);
        let payload = body.to_string();
        let r = http::send(&http::Request {
            method: "POST",
            url: &url,
            headers: &[("Content-Type", "application/json")],
            body: payload.as_bytes(),
            timeout: self.timeout,
        })
        .map_err(|e| TargetError::Transport {
            what: what.clone(),
            reason: e.to_string(),
        })?;
        if r.status != 200 {
            return Err(TargetError::Status {
                what,
                status: r.status,
                body: r.text().chars().take(300).collect(),
            });
        }
        serde_json::from_slice(&r.body).map_err(|e| TargetError::Protocol {
            what,
            reason: format!("reply is not JSON: {e}"),
        })
    }

    /// A request whose reply must be `success`; returns its `data` and plugin data.
    fn post_success(
        &self,
        path: &[u64],
        body: &Value,
    ) -> Result<(Option<Value>, Option<Value>), TargetError> {
        let what = format!("janus {}", body["janus"]);
        match api::classify(&self.post(path, body)?) {
            Reply::Success { data, plugin } => Ok((data, plugin)),
            Reply::Error { code, reason } => Err(TargetError::Protocol {
                what,
                reason: format!("error {code}: {reason}"),
            }),
            other => Err(TargetError::Protocol {
                what,
                reason: format!("unexpected reply {other:?}"),
            }),
        }
    }

    fn new_id(&self, path: &[u64], body: &Value) -> Result<u64, TargetError> {
        let (data, _) = self.post_success(path, body)?;
        data.and_then(|d| d.get("id").and_then(Value::as_u64))
            .ok_or_else(|| TargetError::Protocol {
                what: format!("janus {}", body["janus"]),
                reason: "success without data.id".into(),
            })
    }

    /// The run's Janus session (created with its long poll and a control handle on first use).
    fn session(&self) -> Result<(u64, u64), TargetError> {
        let mut s = self.session.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(ids) = *s {
            return Ok(ids);
        }
        let session = self.new_id(&[], &api::create_session(&self.tx()))?;
        let control = self.new_id(&[session], &api::attach_videoroom(&self.tx()))?;
        poller::spawn(
            self.url(&[session]),
            Arc::downgrade(&self.events),
            self.timeout,
        );
        *s = Some((session, control));
        *self
            .last_keepalive
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
        Ok((session, control))
    }

    /// Creates VideoRoom room `room` unless this target already did (or it exists).
    fn ensure_room(&self, room: u64) -> Result<(), TargetError> {
        let mut rooms = self.rooms.lock().unwrap_or_else(|p| p.into_inner());
        if rooms.contains(&room) {
            return Ok(());
        }
        let (session, control) = self.session()?;
        let body = api::message(
            &self.tx(),
            api::create_room(room, self.publishers_per_room),
            None,
        );
        let (_, plugin) = self.post_success(&[session, control], &body)?;
        if let Some((code, reason)) = plugin.as_ref().and_then(api::plugin_error)
            && code != api::ERR_ROOM_EXISTS
        {
            return Err(TargetError::Protocol {
                what: format!("create room {room}"),
                reason: format!("error {code}: {reason}"),
            });
        }
        rooms.push(room);
        Ok(())
    }

    /// Sends a plugin message on `handle` and waits for the event that answers it.
    fn request(
        &self,
        session: u64,
        handle: u64,
        what: &str,
        body: Value,
        jsep: Option<(&str, &str)>,
    ) -> Result<(Value, Option<api::Jsep>), TargetError> {
        let tx = self.tx();
        let waiter = self.events.register(&tx);
        let reply = self.post(&[session, handle], &api::message(&tx, body, jsep))?;
        let protocol = |reason: String| TargetError::Protocol {
            what: what.to_string(),
            reason,
        };
        let event = match api::classify(&reply) {
            Reply::Ack => waiter
                .wait(self.timeout)
                .ok_or_else(|| protocol("no event before the timeout".into()))?,
            // Some requests answer at once.
            Reply::Event { .. } | Reply::Success { .. } => reply,
            Reply::Error { code, reason } => {
                return Err(protocol(format!("error {code}: {reason}")));
            }
            Reply::Other(k) => return Err(protocol(format!("unexpected reply {k}"))),
        };
        let (plugin, jsep) = match api::classify(&event) {
            Reply::Event { plugin, jsep, .. } => (plugin, jsep),
            Reply::Success { plugin, .. } => (plugin, None),
            Reply::Error { code, reason } => {
                return Err(protocol(format!("error {code}: {reason}")));
            }
            other => return Err(protocol(format!("unexpected event {other:?}"))),
        };
        let data = plugin.ok_or_else(|| protocol("reply without plugin data".into()))?;
        if let Some((code, reason)) = api::plugin_error(&data) {
            return Err(TargetError::Status {
                what: what.to_string(),
                status: code.clamp(0, i64::from(u16::MAX)) as u16,
                body: reason,
            });
        }
        Ok((data, jsep))
    }

    fn attach(&self) -> Result<(u64, u64), TargetError> {
        let (session, _) = self.session()?;
        let handle = self.new_id(&[session], &api::attach_videoroom(&self.tx()))?;
        Ok((session, handle))
    }

    fn detach(&self, session: u64, handle: u64) {
        let _ = self.post(&[session, handle], &api::detach(&self.tx()));
    }
}

fn handle_of(s: &SessionHandle) -> Result<JanusPeer, TargetError> {
    s.state::<JanusPeer>()
        .copied()
        .ok_or_else(|| TargetError::Protocol {
            what: "janus session".into(),
            reason: "handle made by another target".into(),
        })
}

fn peer_handle(p: JanusPeer, role: Role) -> SessionHandle {
    SessionHandle {
        resource: format!(
            "janus session {} handle {} room {} {} feed {}",
            p.session,
            p.handle,
            p.room,
            role.as_str(),
            p.feed
        ),
        state: Some(Box::new(p)),
    }
}

impl Target for JanusTarget {
    fn describe(&self) -> String {
        format!("janus {}", self.inner.base.to_url_string())
    }

    fn offer_side(&self, role: Role) -> OfferSide {
        match role {
            Role::Publisher => OfferSide::Client,
            Role::Subscriber => OfferSide::Server,
        }
    }

    fn send_offer(&self, req: &JoinRequest, offer: &str) -> Result<Answered, TargetError> {
        if req.role != Role::Publisher {
            return Err(TargetError::Unsupported("subscribers answer Janus's offer"));
        }
        let inner = &self.inner;
        let room = ROOM_BASE + req.room as u64;
        inner.ensure_room(room)?;
        let (session, handle) = inner.attach()?;
        let feed = feed_id(req.publisher);
        let body = api::join_publisher(room, feed, &req.stream);
        let what = format!("publisher {} joins room {room}", req.client);
        let result = inner.request(session, handle, &what, body, Some(("offer", offer)));
        let (_, jsep) = match result {
            Ok(r) => r,
            Err(e) => {
                inner.detach(session, handle);
                return Err(e);
            }
        };
        let Some(jsep) = jsep.filter(|j| j.kind == "answer") else {
            inner.detach(session, handle);
            return Err(TargetError::Protocol {
                what,
                reason: "joined without a JSEP answer".into(),
            });
        };
        let _ = inner.post(&[session, handle], &api::trickle_completed(&inner.tx()));
        let peer = JanusPeer {
            session,
            handle,
            room,
            feed,
        };
        Ok(Answered {
            sdp: jsep.sdp,
            session: peer_handle(peer, Role::Publisher),
        })
    }

    fn fetch_offer(&self, req: &JoinRequest) -> Result<ServerOffer, TargetError> {
        let inner = &self.inner;
        let room = ROOM_BASE + req.room as u64;
        inner.ensure_room(room)?;
        let (session, handle) = inner.attach()?;
        let feed = feed_id(req.publisher);
        let what = format!("subscriber {} joins feed {feed} in room {room}", req.client);
        let deadline = Instant::now() + FEED_WAIT;
        let jsep = loop {
            let body = api::join_subscriber(room, feed);
            match inner.request(session, handle, &what, body, None) {
                Ok((_, Some(jsep))) if jsep.kind == "offer" => break jsep,
                Ok(_) => {
                    inner.detach(session, handle);
                    return Err(TargetError::Protocol {
                        what,
                        reason: "attached without a JSEP offer".into(),
                    });
                }
                // The publisher is not in the room yet: wait for it.
                Err(TargetError::Status { status, .. })
                    if i64::from(status) == api::ERR_NO_SUCH_FEED && Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => {
                    inner.detach(session, handle);
                    return Err(e);
                }
            }
        };
        let peer = JanusPeer {
            session,
            handle,
            room,
            feed,
        };
        Ok(ServerOffer {
            sdp: jsep.sdp,
            pending: peer_handle(peer, Role::Subscriber),
        })
    }

    fn send_answer(
        &self,
        req: &JoinRequest,
        pending: SessionHandle,
        answer: &str,
    ) -> Result<SessionHandle, TargetError> {
        let inner = &self.inner;
        let p = handle_of(&pending)?;
        let what = format!("subscriber {} starts", req.client);
        if let Err(e) = inner.request(
            p.session,
            p.handle,
            &what,
            api::start(p.room),
            Some(("answer", answer)),
        ) {
            inner.detach(p.session, p.handle);
            return Err(e);
        }
        let _ = inner.post(&[p.session, p.handle], &api::trickle_completed(&inner.tx()));
        Ok(pending)
    }

    fn keepalive_interval(&self) -> Option<Duration> {
        Some(KEEPALIVE)
    }

    /// One keepalive per interval for the shared session, however many clients ask.
    fn keepalive(&self, _session: &SessionHandle) -> Result<(), TargetError> {
        let inner = &self.inner;
        let Some((session, _)) = *inner.session.lock().unwrap_or_else(|p| p.into_inner()) else {
            return Ok(());
        };
        {
            let mut last = inner
                .last_keepalive
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if last.is_some_and(|t| t.elapsed() < KEEPALIVE / 2) {
                return Ok(());
            }
            *last = Some(Instant::now());
        }
        match api::classify(&inner.post(&[session], &api::keepalive(&inner.tx()))?) {
            Reply::Ack | Reply::Success { .. } | Reply::Other(_) => Ok(()),
            Reply::Error { code, reason } => Err(TargetError::Protocol {
                what: "janus keepalive".into(),
                reason: format!("error {code}: {reason}"),
            }),
            Reply::Event { .. } => Ok(()),
        }
    }

    fn leave(&self, session: SessionHandle) -> Result<(), TargetError> {
        let p = handle_of(&session)?;
        let reply = self
            .inner
            .post(&[p.session, p.handle], &api::detach(&self.inner.tx()))?;
        match api::classify(&reply) {
            Reply::Error { code, reason } => Err(TargetError::Protocol {
                what: format!("detach handle {}", p.handle),
                reason: format!("error {code}: {reason}"),
            }),
            _ => Ok(()),
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.events.stop();
        if let Some((session, _)) = *self.session.lock().unwrap_or_else(|p| p.into_inner()) {
            let _ = self.post(&[session], &api::destroy(&self.tx()));
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests an unwrap is an assertion
mod tests;
