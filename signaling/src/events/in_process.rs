//! The default bus: a tokio broadcast channel inside this process.

use tokio::sync::{broadcast, mpsc};

use super::subject::{is_valid_publish_subject, subject_matches};
use super::{BoxFuture, BusError, BusMessage, EventBus, Subscription};

/// Messages a slow subscriber may fall behind by before it loses the oldest.
const CAPACITY: usize = 1024;

/// Publish/subscribe within one process.
#[derive(Debug)]
pub struct InProcessBus {
    tx: broadcast::Sender<BusMessage>,
}

impl Default for InProcessBus {
    fn default() -> Self {
        Self::new()
    }
}

impl InProcessBus {
    pub fn new() -> Self {
        InProcessBus {
            tx: broadcast::channel(CAPACITY).0,
        }
    }
}

impl EventBus for InProcessBus {
    fn publish(&self, subject: String, payload: Vec<u8>) -> BoxFuture<'_, Result<(), BusError>> {
        Box::pin(async move {
            if !is_valid_publish_subject(&subject) {
                return Err(BusError::InvalidSubject(subject));
            }
            // No receivers is not an error: nobody listens yet.
            let _ = self.tx.send(BusMessage { subject, payload });
            Ok(())
        })
    }

    fn subscribe(&self, subject: String) -> BoxFuture<'_, Result<Subscription, BusError>> {
        Box::pin(async move {
            let mut rx = self.tx.subscribe();
            let (out, sub) = mpsc::channel(CAPACITY);
            tokio::spawn(async move {
                loop {
                    match rx.recv().await {
                        Ok(m) => {
                            if subject_matches(&subject, &m.subject) && out.send(m).await.is_err() {
                                return;
                            }
                        }
                        Err(broadcast::error::RecvError::Lagged(n)) => {
                            tracing::warn!(subject, lost = n, "in-process subscriber fell behind");
                        }
                        Err(broadcast::error::RecvError::Closed) => return,
                    }
                }
            });
            Ok(Subscription::new(sub))
        })
    }

    fn kind(&self) -> &'static str {
        "in-process"
    }

    fn is_connected(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn subscribers_get_matching_subjects_in_order() {
        let bus = InProcessBus::new();
        let mut all = bus.subscribe("stream.>".into()).await.expect("subscribe");
        let mut one = bus
            .subscribe("stream.stopped".into())
            .await
            .expect("subscribe");
        for s in ["stream.started", "voice.session.ended", "stream.stopped"] {
            bus.publish(s.into(), s.as_bytes().to_vec())
                .await
                .expect("publish");
        }
        assert_eq!(
            all.next().await.map(|m| m.subject),
            Some("stream.started".into())
        );
        assert_eq!(
            all.next().await.map(|m| m.subject),
            Some("stream.stopped".into())
        );
        let m = one.next().await.expect("message");
        assert_eq!(m.payload, b"stream.stopped");
    }

    #[tokio::test]
    async fn wildcard_publish_is_refused() {
        let bus = InProcessBus::new();
        assert!(matches!(
            bus.publish("stream.*".into(), vec![]).await,
            Err(BusError::InvalidSubject(_))
        ));
    }
}
