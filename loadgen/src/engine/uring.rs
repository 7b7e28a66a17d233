//! Receiving on many sockets through one io_uring: a multishot `recvmsg` per client socket into
//! a shared provided-buffer ring (each buffer: the `io_uring_recvmsg_out` header, the control
//! messages with the receive timestamp, then the datagram), a multishot poll on the worker's
//! waker, and one `io_uring_enter` per loop turn that waits with the loop's deadline. Compared
//! with epoll and a recvmmsg per ready socket, no system call is made per socket. Sends stay on
//! sendmmsg.

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

use io_uring::types::{Fd, SubmitArgs, Timespec};
use io_uring::{IoUring, cqueue, opcode, squeue};

use super::buf_ring::BufRing;
use super::rx_time::{CONTROL_LEN, parse_timestamp};

/// Buffer group of the receive buffers.
const BGID: u16 = 7;
/// Bytes per receive buffer (header, control messages and a datagram of up to 1968 bytes).
pub const BUF_LEN: usize = 2048;
/// `io_uring_recvmsg_out`: name, control and payload lengths, and flags.
const RECVMSG_OUT: usize = 16;
/// Where the datagram starts in a buffer (no name is asked for).
const PAYLOAD_AT: usize = RECVMSG_OUT + CONTROL_LEN;
/// user_data of the waker's poll; client tokens are below it.
const WAKE: u64 = u64::MAX;
/// user_data of cancellations (their completions are ignored).
const CANCEL: u64 = u64::MAX - 1;

/// What a completion was.
#[derive(Debug)]
pub enum Completion<'a> {
    /// A datagram for client `token`, and when it reached the socket (wall clock, ns).
    Datagram {
        token: u64,
        data: &'a mut [u8],
        timestamp: Option<u64>,
    },
    /// The waker fired.
    Wake,
}

/// The receive side of a worker over io_uring.
pub struct UringRx {
    ring: IoUring,
    bufs: BufRing,
    /// The receives' message template: no name, a control buffer (read by the kernel for
    /// every multishot receive, so it lives as long as the ring).
    msghdr: Box<libc::msghdr>,
    waker_fd: RawFd,
    /// Tokens whose multishot receive ended; the owner re-arms the live ones with
    /// [`watch`](Self::watch).
    ended: Vec<u64>,
    /// Receive stops for lack of buffers (ENOBUFS).
    pub overruns: u64,
}

impl std::fmt::Debug for UringRx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UringRx").field("bufs", &self.bufs).finish()
    }
}

impl UringRx {
    /// A ring with `buffers` receive buffers, watching `waker_fd`. Must be created on the
    /// thread that drives it (SINGLE_ISSUER, DEFER_TASKRUN where the kernel has them).
    pub fn new(buffers: u16, waker_fd: RawFd) -> io::Result<Self> {
        let entries = 4096;
        let cq = (u32::from(buffers) * 2).max(8192).next_power_of_two();
        let ring = match IoUring::builder()
            .setup_cqsize(cq)
            .setup_single_issuer()
            .setup_defer_taskrun()
            .build(entries)
        {
            Ok(r) => r,
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                IoUring::builder().setup_cqsize(cq).build(entries)?
            }
            Err(e) => return Err(e),
        };
        if !ring.params().is_feature_ext_arg() {
            return Err(io::Error::from_raw_os_error(libc::ENOSYS));
        }
        let mut bufs = BufRing::new(buffers, BUF_LEN)?;
        // SAFETY: the entry array is page-aligned, holds `count` entries and lives in `bufs`,
        // which outlives the ring (fields drop in declaration order: ring first).
        unsafe {
            ring.submitter().register_buf_ring_with_flags(
                bufs.ring_addr(),
                bufs.count(),
                BGID,
                0,
            )?;
        }
        for bid in 0..bufs.count() {
            bufs.recycle(bid);
        }
        bufs.publish();
        // SAFETY: msghdr is plain old data; all-zero is valid (no name, no iovecs).
        let mut msghdr: Box<libc::msghdr> = Box::new(unsafe { std::mem::zeroed() });
        msghdr.msg_controllen = CONTROL_LEN as _;
        let mut rx = UringRx {
            ring,
            bufs,
            msghdr,
            waker_fd,
            ended: Vec::with_capacity(1024),
            overruns: 0,
        };
        rx.arm_wake()?;
        rx.submit()?;
        Ok(rx)
    }

    fn push(&mut self, e: &squeue::Entry) -> io::Result<()> {
        for _ in 0..16 {
            // SAFETY: entries reference only descriptors that stay open while their request
            // runs (client sockets are cancelled before they close) and the buffer group.
            if unsafe { self.ring.submission().push(e) }.is_ok() {
                return Ok(());
            }
            self.submit()?;
        }
        Err(io::Error::from_raw_os_error(libc::EBUSY))
    }

    fn submit(&mut self) -> io::Result<()> {
        match self.ring.submit() {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EINTR | libc::EBUSY | libc::EAGAIN)
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn arm_wake(&mut self) -> io::Result<()> {
        let e = opcode::PollAdd::new(Fd(self.waker_fd), libc::POLLIN as u32)
            .multi(true)
            .build()
            .user_data(WAKE);
        self.push(&e)
    }

    /// Starts receiving on `fd` for client `token`.
    pub fn watch(&mut self, fd: RawFd, token: u64) -> io::Result<()> {
        let e = opcode::RecvMsgMulti::new(Fd(fd), &*self.msghdr, BGID)
            .build()
            .user_data(token);
        self.push(&e)
    }

    /// Stops receiving for `token` (call before its socket closes).
    pub fn unwatch(&mut self, token: u64) {
        let e = opcode::AsyncCancel::new(token).build().user_data(CANCEL);
        let _ = self.push(&e);
        self.ended.retain(|t| *t != token);
        // The cancellation must reach the kernel before the descriptor is closed.
        let _ = self.submit();
    }

    /// Submits pending requests and waits for a completion or `timeout`.
    pub fn wait(&mut self, timeout: Duration) -> io::Result<()> {
        let ts = Timespec::from(timeout);
        let args = SubmitArgs::new().timespec(&ts);
        match self.ring.submitter().submit_with_args(1, &args) {
            Ok(_) => Ok(()),
            Err(e) => match e.raw_os_error() {
                Some(libc::ETIME | libc::EINTR | libc::EBUSY | libc::EAGAIN) => Ok(()),
                _ => Err(e),
            },
        }
    }

    /// A token whose receive ended since the last call (see [`drain`](Self::drain)).
    pub fn pop_ended(&mut self) -> Option<u64> {
        self.ended.pop()
    }

    /// Hands every completion to `f` and returns how many there were. Receives that ended
    /// (buffers ran out, or an error) are listed for [`pop_ended`](Self::pop_ended).
    pub fn drain(&mut self, mut f: impl FnMut(Completion<'_>)) -> usize {
        let mut n = 0;
        loop {
            let Some(cqe) = self.ring.completion().next() else {
                break;
            };
            n += 1;
            let (ud, res, flags) = (cqe.user_data(), cqe.result(), cqe.flags());
            match ud {
                WAKE => {
                    if !cqueue::more(flags) {
                        let _ = self.arm_wake();
                    }
                    f(Completion::Wake);
                }
                CANCEL => {}
                token => {
                    if res >= 0
                        && let Some(bid) = cqueue::buffer_select(flags)
                    {
                        let buf = self.bufs.buf_mut(bid, res as usize);
                        if let Some((data, timestamp)) = split_recvmsg(buf) {
                            f(Completion::Datagram {
                                token,
                                data,
                                timestamp,
                            });
                        }
                        self.bufs.recycle(bid);
                    } else if res == -libc::ENOBUFS {
                        self.overruns += 1;
                    }
                    if !cqueue::more(flags) && res != -libc::ECANCELED {
                        self.ended.push(token);
                    }
                }
            }
        }
        // The kernel only takes buffers inside the next enter, so one publish suffices.
        self.bufs.publish();
        n
    }
}

/// The datagram and its timestamp in a multishot `recvmsg` buffer; `None` when the buffer is
/// too short or the datagram was cut.
fn split_recvmsg(buf: &mut [u8]) -> Option<(&mut [u8], Option<u64>)> {
    let word = |b: &[u8], at: usize| -> Option<usize> {
        Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?) as usize)
    };
    let control_len = word(buf, 4)?.min(CONTROL_LEN);
    let payload_len = word(buf, 8)?;
    let flags = word(buf, 12)? as i32;
    if flags & libc::MSG_TRUNC != 0 {
        return None;
    }
    let timestamp = parse_timestamp(buf.get(RECVMSG_OUT..RECVMSG_OUT + control_len)?);
    let data = buf.get_mut(PAYLOAD_AT..PAYLOAD_AT.checked_add(payload_len)?)?;
    Some((data, timestamp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recvmsg_buffer_splits_into_datagram_and_timestamp() {
        let mut buf = [0u8; 200];
        buf[4..8].copy_from_slice(&32u32.to_ne_bytes());
        buf[8..12].copy_from_slice(&5u32.to_ne_bytes());
        // One SCM_TIMESTAMPNS control message: 2 s and 9 ns.
        let c = &mut buf[RECVMSG_OUT..];
        c[..8].copy_from_slice(&32usize.to_ne_bytes());
        c[8..12].copy_from_slice(&libc::SOL_SOCKET.to_ne_bytes());
        c[12..16].copy_from_slice(&libc::SCM_TIMESTAMPNS.to_ne_bytes());
        c[16..24].copy_from_slice(&2i64.to_ne_bytes());
        c[24..32].copy_from_slice(&9i64.to_ne_bytes());
        buf[PAYLOAD_AT..PAYLOAD_AT + 5].copy_from_slice(b"hello");
        let n = PAYLOAD_AT + 5;
        let (data, ts) = split_recvmsg(&mut buf[..n]).unwrap();
        assert_eq!(data, b"hello");
        assert_eq!(ts, Some(2_000_000_009));
        // Without control data there is no timestamp; a cut datagram is refused.
        buf[4..8].copy_from_slice(&0u32.to_ne_bytes());
        assert_eq!(split_recvmsg(&mut buf[..n]).unwrap().1, None);
        assert!(split_recvmsg(&mut buf[..n - 1]).is_none());
        buf[12..16].copy_from_slice(&libc::MSG_TRUNC.to_ne_bytes());
        assert!(split_recvmsg(&mut buf[..n]).is_none());
    }
}
