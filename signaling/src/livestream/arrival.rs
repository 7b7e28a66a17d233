//! Per-socket arrival order for Socket.IO events. socketioxide runs each event's handler in its
//! own task, so two events of one socket may be handled in either order; a chat sender's
//! messages must keep the order it sent them in. Extractors still run one by one in arrival
//! order (before the handler task is spawned): [`Arrival`] takes a ticket there, and
//! [`wait_turn`] lets the handler proceed only after every earlier ticket of its socket is done.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, LazyLock, Mutex};

use socketioxide::adapter::Adapter;
use socketioxide::handler::{FromMessageParts, Value};
use socketioxide::socket::Socket;
use tokio::sync::watch;

/// Per socket: the next ticket to hand out, and the ticket whose turn it is.
#[derive(Debug)]
struct Line {
    issued: u64,
    serving: watch::Sender<u64>,
}

/// Every socket's line. Socket ids are random and unique to the process, so one map serves
/// every [`socketioxide::SocketIo`] instance; [`forget`] removes a socket's line.
static LINES: LazyLock<Mutex<HashMap<String, Line>>> = LazyLock::new(|| Mutex::new(HashMap::new()));

/// A ticket in a socket's arrival order (an extractor: put it first among the handler's
/// arguments).
#[derive(Debug)]
pub struct Arrival {
    sid: String,
    ticket: u64,
}

impl<A: Adapter> FromMessageParts<A> for Arrival {
    type Error = Infallible;

    fn from_message_parts(
        s: &Arc<Socket<A>>,
        _: &mut Value,
        _: &Option<i64>,
    ) -> Result<Self, Infallible> {
        let sid = s.id.to_string();
        let ticket = match LINES.lock() {
            Ok(mut m) => {
                let line = m.entry(sid.clone()).or_insert_with(|| Line {
                    issued: 0,
                    serving: watch::Sender::new(0),
                });
                let t = line.issued;
                line.issued += 1;
                t
            }
            // A poisoned map orders nothing; the ticket is then never waited for.
            Err(_) => u64::MAX,
        };
        Ok(Arrival { sid, ticket })
    }
}

/// Held while it is this ticket's turn; the next ticket of the socket runs once it drops
/// (also when the handler fails or panics).
#[derive(Debug)]
pub struct Turn {
    serving: Option<watch::Sender<u64>>,
}

impl Drop for Turn {
    fn drop(&mut self) {
        if let Some(s) = &self.serving {
            s.send_modify(|v| *v += 1);
        }
    }
}

/// Waits until every earlier event of the ticket's socket has finished its turn.
pub async fn wait_turn(a: &Arrival) -> Turn {
    let serving = LINES
        .lock()
        .ok()
        .and_then(|m| m.get(&a.sid).map(|l| l.serving.clone()));
    let Some(serving) = serving.filter(|_| a.ticket != u64::MAX) else {
        return Turn { serving: None };
    };
    let mut rx = serving.subscribe();
    // The sender lives in the map (or in `serving` here), so the channel cannot close.
    let _ = rx.wait_for(|v| *v >= a.ticket).await;
    Turn {
        serving: Some(serving),
    }
}

/// Drops a disconnected socket's line.
pub fn forget(sid: &str) {
    if let Ok(mut m) = LINES.lock() {
        m.remove(sid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ticket(sid: &str) -> Arrival {
        let mut m = LINES.lock().expect("not poisoned");
        let line = m.entry(sid.to_string()).or_insert_with(|| Line {
            issued: 0,
            serving: watch::Sender::new(0),
        });
        let t = line.issued;
        line.issued += 1;
        Arrival {
            sid: sid.to_string(),
            ticket: t,
        }
    }

    #[tokio::test]
    async fn later_tickets_wait_for_earlier_ones_even_when_polled_first() {
        let sid = format!("test-{}", uuid::Uuid::new_v4());
        let tickets: Vec<Arrival> = (0..5).map(|_| ticket(&sid)).collect();
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        // Spawned last-first: each must still run in ticket order.
        for a in tickets.into_iter().rev() {
            let order = Arc::clone(&order);
            tasks.push(tokio::spawn(async move {
                let _turn = wait_turn(&a).await;
                tokio::time::sleep(Duration::from_millis(5)).await;
                order.lock().expect("not poisoned").push(a.ticket);
            }));
        }
        for t in tasks {
            t.await.expect("task");
        }
        assert_eq!(*order.lock().expect("not poisoned"), vec![0, 1, 2, 3, 4]);
        forget(&sid);
    }

    #[tokio::test]
    async fn a_failed_turn_still_lets_the_next_one_run() {
        let sid = format!("test-{}", uuid::Uuid::new_v4());
        let first = ticket(&sid);
        let second = ticket(&sid);
        let t = tokio::spawn(async move {
            let _turn = wait_turn(&first).await;
            panic!("handler failed");
        });
        assert!(t.await.is_err());
        let turn = tokio::time::timeout(Duration::from_secs(2), wait_turn(&second)).await;
        assert!(turn.is_ok(), "the second ticket never got its turn");
        forget(&sid);
    }
}
