//! The io_uring backend: one multishot recvmsg into a provided buffer ring, a `SendMsg` per egress
//! datagram (or per UDP GSO run) from a small rotation of tx batches, and a multishot poll on the
//! waker's eventfd; `wait` is one `io_uring_enter` with the deadline as its timeout.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use io_uring::types::{Fd, SubmitArgs, Timespec};
use io_uring::{IoUring, cqueue, opcode, squeue};

use super::addr::{CONTROL_SPACE, NAME_SPACE, decode_sockaddr, pktinfo_dst};
use super::buf_ring::BufRing;
use super::socket::{BoundSocket, bind_udp};
use super::tx_plan::TxPlan;
use super::{IoBackend, IoConfig, IoError, IoKind, IoStats, RecvMeta, SLOT_SIZE, TxBatch, Waker};

/// Buffer group id of the receive buffer ring.
const BGID: u16 = 0;
/// Layout of a multishot recvmsg buffer: `io_uring_recvmsg_out`, the source address, the control
/// messages, the payload.
const RECV_OUT: usize = 16;
const CONTROL_AT: usize = RECV_OUT + NAME_SPACE;
const PAYLOAD_AT: usize = CONTROL_AT + CONTROL_SPACE;
/// A buffer as offered to the kernel: a payload larger than SLOT_SIZE comes back MSG_TRUNC.
const RX_BUF_LEN: usize = PAYLOAD_AT + SLOT_SIZE;

// user_data: kind in the top byte; for sends, the tx set and the message index.
const KIND_TX: u64 = 1;
const KIND_RECV: u64 = 2;
const KIND_WAKE: u64 = 3;
const KIND_CANCEL: u64 = 4;
const UD_RECV: u64 = KIND_RECV << 56;
const UD_WAKE: u64 = KIND_WAKE << 56;
const UD_CANCEL: u64 = KIND_CANCEL << 56;

#[inline]
const fn ud_tx(set: usize, msg: usize) -> u64 {
    (KIND_TX << 56) | ((set as u64) << 32) | msg as u64
}

/// One tx batch and the send messages built from it; reusable once `inflight` is zero.
struct TxSet {
    batch: TxBatch,
    plan: TxPlan,
    inflight: u32,
}

/// io_uring backend.
pub struct UringIo {
    // Declared first so that it is dropped first: the ring must be gone before the memory it
    // references (buffer ring, tx sets, msghdr) is freed.
    ring: IoUring,
    sock: BoundSocket,
    waker: Waker,
    bufs: BufRing,
    /// Template for the multishot recvmsg: only the name and control lengths matter.
    recv_msghdr: Box<libc::msghdr>,
    recv_armed: bool,
    wake_armed: bool,
    woke: bool,
    /// Errno of the last failed receive completion (0 when none), for the open-time probe.
    last_recv_err: i32,
    /// Receive completions reaped while looking for something else (res, flags); each holds a
    /// buffer, so there are never more than the ring has buffers.
    stash: VecDeque<(i32, u32)>,
    sets: Box<[TxSet]>,
    current: usize,
    gso: bool,
    /// Most datagrams one `recv_batch` hands over (the rest wait in `stash`).
    max_per_call: usize,
    stats: IoStats,
}

// SAFETY: the raw pointers inside (msghdr, tx plans, buffer ring) point only into heap memory owned
// by this struct; the ring is set up without SINGLE_ISSUER, so any one thread at a time may drive it.
unsafe impl Send for UringIo {}

impl std::fmt::Debug for UringIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UringIo")
            .field("local_addr", &self.sock.local_addr)
            .field("rx_buffers", &self.bufs.count())
            .field("gso", &self.gso)
            .finish()
    }
}

fn unavailable(what: &'static str) -> impl FnOnce(std::io::Error) -> IoError {
    move |source| IoError::UringUnavailable { what, source }
}

impl UringIo {
    /// Sets up the ring (failures there are [`IoError::UringUnavailable`]), binds `addr`, and arms
    /// the receive and the waker.
    pub fn open(addr: SocketAddr, cfg: &IoConfig) -> Result<Self, IoError> {
        cfg.validate()?;
        let ring = build_ring(cfg)?;
        if !ring.params().is_feature_ext_arg() {
            return Err(IoError::UringUnavailable {
                what: "IORING_FEAT_EXT_ARG (Linux 5.11)",
                source: std::io::Error::from_raw_os_error(libc::ENOSYS),
            });
        }
        let mut probe = io_uring::Probe::new();
        ring.submitter()
            .register_probe(&mut probe)
            .map_err(unavailable("probe"))?;
        for (code, what) in [
            (opcode::RecvMsg::CODE, "IORING_OP_RECVMSG"),
            (opcode::SendMsg::CODE, "IORING_OP_SENDMSG"),
            (opcode::PollAdd::CODE, "IORING_OP_POLL_ADD"),
            (opcode::AsyncCancel::CODE, "IORING_OP_ASYNC_CANCEL"),
        ] {
            if !probe.is_supported(code) {
                return Err(IoError::UringUnavailable {
                    what,
                    source: std::io::Error::from_raw_os_error(libc::ENOSYS),
                });
            }
        }
        let mut bufs = BufRing::new(cfg.rx_buffers, RX_BUF_LEN).map_err(IoError::Setup)?;
        // SAFETY: the entry array is page-aligned, holds `count` entries and lives in `bufs`,
        // which the struct keeps until after the ring is closed (see Drop).
        unsafe {
            ring.submitter()
                .register_buf_ring_with_flags(bufs.ring_addr(), bufs.count(), BGID, 0)
        }
        .map_err(unavailable("provided buffer ring (Linux 5.19)"))?;
        for bid in 0..bufs.count() {
            bufs.recycle(bid);
        }
        bufs.publish();

        let sock = bind_udp(addr, &cfg.socket)?;
        let waker = Waker::new().map_err(IoError::Setup)?;
        // SAFETY: msghdr is plain old data; all-zero is valid.
        let mut recv_msghdr: Box<libc::msghdr> = Box::new(unsafe { std::mem::zeroed() });
        recv_msghdr.msg_namelen = NAME_SPACE as libc::socklen_t;
        recv_msghdr.msg_controllen = CONTROL_SPACE;
        let sets = (0..cfg.tx_batches)
            .map(|_| TxSet {
                batch: TxBatch::new(cfg.tx_batch),
                plan: TxPlan::new(cfg.tx_batch),
                inflight: 0,
            })
            .collect();
        let gso = cfg.gso && sock.gso;
        let mut io = UringIo {
            ring,
            sock,
            waker,
            bufs,
            recv_msghdr,
            recv_armed: false,
            wake_armed: false,
            woke: false,
            last_recv_err: 0,
            stash: VecDeque::with_capacity(cfg.rx_buffers as usize + 64),
            sets,
            current: 0,
            gso,
            max_per_call: (cfg.rx_batch * cfg.rx_calls_per_batch).max(1),
            stats: IoStats::default(),
        };
        io.arm_recv();
        io.arm_wake();
        io.submit().map_err(unavailable("submit"))?;
        io.reap();
        // Kernels before 6.0 reject the multishot flag when the request is prepared.
        if io.last_recv_err == libc::EINVAL {
            return Err(IoError::UringUnavailable {
                what: "multishot recvmsg (Linux 6.0)",
                source: std::io::Error::from_raw_os_error(libc::EINVAL),
            });
        }
        tracing::info!(
            local = %io.sock.local_addr, rcvbuf = io.sock.recv_buffer, sndbuf = io.sock.send_buffer,
            rx_buffers = cfg.rx_buffers, gso = io.gso, "io_uring backend open"
        );
        Ok(io)
    }

    /// The socket's facts (granted buffer sizes, GSO support).
    pub fn socket(&self) -> &BoundSocket {
        &self.sock
    }

    /// Whether sends use UDP GSO.
    pub fn gso(&self) -> bool {
        self.gso
    }

    /// Queues one entry, submitting to make room. False when the kernel keeps refusing.
    fn push(&mut self, e: &squeue::Entry) -> bool {
        for _ in 0..64 {
            // SAFETY: every entry pushed references memory owned by `self` that outlives the
            // request (buffers, msghdrs, the eventfd via `self.waker`).
            if unsafe { self.ring.submission().push(e) }.is_ok() {
                return true;
            }
            if self.submit().is_err() {
                // The queue stays full only while the kernel refuses submissions; reap for room.
                self.reap();
            }
        }
        false
    }

    fn arm_recv(&mut self) {
        let e = opcode::RecvMsgMulti::new(Fd(self.sock.fd()), &*self.recv_msghdr, BGID)
            .build()
            .user_data(UD_RECV);
        self.recv_armed = self.push(&e);
    }

    fn arm_wake(&mut self) {
        let e = opcode::PollAdd::new(Fd(self.waker.as_raw_fd()), libc::POLLIN as u32)
            .multi(true)
            .build()
            .user_data(UD_WAKE);
        self.wake_armed = self.push(&e);
    }

    fn submit(&mut self) -> std::io::Result<usize> {
        loop {
            match self.ring.submit() {
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                r => return r,
            }
        }
    }

    /// Submits without waiting; a kernel that is momentarily busy (EBUSY/EAGAIN while completions
    /// back up) is not an error: the entries stay queued for the next enter.
    fn submit_now(&mut self) -> std::io::Result<()> {
        match self.submit() {
            Err(e) if !matches!(e.raw_os_error(), Some(libc::EBUSY | libc::EAGAIN)) => Err(e),
            _ => Ok(()),
        }
    }

    /// Takes every completion off the queue: sends and wake-ups are settled here, receives are
    /// stashed for `recv_batch` (they hold buffers).
    fn reap(&mut self) {
        let mut cq = self.ring.completion();
        cq.sync();
        for cqe in &mut cq {
            let (ud, res, flags) = (cqe.user_data(), cqe.result(), cqe.flags());
            match ud >> 56 {
                KIND_RECV => {
                    if !cqueue::more(flags) {
                        self.recv_armed = false;
                    }
                    if res < 0 {
                        self.last_recv_err = -res;
                        match -res {
                            libc::ENOBUFS => self.stats.rx_overruns += 1,
                            libc::ECANCELED => {}
                            e => tracing::debug!(errno = e, "multishot recvmsg ended"),
                        }
                    } else if let Some(bid) = cqueue::buffer_select(flags) {
                        if self.stash.len() < self.stash.capacity() {
                            self.stash.push_back((res, flags));
                        } else {
                            // Cannot happen while the stash outsizes the ring; never grow it.
                            self.stats.rx_overruns += 1;
                            self.bufs.recycle(bid);
                            self.bufs.publish();
                        }
                    }
                }
                KIND_TX => {
                    let set = ((ud >> 32) & 0xff_ffff) as usize;
                    let msg = (ud & 0xffff_ffff) as usize;
                    let Some(s) = self.sets.get_mut(set) else {
                        continue;
                    };
                    let segs = s.plan.segments(msg) as u64;
                    if res < 0 {
                        self.stats.send_errors += segs;
                        if -res == libc::EIO && segs > 1 && self.gso {
                            tracing::warn!(local = %self.sock.local_addr, "UDP GSO send failed with EIO; GSO disabled");
                            self.gso = false;
                        }
                    } else {
                        self.stats.datagrams_out += segs;
                        self.stats.bytes_out += res as u64;
                    }
                    s.inflight = s.inflight.saturating_sub(1);
                    if s.inflight == 0 {
                        s.batch.clear();
                    }
                }
                KIND_WAKE => {
                    if !cqueue::more(flags) {
                        self.wake_armed = false;
                    }
                    if res >= 0 {
                        self.waker.drain();
                        self.woke = true;
                    }
                }
                _ => {} // cancellations
            }
        }
    }

    /// Enters the kernel once: submits and waits for one completion or the timeout.
    ///
    /// Sends submitted here usually complete within the call, so their completions can end the
    /// wait at once and `wait` enters again. Asking for one completion beyond the queued sends
    /// saves that second entry but measured slower on loopback echo (docs/adr/0002-io-backend.md).
    fn enter(&mut self, timeout: Option<std::time::Duration>) -> std::io::Result<()> {
        let r = match timeout {
            None => self.ring.submit_and_wait(1),
            Some(t) => {
                let ts = Timespec::from(t);
                let args = SubmitArgs::new().timespec(&ts);
                self.ring.submitter().submit_with_args(1, &args)
            }
        };
        match r {
            Ok(_) => Ok(()),
            Err(e) => match e.raw_os_error() {
                Some(libc::ETIME | libc::EINTR | libc::EBUSY | libc::EAGAIN) => Ok(()),
                _ => Err(e),
            },
        }
    }

    fn rearm(&mut self) {
        if !self.recv_armed {
            self.arm_recv();
        }
        if !self.wake_armed {
            self.arm_wake();
        }
    }
}

fn build_ring(cfg: &IoConfig) -> Result<IoUring, IoError> {
    let cq = (cfg.uring_entries as usize * 2)
        .max(cfg.rx_buffers as usize + cfg.tx_batches * cfg.tx_batch + 64)
        .next_power_of_two()
        .min(1 << 20) as u32;
    // SINGLE_ISSUER + DEFER_TASKRUN (6.1): completions are posted only when this thread enters
    // the ring, in one batch. Only where asked: the ring is then bound to the creating thread.
    if cfg.uring_defer_taskrun {
        match IoUring::builder()
            .setup_cqsize(cq)
            .setup_single_issuer()
            .setup_defer_taskrun()
            .setup_taskrun_flag()
            .build(cfg.uring_entries)
        {
            Ok(r) => return Ok(r),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
            Err(e) => return Err(unavailable("io_uring_setup")(e)),
        }
    }
    // COOP_TASKRUN (5.19) spares the thread needless interrupts; retry without it on older kernels.
    match IoUring::builder()
        .setup_cqsize(cq)
        .setup_coop_taskrun()
        .setup_taskrun_flag()
        .build(cfg.uring_entries)
    {
        Ok(r) => Ok(r),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => IoUring::builder()
            .setup_cqsize(cq)
            .build(cfg.uring_entries)
            .map_err(unavailable("io_uring_setup")),
        Err(e) => Err(unavailable("io_uring_setup")(e)),
    }
}

impl IoBackend for UringIo {
    fn kind(&self) -> IoKind {
        IoKind::Uring
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
        self.reap();
        let mut handed = 0;
        while handed < self.max_per_call
            && let Some((res, flags)) = self.stash.pop_front()
        {
            let Some(bid) = cqueue::buffer_select(flags) else {
                continue;
            };
            let buf = self.bufs.buf_mut(bid);
            let used = (res as usize).min(buf.len());
            if used >= PAYLOAD_AT {
                let word = |i: usize| {
                    u32::from_ne_bytes([buf[i], buf[i + 1], buf[i + 2], buf[i + 3]]) as usize
                };
                let (namelen, controllen, payloadlen, msg_flags) =
                    (word(0), word(4), word(8), word(12));
                if msg_flags & libc::MSG_TRUNC as usize != 0 || payloadlen > SLOT_SIZE {
                    self.stats.truncated += 1;
                } else {
                    let src = decode_sockaddr(&buf[RECV_OUT..RECV_OUT + namelen.min(NAME_SPACE)]);
                    let dst_ip =
                        pktinfo_dst(&buf[CONTROL_AT..CONTROL_AT + controllen.min(CONTROL_SPACE)]);
                    let len = payloadlen.min(used - PAYLOAD_AT);
                    if let Some(src) = src {
                        self.stats.datagrams_in += 1;
                        self.stats.bytes_in += len as u64;
                        f(
                            RecvMeta { src, dst_ip },
                            &mut buf[PAYLOAD_AT..PAYLOAD_AT + len],
                            &mut self.sets[self.current].batch,
                        );
                        handed += 1;
                    }
                }
            }
            self.bufs.recycle(bid);
            self.bufs.publish();
        }
        if !self.recv_armed {
            self.arm_recv();
        }
        Ok(handed)
    }

    fn tx_batch(&mut self) -> &mut TxBatch {
        &mut self.sets[self.current].batch
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let cur = self.current;
        if self.sets[cur].batch.is_empty() {
            return Ok(());
        }
        let fd = Fd(self.sock.fd());
        let ipv6 = self.sock.is_ipv6();
        let set = &mut self.sets[cur];
        let n = set.plan.build(&set.batch, ipv6, self.gso);
        let mut pushed = 0;
        {
            let (submitter, mut sq, _) = self.ring.split();
            while pushed < n {
                let e = opcode::SendMsg::new(fd, self.sets[cur].plan.msghdr(pushed))
                    .build()
                    .user_data(ud_tx(cur, pushed));
                // SAFETY: the msghdr, its iovecs, address and cmsg live in `self.sets[cur]`, which is
                // not reused or freed until this message's completion is reaped.
                if unsafe { sq.push(&e) }.is_ok() {
                    pushed += 1;
                    continue;
                }
                sq.sync();
                match submitter.submit() {
                    Ok(_) => {}
                    Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
                    Err(_) => break,
                }
                sq.sync();
            }
        }
        for m in pushed..n {
            self.stats.send_errors += self.sets[cur].plan.segments(m) as u64;
        }
        self.sets[cur].inflight = pushed as u32;
        if pushed == 0 {
            self.sets[cur].batch.clear();
            return Ok(());
        }
        // Move on to a batch whose memory is not in flight, waiting for completions if needed.
        let count = self.sets.len();
        loop {
            if let Some(k) = (1..=count)
                .map(|d| (cur + d) % count)
                .find(|&k| self.sets[k].inflight == 0)
            {
                self.current = k;
                return Ok(());
            }
            self.enter(None)?;
            self.reap();
        }
    }

    fn wait(&mut self, deadline: Option<Instant>) -> std::io::Result<()> {
        loop {
            self.reap();
            if !self.stash.is_empty() || self.woke {
                self.woke = false;
                if !self.ring.submission().is_empty() {
                    self.submit_now()?;
                }
                return Ok(());
            }
            self.rearm();
            let timeout = match deadline {
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        self.submit_now()?;
                        self.reap();
                        return Ok(());
                    }
                    Some(left)
                }
                None => None,
            };
            self.enter(timeout)?;
        }
    }

    fn stats(&self) -> IoStats {
        self.stats
    }
}

impl Drop for UringIo {
    fn drop(&mut self) {
        // Stop the multishot requests and let sends finish, so the kernel holds no reference into
        // memory this struct is about to free.
        for target in [UD_RECV, UD_WAKE] {
            let e = opcode::AsyncCancel::new(target)
                .build()
                .user_data(UD_CANCEL);
            let _ = self.push(&e);
        }
        for _ in 0..200 {
            self.reap();
            self.stash.clear();
            let busy =
                self.recv_armed || self.wake_armed || self.sets.iter().any(|s| s.inflight > 0);
            if !busy {
                break;
            }
            if self
                .enter(Some(std::time::Duration::from_millis(5)))
                .is_err()
            {
                break;
            }
        }
        let _ = self.ring.submitter().unregister_buf_ring(BGID);
    }
}
