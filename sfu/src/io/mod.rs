//! UDP I/O backends for a shard: `uring` (io_uring with multishot recvmsg into a provided buffer
//! ring and batched sendmsg) and `mmsg` (recvmmsg/sendmmsg over epoll), behind one trait.

mod addr;
mod buf_ring;
pub mod mmsg;
pub mod socket;
pub mod tx_batch;
mod tx_plan;
pub mod uring;

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod backend_tests;

pub use mmsg::MmsgIo;
pub use socket::{BoundSocket, SocketOptions};
pub use tx_batch::{SLOT_SIZE, TxBatch, TxMeta};
pub use uring::UringIo;

use std::net::{IpAddr, SocketAddr};

/// Facts about one received datagram.
#[derive(Debug, Clone, Copy)]
pub struct RecvMeta {
    /// Where it came from.
    pub src: SocketAddr,
    /// The local address it was sent to (IP_PKTINFO / IPV6_PKTINFO), when the backend knows it.
    pub dst_ip: Option<IpAddr>,
}

use std::time::Instant;

/// Which backend a shard uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoKind {
    Uring,
    Mmsg,
}

/// Wakes a shard blocked in [`IoBackend::wait`] from another thread (an eventfd).
#[derive(Debug, Clone)]
pub struct Waker {
    fd: std::sync::Arc<std::os::fd::OwnedFd>,
}

impl Waker {
    /// A new eventfd-backed waker (non-blocking, close-on-exec).
    pub fn new() -> std::io::Result<Self> {
        use std::os::fd::FromRawFd;
        // SAFETY: eventfd has no memory-safety preconditions; the result is checked below.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `fd` is a freshly created descriptor that nothing else owns.
        let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
        Ok(Waker {
            fd: std::sync::Arc::new(fd),
        })
    }

    /// Makes the owning shard's next (or current) `wait` return.
    pub fn wake(&self) {
        use std::os::fd::AsRawFd;
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to an eventfd; EAGAIN (counter full) means a
        // wake-up is already pending, which is all we need.
        unsafe { libc::write(self.fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    /// Resets the counter after a wake-up was observed.
    pub fn drain(&self) {
        use std::os::fd::AsRawFd;
        let mut v: u64 = 0;
        // SAFETY: reads 8 bytes into a live u64; EAGAIN when nothing is pending is fine.
        unsafe { libc::read(self.fd.as_raw_fd(), (&mut v as *mut u64).cast(), 8) };
    }

    pub fn as_raw_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        self.fd.as_raw_fd()
    }
}

/// The interface between a shard's loop and the kernel. The loop, once per iteration:
/// `recv_batch` (hand datagrams to the core), fill `tx_batch()` from the core, `flush`, then
/// `wait` until the next datagram, wake-up or deadline.
pub trait IoBackend {
    /// Which backend this is.
    fn kind(&self) -> IoKind;
    /// The bound UDP address.
    fn local_addr(&self) -> SocketAddr;
    /// A waker other threads use to interrupt `wait`.
    fn waker(&self) -> Waker;
    /// Hands every datagram received so far to `f` (the buffer is lent for the call and may be
    /// modified in place), without blocking. Returns how many were handed over.
    fn recv_batch<F: FnMut(RecvMeta, &mut [u8])>(&mut self, mut f: F) -> std::io::Result<usize> {
        self.recv_batch_with_tx(|meta, buf, _| f(meta, buf))
    }
    /// As [`IoBackend::recv_batch`], also lending the current tx batch, so that a datagram can be
    /// written to its destinations while its receive buffer is still lent (forwarding without an
    /// intermediate copy). The batch is not flushed during the call: what does not fit must be
    /// kept by the callback and written after `flush`.
    fn recv_batch_with_tx<F: FnMut(RecvMeta, &mut [u8], &mut TxBatch)>(
        &mut self,
        f: F,
    ) -> std::io::Result<usize>;
    /// The batch to write egress datagrams into. It is empty after `flush`.
    fn tx_batch(&mut self) -> &mut TxBatch;
    /// Sends everything in the current batch (mmsg: now; uring: queued for the next submit, which
    /// happens at the latest in `wait`). Datagrams the kernel refuses are counted, not retried.
    fn flush(&mut self) -> std::io::Result<()>;
    /// Submits pending work, then blocks until a datagram is ready, the waker fires, or
    /// `deadline` passes. Returns at once when datagrams are already waiting.
    fn wait(&mut self, deadline: Option<Instant>) -> std::io::Result<()>;
    /// Counters kept by the backend.
    fn stats(&self) -> IoStats;
}

/// Counters kept by an I/O backend.
#[derive(Debug, Clone, Copy, Default)]
pub struct IoStats {
    pub datagrams_in: u64,
    pub bytes_in: u64,
    pub datagrams_out: u64,
    pub bytes_out: u64,
    /// Datagrams larger than [`SLOT_SIZE`], dropped.
    pub truncated: u64,
    /// Datagrams the kernel refused to send (ENOBUFS, EAGAIN, unreachable).
    pub send_errors: u64,
    /// Receive buffers exhausted (uring: buffer ring empty; the multishot recv was re-armed).
    pub rx_overruns: u64,
}

/// Sizes for a backend. The defaults suit one shard forwarding a few hundred thousand packets/s.
#[derive(Debug, Clone, Copy)]
pub struct IoConfig {
    /// Socket options (buffer sizes, SO_REUSEPORT).
    pub socket: SocketOptions,
    /// uring: submission queue entries (the completion queue is sized to never overflow).
    pub uring_entries: u32,
    /// uring: receive buffers in the provided buffer ring (a power of two, at most 32768).
    pub rx_buffers: u16,
    /// mmsg: datagrams per recvmmsg call.
    pub rx_batch: usize,
    /// mmsg: recvmmsg calls per `recv_batch` at most. Both backends hand at most
    /// `rx_batch * rx_calls_per_batch` datagrams per `recv_batch`, so the shard transmits (and
    /// frees its caches) at least that often.
    pub rx_calls_per_batch: usize,
    /// Datagrams per tx batch.
    pub tx_batch: usize,
    /// uring: tx batches in rotation (one is filled while the others are in flight).
    pub tx_batches: usize,
    /// uring: set the ring up SINGLE_ISSUER + DEFER_TASKRUN (Linux 6.1; ignored where missing).
    /// The backend must then be opened on the thread that drives it and never moved.
    pub uring_defer_taskrun: bool,
    /// Use UDP GSO for runs of equal-size datagrams to one destination, where the kernel has it.
    pub gso: bool,
}

impl Default for IoConfig {
    fn default() -> Self {
        IoConfig {
            socket: SocketOptions::default(),
            uring_entries: 1024,
            rx_buffers: 4096,
            rx_batch: 64,
            rx_calls_per_batch: 4,
            tx_batch: 512,
            tx_batches: 4,
            uring_defer_taskrun: false,
            gso: true,
        }
    }
}

impl IoConfig {
    /// Checks the sizes against what the backends can handle.
    pub fn validate(&self) -> Result<(), IoError> {
        if !self.rx_buffers.is_power_of_two() || self.rx_buffers > 32768 {
            return Err(IoError::Config(
                "rx_buffers must be a power of two no larger than 32768",
            ));
        }
        if self.uring_entries == 0 || self.uring_entries > 32768 {
            return Err(IoError::Config("uring_entries must be in 1..=32768"));
        }
        if self.rx_batch == 0 || self.rx_batch > 1024 {
            return Err(IoError::Config("rx_batch must be in 1..=1024"));
        }
        if self.tx_batch == 0 || self.tx_batch > u32::MAX as usize {
            return Err(IoError::Config("tx_batch must be positive"));
        }
        if self.tx_batches < 2 || self.tx_batches > 256 {
            return Err(IoError::Config("tx_batches must be in 2..=256"));
        }
        Ok(())
    }
}

/// Errors opening a backend.
#[derive(Debug, thiserror::Error)]
pub enum IoError {
    /// The UDP socket could not be created, configured or bound.
    #[error("cannot {op} UDP socket {addr}: {source}")]
    Socket {
        op: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// io_uring is missing or lacks a feature this backend needs (seccomp, old kernel, sysctl).
    #[error("io_uring unavailable ({what}): {source}")]
    UringUnavailable {
        what: &'static str,
        source: std::io::Error,
    },
    /// Setting up epoll, the eventfd or memory failed.
    #[error("I/O setup failed: {0}")]
    Setup(std::io::Error),
    /// The configuration is out of range.
    #[error("invalid I/O configuration: {0}")]
    Config(&'static str),
}

/// Either backend, chosen at run time.
#[derive(Debug)]
pub enum Backend {
    Uring(UringIo),
    Mmsg(MmsgIo),
}

/// Opens the backend `kind` on `addr`.
pub fn open(kind: IoKind, addr: SocketAddr, cfg: &IoConfig) -> Result<Backend, IoError> {
    match kind {
        IoKind::Uring => UringIo::open(addr, cfg).map(Backend::Uring),
        IoKind::Mmsg => MmsgIo::open(addr, cfg).map(Backend::Mmsg),
    }
}

/// Opens `kind`, falling back to mmsg (with a warning) when io_uring is unavailable.
pub fn open_with_fallback(
    kind: IoKind,
    addr: SocketAddr,
    cfg: &IoConfig,
) -> Result<Backend, IoError> {
    match open(kind, addr, cfg) {
        Err(IoError::UringUnavailable { what, source }) => {
            tracing::warn!(%addr, %what, error = %source, "io_uring unavailable; using the recvmmsg/sendmmsg backend");
            open(IoKind::Mmsg, addr, cfg)
        }
        r => r,
    }
}

macro_rules! delegate {
    ($self:ident, $b:ident => $e:expr) => {
        match $self {
            Backend::Uring($b) => $e,
            Backend::Mmsg($b) => $e,
        }
    };
}

impl IoBackend for Backend {
    fn kind(&self) -> IoKind {
        delegate!(self, b => b.kind())
    }
    fn local_addr(&self) -> SocketAddr {
        delegate!(self, b => b.local_addr())
    }
    fn waker(&self) -> Waker {
        delegate!(self, b => b.waker())
    }
    #[inline]
    fn recv_batch<F: FnMut(RecvMeta, &mut [u8])>(&mut self, f: F) -> std::io::Result<usize> {
        delegate!(self, b => b.recv_batch(f))
    }
    #[inline]
    fn recv_batch_with_tx<F: FnMut(RecvMeta, &mut [u8], &mut TxBatch)>(
        &mut self,
        f: F,
    ) -> std::io::Result<usize> {
        delegate!(self, b => b.recv_batch_with_tx(f))
    }
    #[inline]
    fn tx_batch(&mut self) -> &mut TxBatch {
        delegate!(self, b => b.tx_batch())
    }
    #[inline]
    fn flush(&mut self) -> std::io::Result<()> {
        delegate!(self, b => b.flush())
    }
    #[inline]
    fn wait(&mut self, deadline: Option<Instant>) -> std::io::Result<()> {
        delegate!(self, b => b.wait(deadline))
    }
    fn stats(&self) -> IoStats {
        delegate!(self, b => b.stats())
    }
}

impl Backend {
    /// The socket's facts (granted buffer sizes, GSO support).
    pub fn socket(&self) -> &BoundSocket {
        delegate!(self, b => b.socket())
    }
}
