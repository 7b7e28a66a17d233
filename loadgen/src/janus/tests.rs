//! The Janus target against a small fake Janus HTTP transport on loopback that follows the real
//! one's shape: synchronous `success` for session, handle and room requests; `ack` then an event
//! on the long poll for joins and `start`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use super::*;

#[derive(Default)]
struct Fake {
    queue: Mutex<Vec<Value>>,
    ready: Condvar,
    /// Every request body received, in order.
    log: Mutex<Vec<(String, Value)>>,
    /// Subscriber joins refused with 428 before the feed "appears".
    refuse_feed: Mutex<u32>,
}

fn read_request(s: &mut TcpStream) -> Option<(String, String, Vec<u8>)> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = s.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        raw.extend_from_slice(&buf[..n]);
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..end]).to_string();
            let len = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            while raw.len() < end + 4 + len {
                let n = s.read(&mut buf).ok()?;
                if n == 0 {
                    return None;
                }
                raw.extend_from_slice(&buf[..n]);
            }
            let mut first = head.lines().next()?.split(' ');
            let method = first.next()?.to_string();
            let path = first.next()?.to_string();
            return Some((method, path, raw[end + 4..end + 4 + len].to_vec()));
        }
    }
}

fn respond(s: &mut TcpStream, body: &Value) {
    let b = body.to_string();
    let _ = write!(
        s,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{b}",
        b.len()
    );
}

fn serve(fake: &Fake, mut s: TcpStream) {
    let Some((method, path, body)) = read_request(&mut s) else {
        return;
    };
    if method == "GET" {
        let mut q = fake.queue.lock().unwrap();
        if q.is_empty() {
            q = fake
                .ready
                .wait_timeout(q, Duration::from_millis(300))
                .unwrap()
                .0;
        }
        let evs: Vec<Value> = q.drain(..).collect();
        drop(q);
        let reply = if evs.is_empty() {
            json!({"janus": "keepalive"})
        } else {
            Value::Array(evs)
        };
        return respond(&mut s, &reply);
    }
    let req: Value = serde_json::from_slice(&body).unwrap();
    fake.log.lock().unwrap().push((path.clone(), req.clone()));
    let tx = req["transaction"].clone();
    let push = |ev: Value| {
        fake.queue.lock().unwrap().push(ev);
        fake.ready.notify_all();
    };
    let reply = match req["janus"].as_str().unwrap() {
        "create" => json!({"janus": "success", "transaction": tx, "data": {"id": 100}}),
        "attach" => {
            let n = fake.log.lock().unwrap().len() as u64;
            json!({"janus": "success", "transaction": tx, "data": {"id": 1000 + n}})
        }
        "message" => match req["body"]["request"].as_str().unwrap() {
            "create" => json!({"janus": "success", "transaction": tx, "plugindata":
                {"plugin": "janus.plugin.videoroom",
                 "data": {"videoroom": "created", "room": req["body"]["room"]}}}),
            "joinandconfigure" => {
                assert_eq!(req["jsep"]["type"], "offer");
                push(json!({"janus": "event", "transaction": tx, "sender": 1,
                    "plugindata": {"data": {"videoroom": "joined", "id": req["body"]["id"]}},
                    "jsep": {"type": "answer", "sdp": "ANSWER"}}));
                push(json!({"janus": "webrtcup", "sender": 1}));
                json!({"janus": "ack", "transaction": tx})
            }
            "join" => {
                let mut refuse = fake.refuse_feed.lock().unwrap();
                if *refuse > 0 {
                    *refuse -= 1;
                    push(
                        json!({"janus": "event", "transaction": tx, "plugindata": {"data":
                        {"videoroom": "event", "error_code": 428, "error": "No such feed"}}}),
                    );
                } else {
                    push(json!({"janus": "event", "transaction": tx,
                        "plugindata": {"data": {"videoroom": "attached"}},
                        "jsep": {"type": "offer", "sdp": "OFFER"}}));
                }
                json!({"janus": "ack", "transaction": tx})
            }
            "start" => {
                assert_eq!(req["jsep"]["type"], "answer");
                push(json!({"janus": "event", "transaction": tx,
                    "plugindata": {"data": {"videoroom": "event", "started": "ok"}}}));
                json!({"janus": "ack", "transaction": tx})
            }
            other => panic!("unexpected request {other}"),
        },
        "trickle" | "keepalive" => json!({"janus": "ack", "transaction": tx}),
        "detach" | "destroy" => json!({"janus": "success", "transaction": tx}),
        other => panic!("unexpected {other}"),
    };
    respond(&mut s, &reply);
}

fn fake_janus() -> (Arc<Fake>, String) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let fake = Arc::new(Fake::default());
    let f = Arc::clone(&fake);
    std::thread::spawn(move || {
        for s in listener.incoming().flatten() {
            let f = Arc::clone(&f);
            std::thread::spawn(move || serve(&f, s));
        }
    });
    (fake, format!("janus+http://{addr}/janus"))
}

fn req(role: Role, client: usize, publisher: usize) -> JoinRequest {
    JoinRequest {
        role,
        client,
        room: 0,
        publisher,
        stream: format!("s{publisher}"),
    }
}

#[test]
fn publisher_and_subscriber_complete_the_videoroom_flow() {
    let (fake, url) = fake_janus();
    let t = JanusTarget::new(&url, 10, Duration::from_secs(5)).unwrap();
    assert_eq!(t.offer_side(Role::Publisher), OfferSide::Client);
    assert_eq!(t.offer_side(Role::Subscriber), OfferSide::Server);

    let a = t
        .send_offer(&req(Role::Publisher, 0, 0), "OFFER-SDP")
        .unwrap();
    assert_eq!(a.sdp, "ANSWER");
    let p = *a.session.state::<JanusPeer>().unwrap();
    assert_eq!((p.session, p.room, p.feed), (100, ROOM_BASE, 1));

    let o = t.fetch_offer(&req(Role::Subscriber, 1, 0)).unwrap();
    assert_eq!(o.sdp, "OFFER");
    let s = t
        .send_answer(&req(Role::Subscriber, 1, 0), o.pending, "ANSWER-SDP")
        .unwrap();
    t.keepalive(&s).unwrap();
    t.leave(s).unwrap();
    t.leave(a.session).unwrap();

    let log = fake.log.lock().unwrap();
    let kinds: Vec<String> = log
        .iter()
        .map(|(_, v)| {
            let k = v["janus"].as_str().unwrap();
            match v["body"]["request"].as_str() {
                Some(r) => format!("{k}:{r}"),
                None => k.to_string(),
            }
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "create",
            "attach",
            "message:create",
            "attach",
            "message:joinandconfigure",
            "trickle",
            "attach",
            "message:join",
            "message:start",
            "trickle",
            "detach",
            "detach"
        ]
    );
    // Session requests go to /janus/{session}, handle requests to /janus/{session}/{handle}.
    assert_eq!(log[1].0, "/janus/100");
    assert!(log[4].0.starts_with("/janus/100/"));
    assert_eq!(log[4].1["jsep"]["sdp"], "OFFER-SDP");
    assert_eq!(log[8].1["jsep"]["sdp"], "ANSWER-SDP");
    assert_eq!(log[7].1["body"]["streams"][0]["feed"], 1);
}

#[test]
fn subscriber_waits_while_the_feed_is_missing() {
    let (fake, url) = fake_janus();
    *fake.refuse_feed.lock().unwrap() = 2;
    let t = JanusTarget::new(&url, 10, Duration::from_secs(5)).unwrap();
    let o = t.fetch_offer(&req(Role::Subscriber, 3, 0)).unwrap();
    assert_eq!(o.sdp, "OFFER");
    let joins = fake
        .log
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, v)| v["body"]["request"] == "join")
        .count();
    assert_eq!(joins, 3);
}

#[test]
fn urls_with_and_without_the_scheme_prefix_are_accepted() {
    let t = JanusTarget::new(
        "janus+http://10.77.0.1:8088/janus/",
        1,
        Duration::from_secs(1),
    )
    .unwrap();
    assert_eq!(t.base().to_url_string(), "http://10.77.0.1:8088/janus");
    assert!(t.describe().starts_with("janus http://10.77.0.1:8088"));
    assert!(JanusTarget::new("http://h:1/janus", 1, Duration::from_secs(1)).is_ok());
    assert!(JanusTarget::new("janus+ws://h:1", 1, Duration::from_secs(1)).is_err());
}

#[test]
fn an_unreachable_janus_is_a_transport_error() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let t = JanusTarget::new(
        &format!("janus+http://127.0.0.1:{port}/janus"),
        1,
        Duration::from_secs(1),
    )
    .unwrap();
    let e = t.send_offer(&req(Role::Publisher, 0, 0), "x").unwrap_err();
    assert!(matches!(e, TargetError::Transport { .. }), "{e}");
}
