//! The NATS bus (async-nats). The client connects in the background and reconnects by itself;
//! subscriptions are renewed on reconnect, publishes made while disconnected are buffered by the
//! client and sent once it is back.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::subject::is_valid_publish_subject;
use super::{BoxFuture, BusError, BusMessage, EventBus, Subscription};

/// A NATS connection.
#[derive(Debug)]
pub struct NatsBus {
    client: async_nats::Client,
    url: String,
    connected: Arc<AtomicBool>,
}

impl NatsBus {
    /// Starts connecting to `url` (`nats://host:port`). An unreachable server is retried in the
    /// background and logged; only an unusable URL fails.
    pub async fn connect(url: &str) -> Result<Self, BusError> {
        let connected = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&connected);
        let shown = redact(url);
        let shown_cb = shown.clone();
        let client = async_nats::ConnectOptions::new()
            .name("ringcast-signaling")
            .retry_on_initial_connect()
            .connection_timeout(Duration::from_secs(2))
            .ping_interval(Duration::from_secs(10))
            .event_callback(move |ev| {
                let flag = Arc::clone(&flag);
                let url = shown_cb.clone();
                async move {
                    match ev {
                        async_nats::Event::Connected => {
                            flag.store(true, Ordering::Relaxed);
                            tracing::info!(%url, "NATS connected");
                        }
                        async_nats::Event::Disconnected => {
                            flag.store(false, Ordering::Relaxed);
                            tracing::warn!(%url, "NATS disconnected; reconnecting");
                        }
                        other => tracing::warn!(%url, event = %other, "NATS"),
                    }
                }
            })
            .connect(url)
            .await;
        let client = client.map_err(|e| BusError::Unavailable(format!("NATS_URL {shown}: {e}")))?;
        Ok(NatsBus {
            client,
            url: shown,
            connected,
        })
    }

    /// The server URL without credentials.
    pub fn url(&self) -> &str {
        &self.url
    }
}

/// `nats://user:pass@host` → `nats://***@host`.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(a)) if a > s => format!("{}***{}", &url[..s + 3], &url[a..]),
        _ => url.to_string(),
    }
}

impl EventBus for NatsBus {
    fn publish(&self, subject: String, payload: Vec<u8>) -> BoxFuture<'_, Result<(), BusError>> {
        Box::pin(async move {
            if !is_valid_publish_subject(&subject) {
                return Err(BusError::InvalidSubject(subject));
            }
            self.client
                .publish(subject, payload.into())
                .await
                .map_err(|e| BusError::Unavailable(e.to_string()))
        })
    }

    fn subscribe(&self, subject: String) -> BoxFuture<'_, Result<Subscription, BusError>> {
        Box::pin(async move {
            let mut sub = self
                .client
                .subscribe(subject.clone())
                .await
                .map_err(|e| BusError::Unavailable(e.to_string()))?;
            let (tx, rx) = mpsc::channel(1024);
            tokio::spawn(async move {
                while let Some(m) = sub.next().await {
                    let msg = BusMessage {
                        subject: m.subject.to_string(),
                        payload: m.payload.to_vec(),
                    };
                    if tx.send(msg).await.is_err() {
                        return;
                    }
                }
                tracing::warn!(subject, "NATS subscription ended");
            });
            Ok(Subscription::new(rx))
        })
    }

    fn kind(&self) -> &'static str {
        "nats"
    }

    fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
            || self.client.connection_state() == async_nats::connection::State::Connected
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn credentials_are_not_logged() {
        assert_eq!(redact("nats://u:p@host:4222"), "nats://***@host:4222");
        assert_eq!(redact("nats://host:4222"), "nats://host:4222");
    }
}
