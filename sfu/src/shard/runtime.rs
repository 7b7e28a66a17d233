//! A shard's thread: pinned to one core, it owns an I/O backend and a [`ShardCore`] and runs the
//! loop of DESIGN.md "The shard": receive → commands and mesh → timers → transmit → wait.

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{Receiver, Sender};

use crate::ShardId;
use crate::control::{Command, Event};
use crate::core::{CoreConfig, ShardCore};
use crate::dtls::DtlsCert;
use crate::io::{self, IoBackend, IoConfig, IoKind, Waker};
use crate::metrics::ShardMetrics;

use super::mesh::Mesh;

/// How often the shard publishes its counters.
const METRICS_INTERVAL: Duration = Duration::from_millis(100);

/// Everything needed to start one shard.
#[derive(Debug, Clone)]
pub struct ShardConfig {
    pub id: ShardId,
    pub bind: SocketAddr,
    pub io: IoKind,
    pub io_config: IoConfig,
    pub core: CoreConfig,
    /// CPU core to pin the thread to; None leaves it to the scheduler.
    pub pin: Option<usize>,
}

/// Receives a shard's events (called on the shard's thread; must not block).
pub type EventSink = Arc<dyn Fn(Event) + Send + Sync>;

/// Why a shard could not start.
#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    #[error("shard {0}: {1}")]
    Io(ShardId, #[source] io::IoError),
    #[error("shard {0} thread failed to start: {1}")]
    Spawn(ShardId, #[source] std::io::Error),
    #[error("shard {0} exited before it was ready")]
    Died(ShardId),
}

/// Signaling's handle on a running shard.
#[derive(Debug)]
pub struct ShardHandle {
    pub id: ShardId,
    /// The bound UDP address (the port goes into ICE candidates).
    pub local_addr: SocketAddr,
    /// The backend actually in use (after any fallback).
    pub io: IoKind,
    pub metrics: Arc<ShardMetrics>,
    commands: Sender<Command>,
    waker: Waker,
    thread: std::sync::Mutex<Option<JoinHandle<()>>>,
}

impl ShardHandle {
    /// Queues a command and wakes the shard.
    pub fn send(&self, cmd: Command) {
        if self.commands.send(cmd).is_ok() {
            self.waker.wake();
        }
    }

    /// Asks the shard to close its sessions and stop, and waits for its thread.
    pub fn shutdown(&self) {
        let thread = self.thread.lock().map(|mut t| t.take()).unwrap_or(None);
        if let Some(t) = thread {
            self.send(Command::Shutdown);
            if t.join().is_err() {
                tracing::error!(shard = %self.id, "shard thread panicked");
            }
        }
    }
}

impl Drop for ShardHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Starts a shard thread: binds its socket, pins itself, and runs until shut down.
pub fn spawn(
    cfg: ShardConfig,
    cert: Arc<DtlsCert>,
    mesh: Arc<Mesh>,
    events: EventSink,
) -> Result<ShardHandle, ShardError> {
    let id = cfg.id;
    let (cmd_tx, cmd_rx) = crossbeam_channel::unbounded();
    let (ready_tx, ready_rx) =
        crossbeam_channel::bounded::<Result<(SocketAddr, IoKind, Waker), io::IoError>>(1);
    let metrics = Arc::new(ShardMetrics::default());
    let shard_metrics = Arc::clone(&metrics);
    let thread = std::thread::Builder::new()
        .name(format!("shard-{}", id.0))
        .spawn(move || {
            if let Some(core_id) = cfg.pin
                && !core_affinity::set_for_current(core_affinity::CoreId { id: core_id })
            {
                tracing::warn!(shard = %id, core = core_id, "could not pin shard thread");
            }
            let backend = match io::open_with_fallback(cfg.io, cfg.bind, &cfg.io_config) {
                Ok(b) => b,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            mesh.set_waker(id, backend.waker());
            let _ = ready_tx.send(Ok((backend.local_addr(), backend.kind(), backend.waker())));
            let now = Instant::now();
            let core = ShardCore::new(
                id,
                cfg.core,
                cert,
                Some(mesh.port(id)),
                now,
                SystemTime::now(),
            );
            run_loop(core, backend, cmd_rx, &shard_metrics, &events);
        })
        .map_err(|e| ShardError::Spawn(id, e))?;
    match ready_rx.recv() {
        Ok(Ok((local_addr, io, waker))) => Ok(ShardHandle {
            id,
            local_addr,
            io,
            metrics,
            commands: cmd_tx,
            waker,
            thread: std::sync::Mutex::new(Some(thread)),
        }),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(ShardError::Io(id, e))
        }
        Err(_) => {
            let _ = thread.join();
            Err(ShardError::Died(id))
        }
    }
}

/// The shard loop. Returns when the core has shut down.
pub fn run_loop<B: IoBackend>(
    mut core: ShardCore,
    mut backend: B,
    commands: Receiver<Command>,
    metrics: &ShardMetrics,
    events: &EventSink,
) {
    let id = core.shard();
    let mut next_metrics = Instant::now();
    let mut iterations: u64 = 0;
    loop {
        let now = Instant::now();
        if let Err(e) = backend.recv_batch(|meta, buf| core.handle_datagram(now, meta, buf)) {
            tracing::error!(shard = %id, error = %e, "receive failed");
        }
        while let Ok(cmd) = commands.try_recv() {
            core.handle_command(now, cmd);
        }
        core.poll_mesh(now, 4096);
        core.handle_timeout(now);
        while core.has_pending_transmit() {
            core.poll_transmit(now, backend.tx_batch());
            if let Err(e) = backend.flush() {
                tracing::warn!(shard = %id, error = %e, "send failed");
                break;
            }
        }
        core.wake_peers();
        while let Some(ev) = core.poll_event() {
            events(ev);
        }
        iterations += 1;
        if now >= next_metrics || core.is_shut_down() {
            next_metrics = now + METRICS_INTERVAL;
            metrics.publish(core.counters(), &backend.stats(), core.population());
            metrics
                .loop_iterations
                .store(iterations, std::sync::atomic::Ordering::Relaxed);
        }
        if core.is_shut_down() {
            // Let the final DTLS close_notify flights leave.
            let _ = backend.wait(Some(Instant::now()));
            tracing::debug!(shard = %id, "shard stopped");
            return;
        }
        let deadline = match core.poll_timeout() {
            Some(t) => Some(t.min(next_metrics)),
            None => Some(next_metrics),
        };
        if let Err(e) = backend.wait(deadline) {
            tracing::error!(shard = %id, error = %e, "wait failed");
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}
