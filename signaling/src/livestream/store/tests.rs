//! The store's behaviour, the same scenarios on SQLite (a file in a temporary directory) and on
//! PostgreSQL (a server started for the test from Debian's binaries).

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

use uuid::Uuid;

use super::*;
use ringcast_tests::PgServer;

/// A temporary directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let p = std::env::temp_dir().join(format!("ringcast-ls-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&p).expect("temp dir");
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn stream(owner: &str, key: &str, created_at: i64) -> Livestream {
    Livestream {
        id: Uuid::new_v4(),
        owner_id: owner.into(),
        title: format!("{owner}'s stream"),
        description: "a description".into(),
        status: Status::Created,
        stream_key_hash: hash_key(key),
        recording_enabled: true,
        recording_url: None,
        peak_viewers: 0,
        created_at,
        started_at: None,
        ended_at: None,
        key_rotated_at: created_at,
        max_viewers: None,
    }
}

type Scenario = for<'a> fn(&'a dyn LivestreamStore) -> Pin<Box<dyn Future<Output = ()> + 'a>>;

async fn create_and_read_back(s: &dyn LivestreamStore) {
    let ls = stream("alice", "key-a", 1_000);
    s.create(ls.clone()).await.expect("create");
    assert_eq!(s.get(ls.id).await.expect("get"), Some(ls.clone()));
    assert_eq!(
        s.by_key_hash(hash_key("key-a")).await.expect("by key"),
        Some(ls.clone())
    );
    assert_eq!(
        s.by_key_hash(hash_key("key-b")).await.expect("by key"),
        None
    );
    assert_eq!(s.get(Uuid::new_v4()).await.expect("get"), None);
    // A second livestream with the same key hash is refused.
    let mut dup = stream("bob", "key-a", 2_000);
    dup.id = Uuid::new_v4();
    assert!(matches!(
        s.create(dup).await,
        Err(LivestreamStoreError::Database(_))
    ));
}

async fn a_streams_own_viewer_limit_round_trips_and_absent_stays_null(s: &dyn LivestreamStore) {
    let limited = Livestream {
        max_viewers: Some(2),
        ..stream("alice", "limited", 1_000)
    };
    let open = stream("bob", "open", 2_000);
    s.create(limited.clone()).await.expect("create");
    s.create(open.clone()).await.expect("create");
    let back = s.get(limited.id).await.expect("get").expect("exists");
    assert_eq!(back.max_viewers, Some(2));
    assert_eq!(back, limited);
    assert_eq!(
        s.get(open.id).await.expect("get").map(|l| l.max_viewers),
        Some(None)
    );
    assert_eq!(
        s.by_key_hash(hash_key("limited"))
            .await
            .expect("by key")
            .and_then(|l| l.max_viewers),
        Some(2)
    );
    // The limit survives the lifecycle's updates and shows in the list.
    s.start(limited.id, 3_000).await.expect("start");
    s.start(open.id, 3_001).await.expect("start");
    s.raise_peak(limited.id, 2).await.expect("peak");
    let live = s.list(Status::Live, 10, 0).await.expect("list");
    let limits: Vec<_> = live.iter().map(|l| (l.id, l.max_viewers)).collect();
    assert_eq!(limits, vec![(open.id, None), (limited.id, Some(2))]);
    s.end(limited.id, 4_000, None, hash_key("limited-2"))
        .await
        .expect("end");
    assert_eq!(
        s.get(limited.id)
            .await
            .expect("get")
            .and_then(|l| l.max_viewers),
        Some(2)
    );
    // The schema refuses a limit that is not positive.
    let zero = Livestream {
        max_viewers: Some(0),
        ..stream("carol", "zero", 5_000)
    };
    assert!(
        matches!(s.create(zero).await, Err(LivestreamStoreError::Database(_))),
        "a zero limit was stored"
    );
}

async fn start_end_rotates_the_key_and_restarts(s: &dyn LivestreamStore) {
    let ls = stream("alice", "old-key", 1_000);
    s.create(ls.clone()).await.expect("create");
    assert!(s.start(ls.id, 2_000).await.expect("start"));
    assert!(
        !s.start(ls.id, 2_500)
            .await
            .expect("second start changes nothing")
    );
    let live = s.get(ls.id).await.expect("get").expect("exists");
    assert_eq!(live.status, Status::Live);
    assert_eq!(live.started_at, Some(2_000));

    assert!(
        s.end(
            ls.id,
            3_000,
            Some("https://r.example/1.webm".into()),
            hash_key("new-key")
        )
        .await
        .expect("end")
    );
    assert!(
        !s.end(ls.id, 3_500, None, hash_key("newer-key"))
            .await
            .expect("second end changes nothing")
    );
    let ended = s.get(ls.id).await.expect("get").expect("exists");
    assert_eq!(ended.status, Status::Ended);
    assert_eq!(ended.ended_at, Some(3_000));
    assert_eq!(ended.key_rotated_at, 3_000);
    assert_eq!(
        ended.recording_url.as_deref(),
        Some("https://r.example/1.webm")
    );
    assert_eq!(s.by_key_hash(hash_key("old-key")).await.expect("q"), None);
    assert_eq!(
        s.by_key_hash(hash_key("new-key"))
            .await
            .expect("q")
            .map(|l| l.id),
        Some(ls.id)
    );

    // Live again: the end time is cleared, the recording URL kept.
    assert!(s.start(ls.id, 4_000).await.expect("restart"));
    let again = s.get(ls.id).await.expect("get").expect("exists");
    assert_eq!(
        (again.status, again.started_at, again.ended_at),
        (Status::Live, Some(4_000), None)
    );
    assert!(
        s.end(ls.id, 5_000, None, hash_key("k3"))
            .await
            .expect("end")
    );
    assert_eq!(
        s.get(ls.id)
            .await
            .expect("get")
            .and_then(|l| l.recording_url),
        Some("https://r.example/1.webm".into())
    );
    assert!(
        s.rotate_key(ls.id, hash_key("k4"), 6_000)
            .await
            .expect("rotate")
    );
    assert!(
        !s.rotate_key(Uuid::new_v4(), hash_key("k5"), 6_000)
            .await
            .expect("rotate unknown")
    );
}

async fn active_list_is_live_only_latest_first_and_paged(s: &dyn LivestreamStore) {
    let mut ids = Vec::new();
    for i in 0..5 {
        let ls = stream(&format!("u{i}"), &format!("key{i}"), 1_000 + i);
        s.create(ls.clone()).await.expect("create");
        if i != 2 {
            s.start(ls.id, 10_000 + i).await.expect("start");
        }
        ids.push(ls.id);
    }
    let live = s.list(Status::Live, 10, 0).await.expect("list");
    assert_eq!(
        live.iter().map(|l| l.id).collect::<Vec<_>>(),
        vec![ids[4], ids[3], ids[1], ids[0]]
    );
    let page = s.list(Status::Live, 2, 1).await.expect("list");
    assert_eq!(
        page.iter().map(|l| l.id).collect::<Vec<_>>(),
        vec![ids[3], ids[1]]
    );
    let created = s.list(Status::Created, 10, 0).await.expect("list");
    assert_eq!(
        created.iter().map(|l| l.id).collect::<Vec<_>>(),
        vec![ids[2]]
    );
}

async fn peak_viewers_only_rises(s: &dyn LivestreamStore) {
    let ls = stream("alice", "k", 1);
    s.create(ls.clone()).await.expect("create");
    assert_eq!(s.raise_peak(ls.id, 3).await.expect("raise"), 3);
    assert_eq!(s.raise_peak(ls.id, 2).await.expect("raise"), 3);
    assert_eq!(s.raise_peak(ls.id, 5).await.expect("raise"), 5);
    assert_eq!(
        s.get(ls.id).await.expect("get").map(|l| l.peak_viewers),
        Some(5)
    );
    assert_eq!(s.raise_peak(Uuid::new_v4(), 9).await.expect("unknown"), 0);
}

async fn viewer_rows_record_joins_and_leaves(s: &dyn LivestreamStore) {
    let ls = stream("alice", "k", 1);
    let other = stream("bob", "k2", 1);
    s.create(ls.clone()).await.expect("create");
    s.create(other.clone()).await.expect("create");
    let a = s
        .open_viewer(ls.id, "v1".into(), ViewerClient::Socketio, 100)
        .await
        .expect("open");
    let b = s
        .open_viewer(ls.id, "v2".into(), ViewerClient::Http, 200)
        .await
        .expect("open");
    let c = s
        .open_viewer(ls.id, "v3".into(), ViewerClient::Whep, 300)
        .await
        .expect("open");
    let elsewhere = s
        .open_viewer(other.id, "v1".into(), ViewerClient::Whep, 300)
        .await
        .expect("open");
    assert!(a != b && b != c && c != elsewhere);
    assert!(s.close_viewer(a, 400).await.expect("close"));
    assert!(!s.close_viewer(a, 500).await.expect("closed already"));
    assert!(
        s.set_viewer_client(b, ViewerClient::Socketio)
            .await
            .expect("set client")
    );
    assert_eq!(
        s.close_open_viewers(Some(ls.id), 600).await.expect("close"),
        2
    );
    let rows = s.viewers(ls.id).await.expect("rows");
    let summary: Vec<_> = rows
        .iter()
        .map(|r| (r.user_id.as_str(), r.client, r.joined_at, r.left_at))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("v1", ViewerClient::Socketio, 100, Some(400)),
            ("v2", ViewerClient::Socketio, 200, Some(600)),
            ("v3", ViewerClient::Whep, 300, Some(600)),
        ]
    );
    // The other stream's viewer is still watching until every open row is closed.
    assert_eq!(s.viewers(other.id).await.expect("rows")[0].left_at, None);
    assert_eq!(s.close_open_viewers(None, 700).await.expect("close"), 1);
    assert_eq!(
        s.viewers(other.id).await.expect("rows")[0].left_at,
        Some(700)
    );
}

async fn chat_keeps_order_pages_and_hides_deleted(s: &dyn LivestreamStore) {
    let ls = stream("alice", "k", 1);
    let other = stream("bob", "k2", 1);
    s.create(ls.clone()).await.expect("create");
    s.create(other.clone()).await.expect("create");
    let mut stored = Vec::new();
    for i in 0..6 {
        let m = s
            .add_chat(ChatMessage {
                id: Uuid::new_v4(),
                seq: 0,
                stream_id: ls.id,
                user_id: format!("u{}", i % 2),
                message: format!("message {i}"),
                created_at: 1_000 + i,
                deleted_at: None,
            })
            .await
            .expect("add");
        stored.push(m);
    }
    assert!(stored.windows(2).all(|w| w[0].seq < w[1].seq));
    let all = s.chat(ls.id, 100, None).await.expect("chat");
    assert_eq!(all, stored);
    let last_two = s.chat(ls.id, 2, None).await.expect("chat");
    assert_eq!(last_two, stored[4..].to_vec());
    let before = s.chat(ls.id, 2, Some(stored[4].seq)).await.expect("chat");
    assert_eq!(before, stored[2..4].to_vec());

    assert!(
        !s.delete_chat(other.id, stored[1].id, "mod".into(), 2_000)
            .await
            .expect("wrong stream")
    );
    assert!(
        s.delete_chat(ls.id, stored[1].id, "mod".into(), 2_000)
            .await
            .expect("delete")
    );
    assert!(
        !s.delete_chat(ls.id, stored[1].id, "mod".into(), 2_001)
            .await
            .expect("deleted already")
    );
    let after = s.chat(ls.id, 100, None).await.expect("chat");
    assert_eq!(after.len(), 5);
    assert!(after.iter().all(|m| m.id != stored[1].id));
    assert!(s.chat(other.id, 100, None).await.expect("chat").is_empty());
}

async fn mutes_are_set_replaced_and_lifted(s: &dyn LivestreamStore) {
    let ls = stream("alice", "k", 1);
    s.create(ls.clone()).await.expect("create");
    assert_eq!(s.mute_of(ls.id, "troll".into()).await.expect("q"), None);
    let m = Mute {
        stream_id: ls.id,
        user_id: "troll".into(),
        muted_by: "alice".into(),
        until: Some(5_000),
        created_at: 1_000,
    };
    s.mute(m.clone()).await.expect("mute");
    let got = s
        .mute_of(ls.id, "troll".into())
        .await
        .expect("q")
        .expect("muted");
    assert_eq!(got, m);
    assert!(got.active(4_999));
    assert!(!got.active(5_000));
    s.mute(Mute {
        until: None,
        created_at: 2_000,
        ..m.clone()
    })
    .await
    .expect("re-mute");
    let forever = s
        .mute_of(ls.id, "troll".into())
        .await
        .expect("q")
        .expect("muted");
    assert_eq!((forever.until, forever.created_at), (None, 2_000));
    assert!(forever.active(i64::MAX));
    assert!(s.unmute(ls.id, "troll".into()).await.expect("unmute"));
    assert!(!s.unmute(ls.id, "troll".into()).await.expect("unmute again"));
    assert_eq!(s.mute_of(ls.id, "troll".into()).await.expect("q"), None);
}

const SCENARIOS: &[(&str, Scenario)] = &[
    ("create_and_read_back", |s| {
        Box::pin(create_and_read_back(s))
    }),
    (
        "a_streams_own_viewer_limit_round_trips_and_absent_stays_null",
        |s| Box::pin(a_streams_own_viewer_limit_round_trips_and_absent_stays_null(s)),
    ),
    ("start_end_rotates_the_key_and_restarts", |s| {
        Box::pin(start_end_rotates_the_key_and_restarts(s))
    }),
    ("active_list_is_live_only_latest_first_and_paged", |s| {
        Box::pin(active_list_is_live_only_latest_first_and_paged(s))
    }),
    ("peak_viewers_only_rises", |s| {
        Box::pin(peak_viewers_only_rises(s))
    }),
    ("viewer_rows_record_joins_and_leaves", |s| {
        Box::pin(viewer_rows_record_joins_and_leaves(s))
    }),
    ("chat_keeps_order_pages_and_hides_deleted", |s| {
        Box::pin(chat_keeps_order_pages_and_hides_deleted(s))
    }),
    ("mutes_are_set_replaced_and_lifted", |s| {
        Box::pin(mutes_are_set_replaced_and_lifted(s))
    }),
];

async fn sqlite() -> (TempDir, Arc<dyn LivestreamStore>) {
    let dir = TempDir::new();
    let store = open(None, &dir.0).await.expect("sqlite opens");
    assert_eq!(store.kind(), "sqlite");
    (dir, store)
}

#[tokio::test]
async fn sqlite_store_passes_every_scenario() {
    for (name, scenario) in SCENARIOS {
        let (_dir, store) = sqlite().await;
        eprintln!("sqlite: {name}");
        scenario(store.as_ref()).await;
    }
}

#[tokio::test]
async fn postgres_store_passes_every_scenario() {
    let server = PgServer::start();
    for (name, scenario) in SCENARIOS {
        let url = server.create_database(&format!("t_{}", Uuid::new_v4().simple()));
        let store = open(Some(&url), std::path::Path::new("/nonexistent"))
            .await
            .expect("postgres opens");
        assert_eq!(store.kind(), "postgres");
        store.ping().await.expect("ping");
        eprintln!("postgres: {name}");
        scenario(store.as_ref()).await;
    }
}

#[tokio::test]
async fn sqlite_data_survives_reopening_and_migrations_run_once() {
    let dir = TempDir::new();
    let ls = Livestream {
        max_viewers: Some(7),
        ..stream("alice", "persisted", 1)
    };
    {
        let store = open(None, &dir.0).await.expect("open");
        store.create(ls.clone()).await.expect("create");
        store.start(ls.id, 2).await.expect("start");
        store
            .add_chat(ChatMessage {
                id: Uuid::new_v4(),
                seq: 0,
                stream_id: ls.id,
                user_id: "bob".into(),
                message: "hello".into(),
                created_at: 3,
                deleted_at: None,
            })
            .await
            .expect("chat");
    }
    let store = open(None, &dir.0).await.expect("reopen");
    let back = store.get(ls.id).await.expect("get").expect("kept");
    assert_eq!(back.status, Status::Live);
    assert_eq!(back.max_viewers, Some(7));
    assert_eq!(
        store
            .by_key_hash(hash_key("persisted"))
            .await
            .expect("q")
            .map(|l| l.id),
        Some(ls.id)
    );
    let chat = store.chat(ls.id, 10, None).await.expect("chat");
    assert_eq!(chat.len(), 1);
    assert_eq!(chat[0].message, "hello");
    assert!(dir.0.join(SQLITE_FILE).exists());
}

/// The migrations of the first release only: the schema before per-stream viewer limits.
fn first_release(all: &sqlx::migrate::Migrator) -> sqlx::migrate::Migrator {
    sqlx::migrate::Migrator {
        migrations: std::borrow::Cow::Owned(
            all.migrations
                .iter()
                .filter(|m| m.version == 20261121120000)
                .cloned()
                .collect(),
        ),
        ..sqlx::migrate::Migrator::DEFAULT
    }
}

/// A livestream row as the first release wrote it (no `max_viewers` column yet).
const OLD_ROW: &str = "INSERT INTO livestreams \
     (id, owner_id, title, stream_key_hash, created_at, key_rotated_at) \
     VALUES ($1, 'alice', 'from before', $2, 1, 1)";

/// After the upgrade the old row reads back with no limit of its own, and new rows take one.
async fn old_row_has_no_limit_after_upgrade(store: &dyn LivestreamStore, id: Uuid) {
    let old = store.get(id).await.expect("get").expect("kept");
    assert_eq!((old.title.as_str(), old.max_viewers), ("from before", None));
    let new = Livestream {
        max_viewers: Some(3),
        ..stream("bob", "new", 2)
    };
    store.create(new.clone()).await.expect("create");
    assert_eq!(
        store
            .get(new.id)
            .await
            .expect("get")
            .and_then(|l| l.max_viewers),
        Some(3)
    );
}

#[tokio::test]
async fn sqlite_upgrade_adds_the_viewer_limit_column_to_existing_rows() {
    let dir = TempDir::new();
    let id = Uuid::new_v4();
    {
        let opts = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(dir.0.join(SQLITE_FILE))
            .create_if_missing(true);
        let pool = sqlx::SqlitePool::connect_with(opts).await.expect("sqlite");
        first_release(&sql::SQLITE_MIGRATIONS)
            .run(&pool)
            .await
            .expect("first release's schema");
        sqlx::query(OLD_ROW)
            .bind(id.to_string())
            .bind(hash_key("old"))
            .execute(&pool)
            .await
            .expect("old row");
        pool.close().await;
    }
    let store = open(None, &dir.0).await.expect("upgrade");
    old_row_has_no_limit_after_upgrade(store.as_ref(), id).await;
}

#[tokio::test]
async fn postgres_upgrade_adds_the_viewer_limit_column_to_existing_rows() {
    let server = PgServer::start();
    let url = server.create_database(&format!("t_{}", Uuid::new_v4().simple()));
    let id = Uuid::new_v4();
    {
        let pool = sqlx::PgPool::connect(&url).await.expect("postgres");
        first_release(&sql::PG_MIGRATIONS)
            .run(&pool)
            .await
            .expect("first release's schema");
        sqlx::query(OLD_ROW)
            .bind(id.to_string())
            .bind(hash_key("old"))
            .execute(&pool)
            .await
            .expect("old row");
        pool.close().await;
    }
    let store = open(Some(&url), std::path::Path::new("/nonexistent"))
        .await
        .expect("upgrade");
    old_row_has_no_limit_after_upgrade(store.as_ref(), id).await;
}

#[tokio::test]
async fn an_unreachable_postgres_is_reported_unavailable() {
    // A port nothing listens on (bound, then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port");
    let err = open(
        Some(&format!("postgres://postgres@127.0.0.1:{port}/x")),
        std::path::Path::new("/nonexistent"),
    )
    .await
    .expect_err("nothing listens");
    assert!(
        matches!(err, LivestreamStoreError::Unavailable(_)),
        "{err:?}"
    );
}

#[test]
fn key_hash_is_sha256_hex() {
    // printf 'abc' | sha256sum
    assert_eq!(
        hash_key("abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}
