//! The portable backend: recvmmsg/sendmmsg on a non-blocking UDP socket, epoll over the socket and
//! the waker's eventfd. The fallback where io_uring is unavailable, and the baseline for it.

use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Instant;

use super::addr::{CONTROL_SPACE, ControlBuf, NAME_SPACE, decode_sockaddr, pktinfo_dst};
use super::socket::{BoundSocket, bind_udp};
use super::tx_plan::TxPlan;
use super::{IoBackend, IoConfig, IoError, IoKind, IoStats, RecvMeta, SLOT_SIZE, TxBatch, Waker};

const TOKEN_SOCKET: u64 = 0;
const TOKEN_WAKER: u64 = 1;

/// Receive slots handed to one `recvmmsg` call.
struct RxSlots {
    data: Box<[u8]>,
    names: Box<[[u8; NAME_SPACE]]>,
    control: Box<[ControlBuf]>,
    iovs: Box<[libc::iovec]>,
    hdrs: Box<[libc::mmsghdr]>,
}

impl RxSlots {
    fn new(count: usize) -> Self {
        let mut s = RxSlots {
            data: vec![0u8; count * SLOT_SIZE].into_boxed_slice(),
            names: vec![[0u8; NAME_SPACE]; count].into_boxed_slice(),
            control: vec![ControlBuf([0; CONTROL_SPACE]); count].into_boxed_slice(),
            iovs: vec![
                libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0
                };
                count
            ]
            .into_boxed_slice(),
            // SAFETY: mmsghdr is plain old data; all-zero is valid.
            hdrs: vec![unsafe { std::mem::zeroed::<libc::mmsghdr>() }; count].into_boxed_slice(),
        };
        // The boxed slices never move or resize, so these pointers stay valid for the struct's life.
        for i in 0..count {
            s.iovs[i] = libc::iovec {
                iov_base: s.data[i * SLOT_SIZE..].as_mut_ptr().cast(),
                iov_len: SLOT_SIZE,
            };
            let h = &mut s.hdrs[i].msg_hdr;
            h.msg_name = s.names[i].as_mut_ptr().cast();
            h.msg_iov = &mut s.iovs[i];
            h.msg_iovlen = 1;
            h.msg_control = s.control[i].0.as_mut_ptr().cast();
        }
        s
    }

    /// Restores the lengths the kernel overwrote in the previous call.
    #[inline]
    fn reset(&mut self) {
        for h in self.hdrs.iter_mut() {
            h.msg_hdr.msg_namelen = NAME_SPACE as libc::socklen_t;
            h.msg_hdr.msg_controllen = CONTROL_SPACE;
            h.msg_hdr.msg_flags = 0;
            h.msg_len = 0;
        }
    }
}

/// recvmmsg/sendmmsg backend.
pub struct MmsgIo {
    sock: BoundSocket,
    epoll: OwnedFd,
    waker: Waker,
    rx: RxSlots,
    /// recvmmsg calls per `recv_batch` at most, so a flood cannot starve the rest of the loop.
    max_rx_calls: usize,
    tx: TxBatch,
    plan: TxPlan,
    gso: bool,
    stats: IoStats,
    has_pwait2: bool,
}

// SAFETY: the raw pointers inside `rx` and `plan` point only into heap memory owned by this struct
// (and into `tx`), never into another thread's data; moving the struct does not move that memory.
unsafe impl Send for MmsgIo {}

impl std::fmt::Debug for MmsgIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MmsgIo")
            .field("local_addr", &self.sock.local_addr)
            .field("gso", &self.gso)
            .finish()
    }
}

impl MmsgIo {
    /// Binds `addr` and sets up epoll over the socket and a new waker.
    pub fn open(addr: SocketAddr, cfg: &IoConfig) -> Result<Self, IoError> {
        cfg.validate()?;
        let sock = bind_udp(addr, &cfg.socket)?;
        let waker = Waker::new().map_err(IoError::Setup)?;
        // SAFETY: plain epoll_create1 call; the result is checked.
        let efd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if efd < 0 {
            return Err(IoError::Setup(std::io::Error::last_os_error()));
        }
        // SAFETY: `efd` is a fresh descriptor that nothing else owns.
        let epoll = unsafe { OwnedFd::from_raw_fd(efd) };
        for (fd, token) in [(sock.fd(), TOKEN_SOCKET), (waker.as_raw_fd(), TOKEN_WAKER)] {
            let mut ev = libc::epoll_event {
                events: libc::EPOLLIN as u32,
                u64: token,
            };
            // SAFETY: registers a live descriptor with a live epoll instance.
            if unsafe { libc::epoll_ctl(efd, libc::EPOLL_CTL_ADD, fd, &mut ev) } < 0 {
                return Err(IoError::Setup(std::io::Error::last_os_error()));
            }
        }
        tracing::info!(
            local = %sock.local_addr, rcvbuf = sock.recv_buffer, sndbuf = sock.send_buffer, gso = sock.gso,
            "mmsg backend open"
        );
        let gso = cfg.gso && sock.gso;
        Ok(MmsgIo {
            sock,
            epoll,
            waker,
            rx: RxSlots::new(cfg.rx_batch),
            max_rx_calls: cfg.rx_calls_per_batch.max(1),
            tx: TxBatch::new(cfg.tx_batch),
            plan: TxPlan::new(cfg.tx_batch),
            gso,
            stats: IoStats::default(),
            has_pwait2: true,
        })
    }

    /// The socket's facts (granted buffer sizes, GSO support).
    pub fn socket(&self) -> &BoundSocket {
        &self.sock
    }

    /// Whether sends use UDP GSO.
    pub fn gso(&self) -> bool {
        self.gso
    }

    fn epoll_wait(
        &mut self,
        timeout: Option<std::time::Duration>,
        events: &mut [libc::epoll_event],
    ) -> i32 {
        let efd = self.epoll.as_raw_fd();
        let max = events.len() as i32;
        if self.has_pwait2 {
            let ts = timeout.map(|t| libc::timespec {
                tv_sec: t.as_secs().min(i64::MAX as u64) as libc::time_t,
                tv_nsec: t.subsec_nanos() as libc::c_long,
            });
            let tsp = ts
                .as_ref()
                .map_or(std::ptr::null(), |t| t as *const libc::timespec);
            // SAFETY: `events` is a live buffer of `max` entries; `tsp` is null or points to `ts`.
            let n =
                unsafe { libc::epoll_pwait2(efd, events.as_mut_ptr(), max, tsp, std::ptr::null()) };
            if n >= 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ENOSYS) {
                return n;
            }
            self.has_pwait2 = false;
        }
        // Millisecond resolution: round up so a deadline is never returned early.
        let ms = timeout.map_or(-1, |t| {
            t.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as i32
        });
        // SAFETY: `events` is a live buffer of `max` entries.
        unsafe { libc::epoll_wait(efd, events.as_mut_ptr(), max, ms) }
    }
}

impl IoBackend for MmsgIo {
    fn kind(&self) -> IoKind {
        IoKind::Mmsg
    }

    fn local_addr(&self) -> SocketAddr {
        self.sock.local_addr
    }

    fn waker(&self) -> Waker {
        self.waker.clone()
    }

    fn recv_batch_with_tx<F: FnMut(RecvMeta, &mut [u8], &mut TxBatch)>(
        &mut self,
        mut f: F,
    ) -> std::io::Result<usize> {
        let fd = self.sock.fd();
        let slots = self.rx.hdrs.len();
        let mut handed = 0;
        for _ in 0..self.max_rx_calls {
            self.rx.reset();
            // SAFETY: every header points at live slot, name and control memory owned by `self.rx`
            // with the lengths `reset` wrote.
            let n = unsafe {
                libc::recvmmsg(
                    fd,
                    self.rx.hdrs.as_mut_ptr(),
                    slots as libc::c_uint,
                    libc::MSG_DONTWAIT,
                    std::ptr::null_mut(),
                )
            };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                match e.raw_os_error() {
                    Some(libc::EAGAIN) => break,
                    Some(libc::EINTR) => continue,
                    // An ICMP error queued for the socket: nothing to receive this call.
                    Some(libc::ECONNREFUSED | libc::EHOSTUNREACH | libc::ENETUNREACH) => continue,
                    _ => return Err(e),
                }
            }
            let n = n as usize;
            for i in 0..n {
                let h = &self.rx.hdrs[i];
                let len = h.msg_len as usize;
                if h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
                    self.stats.truncated += 1;
                    continue;
                }
                let name = &self.rx.names[i][..(h.msg_hdr.msg_namelen as usize).min(NAME_SPACE)];
                let Some(src) = decode_sockaddr(name) else {
                    continue;
                };
                let control = &self.rx.control[i].0[..h.msg_hdr.msg_controllen.min(CONTROL_SPACE)];
                let meta = RecvMeta {
                    src,
                    dst_ip: pktinfo_dst(control),
                };
                self.stats.datagrams_in += 1;
                self.stats.bytes_in += len as u64;
                f(
                    meta,
                    &mut self.rx.data[i * SLOT_SIZE..i * SLOT_SIZE + len],
                    &mut self.tx,
                );
                handed += 1;
            }
            if n < slots {
                break; // the queue is drained
            }
        }
        Ok(handed)
    }

    fn tx_batch(&mut self) -> &mut TxBatch {
        &mut self.tx
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.tx.is_empty() {
            return Ok(());
        }
        let fd = self.sock.fd();
        let total = self.plan.build(&self.tx, self.sock.is_ipv6(), self.gso);
        let mut i = 0;
        while i < total {
            let hdrs = self.plan.mmsghdrs();
            // SAFETY: headers `i..total` were built from the live plan and `self.tx`, which stay
            // unchanged during the call.
            let n = unsafe {
                libc::sendmmsg(fd, hdrs[i..].as_mut_ptr(), (total - i) as libc::c_uint, 0)
            };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                match e.raw_os_error() {
                    Some(libc::EINTR) => continue,
                    Some(libc::EAGAIN) => {
                        // Socket buffer full: the rest of the batch would be refused too.
                        for m in i..total {
                            self.stats.send_errors += self.plan.segments(m) as u64;
                        }
                        break;
                    }
                    Some(libc::EIO) if self.plan.segments(i) > 1 => {
                        // The device cannot segment: stop using GSO on this socket.
                        tracing::warn!(local = %self.sock.local_addr, "UDP GSO send failed with EIO; GSO disabled");
                        self.gso = false;
                        self.stats.send_errors += self.plan.segments(i) as u64;
                        i += 1;
                    }
                    _ => {
                        self.stats.send_errors += self.plan.segments(i) as u64;
                        i += 1;
                    }
                }
                continue;
            }
            let n = n as usize;
            for m in i..i + n {
                self.stats.bytes_out += self.plan.sent_len(m) as u64;
                self.stats.datagrams_out += self.plan.segments(m) as u64;
            }
            i += n;
        }
        self.tx.clear();
        Ok(())
    }

    fn wait(&mut self, deadline: Option<Instant>) -> std::io::Result<()> {
        let timeout = match deadline {
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok(());
                }
                Some(left)
            }
            None => None,
        };
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; 2];
        let n = self.epoll_wait(timeout, &mut events);
        if n < 0 {
            let e = std::io::Error::last_os_error();
            return if e.raw_os_error() == Some(libc::EINTR) {
                Ok(())
            } else {
                Err(e)
            };
        }
        for ev in &events[..n as usize] {
            if { ev.u64 } == TOKEN_WAKER {
                self.waker.drain();
            }
        }
        Ok(())
    }

    fn stats(&self) -> IoStats {
        self.stats
    }
}
