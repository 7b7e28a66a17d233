//! The Janus session's long poll (`GET /janus/{session}?maxev=N`): one thread collects the
//! asynchronous events and hands each to the request waiting on its transaction. Events nobody
//! waits for (`webrtcup`, `media`, `hangup`) are read and dropped, so none pile up in Janus.
//! The poll also keeps the session alive on the server side.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::api;
use crate::http::{self, Url};

/// Janus answers a long poll after at most 30 s (with a keepalive when nothing happened).
const POLL_TIMEOUT: Duration = Duration::from_secs(45);
/// Events fetched per poll.
const MAX_EVENTS: usize = 32;

/// Events by transaction, for the requests that wait on them.
#[derive(Debug, Default)]
pub struct Events {
    slots: Mutex<HashMap<String, Option<Value>>>,
    ready: Condvar,
    stopped: AtomicBool,
    /// Events read that no request waited for.
    unclaimed: AtomicU64,
}

/// A registered wait for one transaction's event.
#[derive(Debug)]
pub struct Waiter<'a> {
    events: &'a Events,
    tx: String,
}

impl Events {
    /// Registers interest in `tx` before the request is sent (the event may beat the reply).
    pub fn register(&self, tx: &str) -> Waiter<'_> {
        self.lock().insert(tx.to_string(), None);
        Waiter {
            events: self,
            tx: tx.to_string(),
        }
    }

    /// Hands an event to its waiter; false when nobody waits for it.
    pub fn deliver(&self, event: Value) -> bool {
        let Some(tx) = api::transaction(&event).map(str::to_string) else {
            self.unclaimed.fetch_add(1, Ordering::Relaxed);
            return false;
        };
        let mut slots = self.lock();
        match slots.get_mut(&tx) {
            Some(slot) => {
                *slot = Some(event);
                drop(slots);
                self.ready.notify_all();
                true
            }
            None => {
                self.unclaimed.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// Events that no request waited for.
    pub fn unclaimed(&self) -> u64 {
        self.unclaimed.load(Ordering::Relaxed)
    }

    /// Ends the poll thread after its current poll.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Relaxed);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Option<Value>>> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Waiter<'_> {
    /// Waits up to `timeout` for the event.
    pub fn wait(self, timeout: Duration) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        let mut slots = self.events.lock();
        loop {
            if let Some(Some(_)) = slots.get(&self.tx) {
                return slots.remove(&self.tx).flatten();
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            slots = self
                .events
                .ready
                .wait_timeout(slots, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        self.events.lock().remove(&self.tx);
    }
}

/// Splits a long-poll reply (one event object, or an array of them with `maxev`).
pub fn split_events(body: Value) -> Vec<Value> {
    match body {
        Value::Array(v) => v,
        Value::Null => Vec::new(),
        one => vec![one],
    }
}

/// Starts the poll thread for the session at `session_url`; it ends when `events` is dropped
/// or stopped, or when the session is gone.
pub fn spawn(session_url: Url, events: Weak<Events>, request_timeout: Duration) {
    let url = Url {
        path: format!("{}?maxev={MAX_EVENTS}", session_url.path),
        ..session_url
    };
    let spawned = std::thread::Builder::new()
        .name("janus-poll".into())
        .spawn(move || poll_loop(&url, &events, request_timeout));
    if let Err(e) = spawned {
        eprintln!("janus: cannot start the event poll thread: {e}");
    }
}

fn poll_loop(url: &Url, events: &Weak<Events>, request_timeout: Duration) {
    let mut failures = 0u32;
    loop {
        match events.upgrade() {
            Some(e) if !e.stopped.load(Ordering::Relaxed) => {}
            _ => return,
        }
        let r = http::send(&http::Request {
            method: "GET",
            url,
            headers: &[],
            body: &[],
            timeout: POLL_TIMEOUT.max(request_timeout),
        });
        let Some(events) = events.upgrade() else {
            return;
        };
        match r {
            Ok(r) if r.status == 200 => {
                failures = 0;
                let Ok(body) = serde_json::from_slice::<Value>(&r.body) else {
                    continue;
                };
                for ev in split_events(body) {
                    if let api::Reply::Error { code, .. } = api::classify(&ev)
                        && code == 458
                    {
                        // No such session: nothing left to poll.
                        return;
                    }
                    events.deliver(ev);
                }
            }
            _ => {
                failures += 1;
                if failures > 5 {
                    eprintln!("janus: event poll failing repeatedly; giving up");
                    return;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests an unwrap is an assertion
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::Arc;

    #[test]
    fn event_reaches_the_waiter_of_its_transaction() {
        let events = Arc::new(Events::default());
        let w = events.register("t1");
        let e2 = Arc::clone(&events);
        let h = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            assert!(!e2.deliver(json!({"janus": "event", "transaction": "other"})));
            assert!(e2.deliver(json!({"janus": "event", "transaction": "t1", "n": 1})));
        });
        let got = w.wait(Duration::from_secs(5)).unwrap();
        assert_eq!(got["n"], 1);
        h.join().unwrap();
        assert_eq!(events.unclaimed(), 1);
        assert!(events.lock().is_empty(), "the slot is freed");
    }

    #[test]
    fn event_before_the_wait_is_kept() {
        let events = Events::default();
        let w = events.register("t");
        assert!(events.deliver(json!({"transaction": "t"})));
        assert!(w.wait(Duration::from_millis(1)).is_some());
    }

    #[test]
    fn wait_times_out_and_frees_its_slot() {
        let events = Events::default();
        let w = events.register("t");
        assert!(w.wait(Duration::from_millis(10)).is_none());
        assert!(events.lock().is_empty());
        assert!(!events.deliver(json!({"transaction": "t"})));
    }

    #[test]
    fn long_poll_replies_split_into_events() {
        assert_eq!(split_events(json!([{"a": 1}, {"b": 2}])).len(), 2);
        assert_eq!(split_events(json!({"janus": "keepalive"})).len(), 1);
        assert!(split_events(Value::Null).is_empty());
    }
}
