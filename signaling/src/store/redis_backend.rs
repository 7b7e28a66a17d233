//! The Redis connection shared by the stores (the stream service's streams now, the media
//! server's sessions later): one lazily made, self-repairing connection (redis crate,
//! `ConnectionManager`, tokio), every command bounded by [`TIMEOUT`], failures as
//! [`StoreError::Unavailable`], credentials kept out of logs.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::StoreError;

/// Longest a store call may take, connecting included.
pub const TIMEOUT: Duration = Duration::from_secs(2);

/// A Redis server (one database), shared by clones.
#[derive(Clone)]
pub struct RedisBackend {
    conn: ConnectionManager,
    url: String,
}

impl std::fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBackend")
            .field("url", &self.url)
            .finish()
    }
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

impl RedisBackend {
    /// A backend on `url` (`redis://[:password@]host:port[/db]`). Connects on first use and
    /// again after a failure; must be called inside a tokio runtime.
    pub fn open(url: &str) -> Result<Self, StoreError> {
        let client =
            redis::Client::open(url).map_err(|e| unavailable(format!("REDIS_URL: {e}")))?;
        let cfg = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_lazy_with_config(client, cfg)
            .map_err(|e| unavailable(format!("REDIS_URL: {e}")))?;
        Ok(RedisBackend {
            conn,
            url: redact(url),
        })
    }

    /// The server's URL without its password.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Runs one command within [`TIMEOUT`].
    pub async fn run<T: redis::FromRedisValue>(&self, cmd: redis::Cmd) -> Result<T, StoreError> {
        let mut conn = self.conn.clone();
        match tokio::time::timeout(TIMEOUT, cmd.query_async::<T>(&mut conn)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(unavailable(format!("redis {}: {e}", self.url))),
            Err(_) => Err(unavailable(format!(
                "redis {}: no answer within {TIMEOUT:?}",
                self.url
            ))),
        }
    }

    /// Runs a Lua script (`EVAL`) with `keys` and `args`.
    pub async fn eval<T: redis::FromRedisValue>(
        &self,
        script: &str,
        keys: &[String],
        args: &[String],
    ) -> Result<T, StoreError> {
        let mut c = redis::cmd("EVAL");
        c.arg(script).arg(keys.len());
        for k in keys {
            c.arg(k);
        }
        for a in args {
            c.arg(a);
        }
        self.run(c).await
    }

    /// `PING`.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let _: String = self.run(redis::cmd("PING")).await?;
        Ok(())
    }
}

/// `redis://:password@host` → `redis://***@host`.
pub(crate) fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(a)) if a > s => format!("{}***{}", &url[..s + 3], &url[a..]),
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_stay_out_of_logs() {
        assert_eq!(redact("redis://:pw@h:6379"), "redis://***@h:6379");
        assert_eq!(redact("redis://h:6379/0"), "redis://h:6379/0");
    }

    #[tokio::test]
    async fn unreachable_redis_fails_fast_with_unavailable() {
        // Port 1 on loopback: nothing listens there.
        let b = RedisBackend::open("redis://127.0.0.1:1/").expect("valid URL");
        let t = std::time::Instant::now();
        assert!(matches!(b.ping().await, Err(StoreError::Unavailable(_))));
        assert!(t.elapsed() <= TIMEOUT + Duration::from_millis(500));
    }
}
