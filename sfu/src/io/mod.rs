//! UDP I/O backends for a shard: `uring` (io_uring with multishot recvmsg into a provided buffer
//! ring and batched sendmsg) and `mmsg` (recvmmsg/sendmmsg over epoll), behind one trait.

pub mod tx_batch;

pub use tx_batch::{SLOT_SIZE, TxBatch, TxMeta};

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
    fn recv_batch<F: FnMut(RecvMeta, &mut [u8])>(&mut self, f: F) -> std::io::Result<usize>;
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
