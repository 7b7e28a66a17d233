//! Who watches which livestream right now. A viewer is a user; it stays a viewer while it holds
//! at least one attachment: a Socket.IO viewer socket, a WHEP session, or a recent HTTP join
//! not yet followed by either. Each viewer has one open `livestream_viewers` row, opened when
//! it became a viewer and closed when its last attachment goes. Time is an input.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use uuid::Uuid;

use super::store::ViewerClient;

/// What keeps a user watching.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Attachment {
    /// `POST /api/livestream/{id}/join`, until its TTL runs out or media follows.
    Http,
    /// A Socket.IO socket that sent `stream:join` (its socket id).
    Socket(String),
    /// A WHEP viewer session.
    Whep(u64),
}

impl Attachment {
    /// How the viewer row records this attachment.
    pub fn client(&self) -> ViewerClient {
        match self {
            Attachment::Http => ViewerClient::Http,
            Attachment::Socket(_) => ViewerClient::Socketio,
            Attachment::Whep(_) => ViewerClient::Whep,
        }
    }
}

/// One watching user.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// The open `livestream_viewers` row.
    pub row: i64,
    pub attachments: Vec<Attachment>,
    /// When an HTTP-only join stops counting.
    http_until: Option<Instant>,
}

/// What a join would do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinPlan {
    /// The user watches already: attach to its row.
    Existing,
    /// A new viewer: open a row, then [`Presence::insert`].
    New,
    /// The stream has `max` viewers.
    Full,
}

/// The result of attaching to an existing viewer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attached {
    /// The viewer's row.
    pub row: i64,
    /// Media followed an HTTP join: the row's client changes to this.
    pub upgraded: Option<ViewerClient>,
}

/// The viewers of every livestream on this node.
#[derive(Debug, Default)]
pub struct Presence {
    streams: HashMap<Uuid, HashMap<String, Viewer>>,
}

impl Presence {
    /// Viewers of every livestream now.
    pub fn total(&self) -> usize {
        self.streams.values().map(HashMap::len).sum()
    }

    /// Viewers of `stream` now.
    pub fn count(&self, stream: Uuid) -> usize {
        self.streams.get(&stream).map_or(0, HashMap::len)
    }

    pub fn viewer(&self, stream: Uuid, user: &str) -> Option<&Viewer> {
        self.streams.get(&stream)?.get(user)
    }

    /// Whether `user` joining `stream` is a new viewer, an existing one, or one too many.
    pub fn plan_join(&self, stream: Uuid, user: &str, max: usize) -> JoinPlan {
        if self.viewer(stream, user).is_some() {
            JoinPlan::Existing
        } else if self.count(stream) >= max {
            JoinPlan::Full
        } else {
            JoinPlan::New
        }
    }

    /// Records a new viewer with its open row.
    pub fn insert(
        &mut self,
        stream: Uuid,
        user: &str,
        row: i64,
        att: Attachment,
        now: Instant,
        http_ttl: Duration,
    ) {
        let http_until = (att == Attachment::Http).then(|| now + http_ttl);
        self.streams.entry(stream).or_default().insert(
            user.to_string(),
            Viewer {
                row,
                attachments: vec![att],
                http_until,
            },
        );
    }

    /// Adds an attachment to an existing viewer. Media (socket or WHEP) replaces a pending HTTP
    /// join; another HTTP join renews it.
    pub fn attach(
        &mut self,
        stream: Uuid,
        user: &str,
        att: Attachment,
        now: Instant,
        http_ttl: Duration,
    ) -> Option<Attached> {
        let v = self.streams.get_mut(&stream)?.get_mut(user)?;
        let http_only = v.attachments == [Attachment::Http];
        let mut upgraded = None;
        match att {
            Attachment::Http => {
                if v.attachments.contains(&Attachment::Http) {
                    v.http_until = Some(now + http_ttl);
                } else if v.attachments.is_empty() {
                    v.attachments.push(Attachment::Http);
                    v.http_until = Some(now + http_ttl);
                }
                // A viewer with media keeps its media attachments; the HTTP join adds nothing.
            }
            media => {
                if v.attachments.contains(&Attachment::Http) {
                    v.attachments.retain(|a| *a != Attachment::Http);
                    v.http_until = None;
                    if http_only {
                        upgraded = Some(media.client());
                    }
                }
                if !v.attachments.contains(&media) {
                    v.attachments.push(media);
                }
            }
        }
        Some(Attached {
            row: v.row,
            upgraded,
        })
    }

    /// Removes an attachment; returns the viewer's row when that was its last one (the viewer
    /// left).
    pub fn detach(&mut self, stream: Uuid, user: &str, att: &Attachment) -> Option<i64> {
        let viewers = self.streams.get_mut(&stream)?;
        let v = viewers.get_mut(user)?;
        let before = v.attachments.len();
        v.attachments.retain(|a| a != att);
        if v.attachments.len() == before || !v.attachments.is_empty() {
            return None;
        }
        let row = v.row;
        viewers.remove(user);
        if viewers.is_empty() {
            self.streams.remove(&stream);
        }
        Some(row)
    }

    /// Removes a user from a stream whatever holds it; returns its row and attachments.
    pub fn remove_user(&mut self, stream: Uuid, user: &str) -> Option<(i64, Vec<Attachment>)> {
        let viewers = self.streams.get_mut(&stream)?;
        let v = viewers.remove(user)?;
        if viewers.is_empty() {
            self.streams.remove(&stream);
        }
        Some((v.row, v.attachments))
    }

    /// Removes every viewer of a stream: (user, row, attachments).
    pub fn remove_stream(&mut self, stream: Uuid) -> Vec<(String, i64, Vec<Attachment>)> {
        self.streams
            .remove(&stream)
            .map(|m| {
                m.into_iter()
                    .map(|(u, v)| (u, v.row, v.attachments))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// HTTP-only joins whose TTL ran out by `now`: (stream, user).
    pub fn expired_http(&self, now: Instant) -> Vec<(Uuid, String)> {
        self.streams
            .iter()
            .flat_map(|(s, m)| {
                m.iter()
                    .filter(|(_, v)| {
                        v.attachments == [Attachment::Http]
                            && v.http_until.is_some_and(|t| t <= now)
                    })
                    .map(move |(u, _)| (*s, u.clone()))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(60);

    #[test]
    fn a_user_is_one_viewer_however_many_attachments() {
        let s = Uuid::new_v4();
        let now = Instant::now();
        let mut p = Presence::default();
        assert_eq!(p.plan_join(s, "alice", 10), JoinPlan::New);
        p.insert(s, "alice", 7, Attachment::Socket("a1".into()), now, TTL);
        assert_eq!(p.plan_join(s, "alice", 10), JoinPlan::Existing);
        let att = p.attach(s, "alice", Attachment::Whep(9), now, TTL);
        assert_eq!(
            att,
            Some(Attached {
                row: 7,
                upgraded: None
            })
        );
        assert_eq!(p.count(s), 1);
        assert_eq!(p.detach(s, "alice", &Attachment::Socket("a1".into())), None);
        assert_eq!(p.count(s), 1);
        assert_eq!(p.detach(s, "alice", &Attachment::Whep(9)), Some(7));
        assert_eq!(p.count(s), 0);
        // Detaching what is not attached changes nothing.
        assert_eq!(p.detach(s, "alice", &Attachment::Whep(9)), None);
    }

    #[test]
    fn the_limit_counts_users_and_lets_existing_viewers_reattach() {
        let s = Uuid::new_v4();
        let now = Instant::now();
        let mut p = Presence::default();
        p.insert(s, "a", 1, Attachment::Whep(1), now, TTL);
        p.insert(s, "b", 2, Attachment::Whep(2), now, TTL);
        assert_eq!(p.plan_join(s, "c", 2), JoinPlan::Full);
        assert_eq!(p.plan_join(s, "a", 2), JoinPlan::Existing);
        assert_eq!(p.plan_join(Uuid::new_v4(), "c", 2), JoinPlan::New);
    }

    #[test]
    fn media_after_an_http_join_upgrades_the_row_and_stops_its_expiry() {
        let s = Uuid::new_v4();
        let t0 = Instant::now();
        let mut p = Presence::default();
        p.insert(s, "bob", 3, Attachment::Http, t0, TTL);
        assert!(p.expired_http(t0 + TTL - Duration::from_secs(1)).is_empty());
        assert_eq!(p.expired_http(t0 + TTL), vec![(s, "bob".to_string())]);
        let att = p.attach(s, "bob", Attachment::Socket("x".into()), t0, TTL);
        assert_eq!(
            att,
            Some(Attached {
                row: 3,
                upgraded: Some(ViewerClient::Socketio)
            })
        );
        assert!(p.expired_http(t0 + TTL * 10).is_empty());
        // A later HTTP join of a viewer with media adds nothing to leave.
        p.attach(s, "bob", Attachment::Http, t0, TTL);
        assert_eq!(p.detach(s, "bob", &Attachment::Socket("x".into())), Some(3));
    }

    #[test]
    fn removing_a_stream_returns_every_viewer() {
        let s = Uuid::new_v4();
        let now = Instant::now();
        let mut p = Presence::default();
        p.insert(s, "a", 1, Attachment::Whep(1), now, TTL);
        p.insert(s, "b", 2, Attachment::Http, now, TTL);
        let mut gone = p.remove_stream(s);
        gone.sort();
        assert_eq!(
            gone,
            vec![
                ("a".to_string(), 1, vec![Attachment::Whep(1)]),
                ("b".to_string(), 2, vec![Attachment::Http])
            ]
        );
        assert_eq!(p.count(s), 0);
        assert!(p.remove_user(s, "a").is_none());
    }
}
