//! The SQL implementation of [`LivestreamStore`], once for SQLite ([`SqliteStore`]) and once for
//! PostgreSQL ([`PgStore`]). The statements are the same text on both: `$N` parameters (SQLite
//! reads `$N` as the N-th argument), ids as text, times as `BIGINT` milliseconds, and only
//! functions both dialects have. The implementation is one macro body expanded per backend, so
//! each expansion is plain monomorphic sqlx code.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::Row;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use uuid::Uuid;

use super::{
    BoxFuture, ChatMessage, Livestream, LivestreamStore, LivestreamStoreError, Mute, Status,
    StoreResult, ViewerClient, ViewerRow,
};

/// How long a statement waits for a pooled connection before the database counts as down.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long SQLite waits on a lock held by another connection.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The schema's migrations, by dialect (the tests also replay a prefix of them).
pub(super) static SQLITE_MIGRATIONS: Migrator =
    sqlx::migrate!("src/livestream/store/migrations/sqlite");
pub(super) static PG_MIGRATIONS: Migrator =
    sqlx::migrate!("src/livestream/store/migrations/postgres");

const LIVESTREAM_COLUMNS: &str = "id, owner_id, title, description, status, stream_key_hash, \
     recording_enabled, recording_url, peak_viewers, created_at, started_at, ended_at, \
     key_rotated_at, max_viewers";
const CHAT_COLUMNS: &str = "seq, id, stream_id, user_id, message, created_at, deleted_at";
const VIEWER_COLUMNS: &str = "id, stream_id, user_id, client, joined_at, left_at";
const MUTE_COLUMNS: &str = "stream_id, user_id, muted_by, until_ms, created_at";

fn db_err(e: sqlx::Error) -> LivestreamStoreError {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => LivestreamStoreError::Unavailable(e.to_string()),
        sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::Decode(_)
        | sqlx::Error::TypeNotFound { .. } => LivestreamStoreError::Corrupt(e.to_string()),
        other => LivestreamStoreError::Database(other.to_string()),
    }
}

fn uuid_col(s: &str) -> StoreResult<Uuid> {
    Uuid::parse_str(s).map_err(|_| LivestreamStoreError::Corrupt(format!("{s:?} is not a uuid")))
}

/// SQLite in one file: WAL journal, foreign keys on.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating when missing) the database file at `path` and applies the migrations.
    pub async fn open(path: &Path) -> StoreResult<Self> {
        let opts = SqliteConnectOptions::from_str("sqlite:")
            .map_err(db_err)?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(SQLITE_BUSY_TIMEOUT)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(opts)
            .await
            .map_err(|e| LivestreamStoreError::Open {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
        let mut migrator = Migrator {
            migrations: SQLITE_MIGRATIONS.migrations.clone(),
            ..Migrator::DEFAULT
        };
        // Other services may keep their own migrations in the same database.
        migrator.set_ignore_missing(true);
        migrator
            .run(&pool)
            .await
            .map_err(|e| LivestreamStoreError::Migrate(e.to_string()))?;
        Ok(SqliteStore { pool })
    }
}

/// PostgreSQL at a `postgres://` URL.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects to `url` and applies the migrations.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect(url)
            .await
            .map_err(|e| LivestreamStoreError::Unavailable(e.to_string()))?;
        let mut migrator = Migrator {
            migrations: PG_MIGRATIONS.migrations.clone(),
            ..Migrator::DEFAULT
        };
        migrator.set_ignore_missing(true);
        migrator
            .run(&pool)
            .await
            .map_err(|e| LivestreamStoreError::Migrate(e.to_string()))?;
        Ok(PgStore { pool })
    }
}

macro_rules! sql_store {
    ($store:ident, $row:ty, $kind:literal) => {
        impl $store {
            fn livestream(r: &$row) -> StoreResult<Livestream> {
                let status: String = r.try_get("status").map_err(db_err)?;
                let id: String = r.try_get("id").map_err(db_err)?;
                Ok(Livestream {
                    id: uuid_col(&id)?,
                    owner_id: r.try_get("owner_id").map_err(db_err)?,
                    title: r.try_get("title").map_err(db_err)?,
                    description: r.try_get("description").map_err(db_err)?,
                    status: Status::parse(&status).ok_or_else(|| {
                        LivestreamStoreError::Corrupt(format!("status {status:?}"))
                    })?,
                    stream_key_hash: r.try_get("stream_key_hash").map_err(db_err)?,
                    recording_enabled: r.try_get("recording_enabled").map_err(db_err)?,
                    recording_url: r.try_get("recording_url").map_err(db_err)?,
                    peak_viewers: r.try_get("peak_viewers").map_err(db_err)?,
                    created_at: r.try_get("created_at").map_err(db_err)?,
                    started_at: r.try_get("started_at").map_err(db_err)?,
                    ended_at: r.try_get("ended_at").map_err(db_err)?,
                    key_rotated_at: r.try_get("key_rotated_at").map_err(db_err)?,
                    max_viewers: r.try_get("max_viewers").map_err(db_err)?,
                })
            }

            fn chat_row(r: &$row) -> StoreResult<ChatMessage> {
                let id: String = r.try_get("id").map_err(db_err)?;
                let stream: String = r.try_get("stream_id").map_err(db_err)?;
                Ok(ChatMessage {
                    id: uuid_col(&id)?,
                    seq: r.try_get("seq").map_err(db_err)?,
                    stream_id: uuid_col(&stream)?,
                    user_id: r.try_get("user_id").map_err(db_err)?,
                    message: r.try_get("message").map_err(db_err)?,
                    created_at: r.try_get("created_at").map_err(db_err)?,
                    deleted_at: r.try_get("deleted_at").map_err(db_err)?,
                })
            }

            fn viewer_row(r: &$row) -> StoreResult<ViewerRow> {
                let stream: String = r.try_get("stream_id").map_err(db_err)?;
                let client: String = r.try_get("client").map_err(db_err)?;
                Ok(ViewerRow {
                    id: r.try_get("id").map_err(db_err)?,
                    stream_id: uuid_col(&stream)?,
                    user_id: r.try_get("user_id").map_err(db_err)?,
                    client: ViewerClient::parse(&client).ok_or_else(|| {
                        LivestreamStoreError::Corrupt(format!("viewer client {client:?}"))
                    })?,
                    joined_at: r.try_get("joined_at").map_err(db_err)?,
                    left_at: r.try_get("left_at").map_err(db_err)?,
                })
            }

            fn mute_row(r: &$row) -> StoreResult<Mute> {
                let stream: String = r.try_get("stream_id").map_err(db_err)?;
                Ok(Mute {
                    stream_id: uuid_col(&stream)?,
                    user_id: r.try_get("user_id").map_err(db_err)?,
                    muted_by: r.try_get("muted_by").map_err(db_err)?,
                    until: r.try_get("until_ms").map_err(db_err)?,
                    created_at: r.try_get("created_at").map_err(db_err)?,
                })
            }
        }

        impl LivestreamStore for $store {
            fn create(&self, ls: Livestream) -> BoxFuture<'_, StoreResult<()>> {
                Box::pin(async move {
                    sqlx::query(&format!(
                        "INSERT INTO livestreams ({LIVESTREAM_COLUMNS}) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
                    ))
                    .bind(ls.id.to_string())
                    .bind(ls.owner_id)
                    .bind(ls.title)
                    .bind(ls.description)
                    .bind(ls.status.as_str())
                    .bind(ls.stream_key_hash)
                    .bind(ls.recording_enabled)
                    .bind(ls.recording_url)
                    .bind(ls.peak_viewers)
                    .bind(ls.created_at)
                    .bind(ls.started_at)
                    .bind(ls.ended_at)
                    .bind(ls.key_rotated_at)
                    .bind(ls.max_viewers)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                    Ok(())
                })
            }

            fn get(&self, id: Uuid) -> BoxFuture<'_, StoreResult<Option<Livestream>>> {
                Box::pin(async move {
                    let row = sqlx::query(&format!(
                        "SELECT {LIVESTREAM_COLUMNS} FROM livestreams WHERE id = $1"
                    ))
                    .bind(id.to_string())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_err)?;
                    row.as_ref().map(Self::livestream).transpose()
                })
            }

            fn by_key_hash(
                &self,
                key_hash: String,
            ) -> BoxFuture<'_, StoreResult<Option<Livestream>>> {
                Box::pin(async move {
                    let row = sqlx::query(&format!(
                        "SELECT {LIVESTREAM_COLUMNS} FROM livestreams WHERE stream_key_hash = $1"
                    ))
                    .bind(key_hash)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_err)?;
                    row.as_ref().map(Self::livestream).transpose()
                })
            }

            fn list(
                &self,
                status: Status,
                limit: i64,
                offset: i64,
            ) -> BoxFuture<'_, StoreResult<Vec<Livestream>>> {
                Box::pin(async move {
                    let rows = sqlx::query(&format!(
                        "SELECT {LIVESTREAM_COLUMNS} FROM livestreams WHERE status = $1 \
                         ORDER BY COALESCE(started_at, created_at) DESC, created_at DESC, id \
                         LIMIT $2 OFFSET $3"
                    ))
                    .bind(status.as_str())
                    .bind(limit)
                    .bind(offset)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_err)?;
                    rows.iter().map(Self::livestream).collect()
                })
            }

            fn start(&self, id: Uuid, now: i64) -> BoxFuture<'_, StoreResult<bool>> {
                Box::pin(async move {
                    let r = sqlx::query(
                        "UPDATE livestreams SET status = 'live', started_at = $2, ended_at = NULL \
                         WHERE id = $1 AND status <> 'live'",
                    )
                    .bind(id.to_string())
                    .bind(now)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                    Ok(r.rows_affected() > 0)
                })
            }

            fn end(
                &self,
                id: Uuid,
                now: i64,
                recording_url: Option<String>,
                new_key_hash: String,
            ) -> BoxFuture<'_, StoreResult<bool>> {
                Box::pin(async move {
                    let r = sqlx::query(
                        "UPDATE livestreams SET status = 'ended', ended_at = $2, \
                         recording_url = COALESCE($3, recording_url), stream_key_hash = $4, \
                         key_rotated_at = $2 WHERE id = $1 AND status <> 'ended'",
                    )
                    .bind(id.to_string())
                    .bind(now)
                    .bind(recording_url)
                    .bind(new_key_hash)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                    Ok(r.rows_affected() > 0)
                })
            }

            fn rotate_key(
                &self,
                id: Uuid,
                new_key_hash: String,
                now: i64,
            ) -> BoxFuture<'_, StoreResult<bool>> {
                Box::pin(async move {
                    let r = sqlx::query(
                        "UPDATE livestreams SET stream_key_hash = $2, key_rotated_at = $3 \
                         WHERE id = $1",
                    )
                    .bind(id.to_string())
                    .bind(new_key_hash)
                    .bind(now)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                    Ok(r.rows_affected() > 0)
                })
            }

            fn raise_peak(&self, id: Uuid, viewers: i64) -> BoxFuture<'_, StoreResult<i64>> {
                Box::pin(async move {
                    let row = sqlx::query(
                        "UPDATE livestreams SET peak_viewers = \
                         CASE WHEN peak_viewers < $2 THEN $2 ELSE peak_viewers END \
                         WHERE id = $1 RETURNING peak_viewers",
                    )
                    .bind(id.to_string())
                    .bind(viewers)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_err)?;
                    match row {
                        Some(r) => r.try_get("peak_viewers").map_err(db_err),
                        None => Ok(0),
                    }
                })
            }

            fn open_viewer(
                &self,
                stream: Uuid,
                user: String,
                client: ViewerClient,
                now: i64,
            ) -> BoxFuture<'_, StoreResult<i64>> {
                Box::pin(async move {
                    let row = sqlx::query(
                        "INSERT INTO livestream_viewers (stream_id, user_id, client, joined_at) \
                         VALUES ($1, $2, $3, $4) RETURNING id",
                    )
                    .bind(stream.to_string())
                    .bind(user)
                    .bind(client.as_str())
                    .bind(now)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(db_err)?;
                    row.try_get("id").map_err(db_err)
                })
            }

            fn close_viewer(&self, row: i64, now: i64) -> BoxFuture<'_, StoreResult<bool>> {
                Box::pin(async move {
                    let r = sqlx::query(
                        "UPDATE livestream_viewers SET left_at = $2 \
                         WHERE id = $1 AND left_at IS NULL",
                    )
                    .bind(row)
                    .bind(now)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                    Ok(r.rows_affected() > 0)
                })
            }

            fn set_viewer_client(
                &self,
                row: i64,
                client: ViewerClient,
            ) -> BoxFuture<'_, StoreResult<bool>> {
                Box::pin(async move {
                    let r = sqlx::query(
                        "UPDATE livestream_viewers SET client = $2 \
                         WHERE id = $1 AND left_at IS NULL",
                    )
                    .bind(row)
                    .bind(client.as_str())
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                    Ok(r.rows_affected() > 0)
                })
            }

            fn close_open_viewers(
                &self,
                stream: Option<Uuid>,
                now: i64,
            ) -> BoxFuture<'_, StoreResult<u64>> {
                Box::pin(async move {
                    let r = match stream {
                        Some(s) => sqlx::query(
                            "UPDATE livestream_viewers SET left_at = $2 \
                             WHERE stream_id = $1 AND left_at IS NULL",
                        )
                        .bind(s.to_string())
                        .bind(now),
                        None => sqlx::query(
                            "UPDATE livestream_viewers SET left_at = $1 WHERE left_at IS NULL",
                        )
                        .bind(now),
                    }
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                    Ok(r.rows_affected())
                })
            }

            fn viewers(&self, stream: Uuid) -> BoxFuture<'_, StoreResult<Vec<ViewerRow>>> {
                Box::pin(async move {
                    let rows = sqlx::query(&format!(
                        "SELECT {VIEWER_COLUMNS} FROM livestream_viewers WHERE stream_id = $1 \
                         ORDER BY joined_at, id"
                    ))
                    .bind(stream.to_string())
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_err)?;
                    rows.iter().map(Self::viewer_row).collect()
                })
            }

            fn add_chat(&self, msg: ChatMessage) -> BoxFuture<'_, StoreResult<ChatMessage>> {
                Box::pin(async move {
                    let row = sqlx::query(
                        "INSERT INTO livestream_chat (id, stream_id, user_id, message, created_at) \
                         VALUES ($1, $2, $3, $4, $5) RETURNING seq",
                    )
                    .bind(msg.id.to_string())
                    .bind(msg.stream_id.to_string())
                    .bind(&msg.user_id)
                    .bind(&msg.message)
                    .bind(msg.created_at)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(db_err)?;
                    let seq: i64 = row.try_get("seq").map_err(db_err)?;
                    Ok(ChatMessage { seq, ..msg })
                })
            }

            fn chat(
                &self,
                stream: Uuid,
                limit: i64,
                before_seq: Option<i64>,
            ) -> BoxFuture<'_, StoreResult<Vec<ChatMessage>>> {
                Box::pin(async move {
                    let rows = sqlx::query(&format!(
                        "SELECT {CHAT_COLUMNS} FROM livestream_chat \
                         WHERE stream_id = $1 AND deleted_at IS NULL AND seq < $2 \
                         ORDER BY seq DESC LIMIT $3"
                    ))
                    .bind(stream.to_string())
                    .bind(before_seq.unwrap_or(i64::MAX))
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_err)?;
                    let mut out = rows
                        .iter()
                        .map(Self::chat_row)
                        .collect::<StoreResult<Vec<_>>>()?;
                    out.reverse();
                    Ok(out)
                })
            }

            fn delete_chat(
                &self,
                stream: Uuid,
                id: Uuid,
                by: String,
                now: i64,
            ) -> BoxFuture<'_, StoreResult<bool>> {
                Box::pin(async move {
                    let r = sqlx::query(
                        "UPDATE livestream_chat SET deleted_at = $3, deleted_by = $4 \
                         WHERE stream_id = $1 AND id = $2 AND deleted_at IS NULL",
                    )
                    .bind(stream.to_string())
                    .bind(id.to_string())
                    .bind(now)
                    .bind(by)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                    Ok(r.rows_affected() > 0)
                })
            }

            fn mute(&self, mute: Mute) -> BoxFuture<'_, StoreResult<()>> {
                Box::pin(async move {
                    sqlx::query(&format!(
                        "INSERT INTO livestream_mutes ({MUTE_COLUMNS}) VALUES ($1, $2, $3, $4, $5) \
                         ON CONFLICT (stream_id, user_id) DO UPDATE SET muted_by = $3, \
                         until_ms = $4, created_at = $5"
                    ))
                    .bind(mute.stream_id.to_string())
                    .bind(mute.user_id)
                    .bind(mute.muted_by)
                    .bind(mute.until)
                    .bind(mute.created_at)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                    Ok(())
                })
            }

            fn unmute(&self, stream: Uuid, user: String) -> BoxFuture<'_, StoreResult<bool>> {
                Box::pin(async move {
                    let r = sqlx::query(
                        "DELETE FROM livestream_mutes WHERE stream_id = $1 AND user_id = $2",
                    )
                    .bind(stream.to_string())
                    .bind(user)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                    Ok(r.rows_affected() > 0)
                })
            }

            fn mute_of(
                &self,
                stream: Uuid,
                user: String,
            ) -> BoxFuture<'_, StoreResult<Option<Mute>>> {
                Box::pin(async move {
                    let row = sqlx::query(&format!(
                        "SELECT {MUTE_COLUMNS} FROM livestream_mutes \
                         WHERE stream_id = $1 AND user_id = $2"
                    ))
                    .bind(stream.to_string())
                    .bind(user)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_err)?;
                    row.as_ref().map(Self::mute_row).transpose()
                })
            }

            fn ping(&self) -> BoxFuture<'_, StoreResult<()>> {
                Box::pin(async move {
                    sqlx::query("SELECT 1")
                        .execute(&self.pool)
                        .await
                        .map_err(db_err)?;
                    Ok(())
                })
            }

            fn kind(&self) -> &'static str {
                $kind
            }
        }
    };
}

sql_store!(SqliteStore, sqlx::sqlite::SqliteRow, "sqlite");
sql_store!(PgStore, sqlx::postgres::PgRow, "postgres");
