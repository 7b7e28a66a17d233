//! Relational data of the livestream service: `livestreams`, `livestream_viewers`,
//! `livestream_chat` and `livestream_mutes`. SQLite embedded by default (a file under the data
//! directory), PostgreSQL when `DATABASE_URL` is set; both through sqlx, with the schema applied
//! by embedded migrations at start. The same SQL runs on both (`$N` parameters, portable
//! functions), so the two backends are one implementation ([`SqlStore`]).

mod record;
mod sql;

use std::path::Path;
use std::sync::Arc;

use uuid::Uuid;

pub use record::{ChatMessage, Livestream, Mute, Status, ViewerClient, ViewerRow};
pub use sql::{PgStore, SqliteStore};

pub use crate::events::BoxFuture;

/// File name of the embedded database inside the data directory.
pub const SQLITE_FILE: &str = "ringcast.sqlite3";

/// Why a store operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LivestreamStoreError {
    /// The database cannot be reached or did not answer in time; retry later.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The database refused the statement.
    #[error("database error: {0}")]
    Database(String),
    /// A row could not be read back (written by an incompatible version).
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The schema could not be brought up to date.
    #[error("migration failed: {0}")]
    Migrate(String),
    /// The data directory or the database file cannot be used.
    #[error("cannot open {path}: {reason}")]
    Open { path: String, reason: String },
}

/// Result of the store's operations.
pub type StoreResult<T> = Result<T, LivestreamStoreError>;

/// Livestreams, their viewers, chat and mutes.
pub trait LivestreamStore: Send + Sync + std::fmt::Debug {
    /// Inserts a new livestream (its id and key hash must be new).
    fn create(&self, ls: Livestream) -> BoxFuture<'_, StoreResult<()>>;
    fn get(&self, id: Uuid) -> BoxFuture<'_, StoreResult<Option<Livestream>>>;
    /// The livestream whose current key hashes to `key_hash`.
    fn by_key_hash(&self, key_hash: String) -> BoxFuture<'_, StoreResult<Option<Livestream>>>;
    /// Livestreams in `status`, latest start (then creation) first.
    fn list(
        &self,
        status: Status,
        limit: i64,
        offset: i64,
    ) -> BoxFuture<'_, StoreResult<Vec<Livestream>>>;
    /// Makes a livestream live at `now` unless it is live already; `true` when it changed.
    fn start(&self, id: Uuid, now: i64) -> BoxFuture<'_, StoreResult<bool>>;
    /// Ends a livestream that is not ended: status `ended` at `now`, the recording URL when
    /// given, and the key replaced by `new_key_hash`. `true` when it changed.
    fn end(
        &self,
        id: Uuid,
        now: i64,
        recording_url: Option<String>,
        new_key_hash: String,
    ) -> BoxFuture<'_, StoreResult<bool>>;
    /// Replaces the key; `true` when the livestream exists.
    fn rotate_key(
        &self,
        id: Uuid,
        new_key_hash: String,
        now: i64,
    ) -> BoxFuture<'_, StoreResult<bool>>;
    /// Raises `peak_viewers` to `viewers` if below; returns the peak after the call.
    fn raise_peak(&self, id: Uuid, viewers: i64) -> BoxFuture<'_, StoreResult<i64>>;
    /// Records a viewer's join; returns the row id.
    fn open_viewer(
        &self,
        stream: Uuid,
        user: String,
        client: ViewerClient,
        now: i64,
    ) -> BoxFuture<'_, StoreResult<i64>>;
    /// Records a viewer's leave; `false` when the row was closed already.
    fn close_viewer(&self, row: i64, now: i64) -> BoxFuture<'_, StoreResult<bool>>;
    /// Changes how an open viewer row watches (an HTTP join followed by media).
    fn set_viewer_client(&self, row: i64, client: ViewerClient)
    -> BoxFuture<'_, StoreResult<bool>>;
    /// Closes every open viewer row (of one stream, or of all when `None`); returns how many.
    fn close_open_viewers(&self, stream: Option<Uuid>, now: i64)
    -> BoxFuture<'_, StoreResult<u64>>;
    /// A stream's viewer rows in join order.
    fn viewers(&self, stream: Uuid) -> BoxFuture<'_, StoreResult<Vec<ViewerRow>>>;
    /// Appends a chat message; returns it with its `seq`.
    fn add_chat(&self, msg: ChatMessage) -> BoxFuture<'_, StoreResult<ChatMessage>>;
    /// The latest `limit` messages before `before_seq` (all when `None`) that are not deleted,
    /// oldest first.
    fn chat(
        &self,
        stream: Uuid,
        limit: i64,
        before_seq: Option<i64>,
    ) -> BoxFuture<'_, StoreResult<Vec<ChatMessage>>>;
    /// Marks a message deleted; `false` when it does not exist (in that stream) or was deleted.
    fn delete_chat(
        &self,
        stream: Uuid,
        id: Uuid,
        by: String,
        now: i64,
    ) -> BoxFuture<'_, StoreResult<bool>>;
    /// Mutes (or re-mutes) a user in a stream.
    fn mute(&self, mute: Mute) -> BoxFuture<'_, StoreResult<()>>;
    /// Lifts a mute; `false` when there was none.
    fn unmute(&self, stream: Uuid, user: String) -> BoxFuture<'_, StoreResult<bool>>;
    /// The user's mute in a stream, expired or not.
    fn mute_of(&self, stream: Uuid, user: String) -> BoxFuture<'_, StoreResult<Option<Mute>>>;
    /// Checks that the database answers.
    fn ping(&self) -> BoxFuture<'_, StoreResult<()>>;
    /// `sqlite` or `postgres`.
    fn kind(&self) -> &'static str;
}

/// The store for a configuration: PostgreSQL at `database_url` when set, else SQLite in
/// `data_dir` (created when missing). Applies the migrations before returning.
pub async fn open(
    database_url: Option<&str>,
    data_dir: &Path,
) -> StoreResult<Arc<dyn LivestreamStore>> {
    Ok(
        match database_url.map(str::trim).filter(|u| !u.is_empty()) {
            Some(url) => Arc::new(PgStore::connect(url).await?),
            None => {
                std::fs::create_dir_all(data_dir).map_err(|e| LivestreamStoreError::Open {
                    path: data_dir.display().to_string(),
                    reason: e.to_string(),
                })?;
                Arc::new(SqliteStore::open(&data_dir.join(SQLITE_FILE)).await?)
            }
        },
    )
}

/// SHA-256 of a stream key, lowercase hex: what `livestreams.stream_key_hash` holds.
pub fn hash_key(key: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(key.as_bytes());
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

#[cfg(test)]
mod tests;
