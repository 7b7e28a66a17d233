//! Two signaling processes sharing one Redis: a stream started on one is visible on the other,
//! the limits hold across both, a watch on the wrong node names the owner, a stop from either
//! node ends it; Redis down gives 503 problems with Retry-After, and everything works again
//! once it is back.

mod stream_support;

use std::time::{Duration, Instant};

use ringcast_tests::Server;
use serde_json::json;
use stream_support::*;

#[test]
fn two_processes_share_streams_through_redis() {
    let redis = Backing::redis();
    let nats = Backing::nats();
    let env = [
        ("REDIS_URL", redis.redis_url()),
        ("NATS_URL", nats.nats_url()),
        ("MAX_STREAMS_PER_CHANNEL", "2".into()),
    ];
    let a = Server::start(stream_server(&env)).expect("server A starts");
    let b = Server::start(stream_server(&env)).expect("server B starts");
    let alice = token("alice");
    let bob = token("bob");
    let channel = uuid();

    let s = start_stream(&a, &alice, &channel);
    let id = s["stream_id"].as_str().expect("id").to_string();
    let on_b = get(&b, &format!("/stream/{id}"), Some(&bob));
    assert_eq!(
        on_b.status,
        200,
        "B does not see A's stream: {}",
        on_b.describe()
    );
    let on_b = on_b.json().expect("JSON");
    assert_eq!(on_b["node_url"], a.base_url().as_str());

    // Watching on B: the media is on A, B says so.
    let r = post_json(&b, "/stream/watch", Some(&bob), &json!({ "stream_id": id }));
    let p = assert_problem(&r, 409);
    assert_eq!(p["node_url"], a.base_url().as_str(), "{p}");
    // On A it works.
    let r = post_json(&a, "/stream/watch", Some(&bob), &json!({ "stream_id": id }));
    assert_eq!(r.status, 200, "{}", r.describe());

    // The channel limit counts streams of both processes.
    start_stream(&b, &bob, &channel);
    let p = assert_problem(
        &post_json(
            &a,
            "/stream/start",
            Some(&bob),
            &json!({ "channel_id": channel }),
        ),
        409,
    );
    assert_eq!(p["limit"], 2);

    // Quality changed on B is what A reads.
    let r = patch_json(
        &b,
        &format!("/stream/{id}/quality"),
        Some(&alice),
        &json!({ "bitrate": 800 }),
    );
    assert_eq!(r.status, 200, "{}", r.describe());
    let q = get(&a, &format!("/stream/{id}"), Some(&alice))
        .json()
        .expect("JSON");
    assert_eq!(q["quality"]["max_bitrate_kbps"], 800, "{q}");

    // Stopped from B: gone on both.
    let r = post_json(
        &b,
        "/stream/stop",
        Some(&alice),
        &json!({ "stream_id": id }),
    );
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_problem(&get(&a, &format!("/stream/{id}"), Some(&alice)), 404);

    // A node that shuts down stops its streams: B no longer sees them.
    let mut events = Subscriber::connect(&nats.nats_url(), &["stream.stopped"]);
    let s = start_stream(&a, &alice, &uuid());
    let id = s["stream_id"].as_str().expect("id").to_string();
    assert_eq!(get(&b, &format!("/stream/{id}"), Some(&bob)).status, 200);
    let mut a = a;
    let (status, took) = a
        .terminate(Duration::from_secs(10))
        .expect("A stops on SIGTERM");
    assert!(status.success(), "A exited with {status} after {took:?}");
    let e = events.wait_for("stream.stopped", Duration::from_secs(5), |v| {
        v["stream_id"] == id.as_str()
    });
    assert_eq!(e["reason"], "shutdown");
    assert_problem(&get(&b, &format!("/stream/{id}"), Some(&bob)), 404);
}

#[test]
fn redis_outage_is_a_503_problem_and_recovers() {
    let mut redis = Backing::redis();
    let server =
        Server::start(stream_server(&[("REDIS_URL", redis.redis_url())])).expect("server starts");
    let alice = token("alice");
    let s = start_stream(&server, &alice, &uuid());
    let id = s["stream_id"].as_str().expect("id").to_string();

    redis.stop();
    let t = Instant::now();
    let r = post_json(
        &server,
        "/stream/start",
        Some(&alice),
        &json!({ "channel_id": uuid() }),
    );
    let p = assert_problem(&r, 503);
    assert!(r.header("retry-after").is_some(), "{}", r.describe());
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "503 took {:?}",
        t.elapsed()
    );
    eprintln!("Redis down: {} in {:?}", p["detail"], t.elapsed());
    assert_problem(&get(&server, &format!("/stream/{id}"), Some(&alice)), 503);
    assert_problem(
        &post_json(
            &server,
            "/stream/watch",
            Some(&alice),
            &json!({ "stream_id": id }),
        ),
        503,
    );
    assert_eq!(get(&server, "/stream/status", None).status, 503);
    // The rest of the server is unaffected.
    assert!(server.healthy());

    // Redis is back (empty: it kept nothing); the service works again without a restart.
    redis.start();
    let end = Instant::now() + Duration::from_secs(15);
    let s = loop {
        let r = post_json(
            &server,
            "/stream/start",
            Some(&alice),
            &json!({ "channel_id": uuid() }),
        );
        if r.status == 200 {
            break r.json().expect("JSON");
        }
        assert!(
            Instant::now() < end,
            "still failing after Redis came back: {}",
            r.describe()
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    let id = s["stream_id"].as_str().expect("id");
    assert_eq!(
        get(&server, &format!("/stream/{id}"), Some(&alice)).status,
        200
    );
}

/// A node killed without shutting down: once its heartbeat expires, the other node removes its
/// streams when they get in the way (watch, the channel limit) and announces `node_lost`.
#[test]
fn streams_of_a_dead_node_are_removed_by_the_survivor() {
    let redis = Backing::redis();
    let nats = Backing::nats();
    let env = [
        ("REDIS_URL", redis.redis_url()),
        ("NATS_URL", nats.nats_url()),
        ("MAX_STREAMS_PER_CHANNEL", "2".into()),
        ("NODE_TTL", "1".into()),
    ];
    let mut a = Server::start(stream_server(&env)).expect("server A starts");
    let b = Server::start(stream_server(&env)).expect("server B starts");
    let mut events = Subscriber::connect(&nats.nats_url(), &["stream.stopped"]);
    let alice = token("alice");
    let channel = uuid();
    let s1 = start_stream(&a, &alice, &channel);
    let s2 = start_stream(&a, &alice, &channel);
    let id1 = s1["stream_id"].as_str().expect("id").to_string();
    let id2 = s2["stream_id"].as_str().expect("id").to_string();
    // While A lives, B sends watchers there.
    let r = post_json(
        &b,
        "/stream/watch",
        Some(&alice),
        &json!({ "stream_id": id1 }),
    );
    assert_problem(&r, 409);

    a.signal(libc::SIGKILL).expect("kill A");
    let _ = a.terminate(Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(1500));

    // Watching A's stream on B: A is gone, so is the stream.
    let r = post_json(
        &b,
        "/stream/watch",
        Some(&alice),
        &json!({ "stream_id": id1 }),
    );
    let p = assert_problem(&r, 404);
    assert!(p["detail"].as_str().unwrap_or("").contains("gone"), "{p}");
    let e = events.wait_for("stream.stopped", Duration::from_secs(5), |v| {
        v["stream_id"] == id1.as_str()
    });
    assert_eq!(e["reason"], "node_lost");
    // The channel's other orphan no longer blocks new streams there.
    assert_eq!(get(&b, &format!("/stream/{id2}"), Some(&alice)).status, 200);
    start_stream(&b, &alice, &channel); // one live + one orphan: the channel is full
    start_stream(&b, &alice, &channel); // refused at first, then the orphan is removed
    let e = events.wait_for("stream.stopped", Duration::from_secs(5), |v| {
        v["stream_id"] == id2.as_str()
    });
    assert_eq!(e["reason"], "node_lost");
    assert_problem(&get(&b, &format!("/stream/{id2}"), Some(&alice)), 404);
}
