//! Connected, non-blocking UDP sockets (one per client: the server tells sessions apart by
//! source address) and fixed recvmmsg/sendmmsg batches over them (recvmmsg(2), sendmmsg(2)).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use super::rx_time::{CONTROL_LEN, parse_timestamp};

/// Bytes per receive or transmit slot.
pub const SLOT: usize = 2048;

/// A UDP socket bound to an ephemeral port.
#[derive(Debug)]
pub struct UdpSock {
    fd: OwnedFd,
    local: SocketAddr,
}

fn sockaddr_of(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_in fits in sockaddr_storage, which is suitably aligned.
            unsafe { std::ptr::write((&mut ss as *mut libc::sockaddr_storage).cast(), sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_in6 fits in sockaddr_storage, which is suitably aligned.
            unsafe { std::ptr::write((&mut ss as *mut libc::sockaddr_storage).cast(), sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (ss, len as libc::socklen_t)
}

fn addr_from(ss: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(ss.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let sin: &libc::sockaddr_in = unsafe { &*(ss as *const _ as *const libc::sockaddr_in) };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes()),
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let s: &libc::sockaddr_in6 = unsafe { &*(ss as *const _ as *const libc::sockaddr_in6) };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(s.sin6_addr.s6_addr),
                u16::from_be(s.sin6_port),
                s.sin6_flowinfo,
                s.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

fn check(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

impl UdpSock {
    /// A non-blocking socket bound to `ip` on an ephemeral port, with receive and send buffers
    /// of `buffer` bytes (as far as the kernel grants them).
    pub fn bind(ip: IpAddr, buffer: usize) -> io::Result<UdpSock> {
        let family = if ip.is_ipv4() {
            libc::AF_INET
        } else {
            libc::AF_INET6
        };
        // SAFETY: plain socket(2) call; the result is checked.
        let fd = check(unsafe {
            libc::socket(
                family,
                libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
            )
        })?;
        // SAFETY: `fd` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        for opt in [libc::SO_RCVBUF, libc::SO_SNDBUF] {
            let v = buffer.min(i32::MAX as usize) as libc::c_int;
            // SAFETY: setsockopt with a live descriptor and a c_int value of the right size.
            // Failure (a limit) leaves the default, which is fine.
            unsafe {
                libc::setsockopt(
                    fd.as_raw_fd(),
                    libc::SOL_SOCKET,
                    opt,
                    (&v as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
        }
        let (ss, len) = sockaddr_of(SocketAddr::new(ip, 0));
        // SAFETY: `ss` holds a valid address of `len` bytes.
        check(unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&ss as *const libc::sockaddr_storage).cast(),
                len,
            )
        })?;
        let local = Self::local_of(fd.as_raw_fd())?;
        Ok(UdpSock { fd, local })
    }

    fn local_of(fd: RawFd) -> io::Result<SocketAddr> {
        // SAFETY: all-zero is a valid sockaddr_storage.
        let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        // SAFETY: getsockname writes at most `len` bytes into `ss`.
        check(unsafe {
            libc::getsockname(
                fd,
                (&mut ss as *mut libc::sockaddr_storage).cast(),
                &mut len,
            )
        })?;
        addr_from(&ss).ok_or_else(|| io::Error::other("unknown address family"))
    }

    /// Restricts the socket to `peer`: sends go there, datagrams from elsewhere are dropped.
    pub fn connect(&self, peer: SocketAddr) -> io::Result<()> {
        let (ss, len) = sockaddr_of(peer);
        // SAFETY: `ss` holds a valid address of `len` bytes.
        check(unsafe {
            libc::connect(
                self.fd.as_raw_fd(),
                (&ss as *const libc::sockaddr_storage).cast(),
                len,
            )
        })?;
        Ok(())
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The descriptor.
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// The local address the kernel would use to reach `dest` (a connected probe socket; nothing is
/// sent).
pub fn route_ip(dest: SocketAddr) -> io::Result<IpAddr> {
    let any = if dest.is_ipv4() {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    } else {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    };
    let probe = UdpSock::bind(any, 0)?;
    probe.connect(dest)?;
    Ok(UdpSock::local_of(probe.fd())?.ip())
}

/// Fixed receive slots for one recvmmsg call on a connected socket (no source addresses),
/// each with room for a receive timestamp ([`super::rx_time`]).
pub struct RxBatch {
    data: Box<[u8]>,
    iovs: Box<[libc::iovec]>,
    hdrs: Box<[libc::mmsghdr]>,
    control: Box<[u8]>,
}

impl std::fmt::Debug for RxBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RxBatch")
            .field("slots", &self.hdrs.len())
            .finish()
    }
}

impl RxBatch {
    /// `slots` receive slots of [`SLOT`] bytes.
    pub fn new(slots: usize) -> Self {
        let slots = slots.max(1);
        let mut b = RxBatch {
            data: vec![0u8; slots * SLOT].into_boxed_slice(),
            iovs: vec![
                libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0
                };
                slots
            ]
            .into_boxed_slice(),
            // SAFETY: mmsghdr is plain old data; all-zero is valid.
            hdrs: vec![unsafe { std::mem::zeroed::<libc::mmsghdr>() }; slots].into_boxed_slice(),
            control: vec![0u8; slots * CONTROL_LEN].into_boxed_slice(),
        };
        // Boxed slices never move or resize, so these pointers stay valid for the batch's life.
        for i in 0..slots {
            b.iovs[i] = libc::iovec {
                iov_base: b.data[i * SLOT..].as_mut_ptr().cast(),
                iov_len: SLOT,
            };
            b.hdrs[i].msg_hdr.msg_iov = &mut b.iovs[i];
            b.hdrs[i].msg_hdr.msg_iovlen = 1;
        }
        b
    }

    /// Receives up to one batch from `fd` without blocking; returns how many arrived (0 when
    /// none were waiting).
    pub fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        for (i, h) in self.hdrs.iter_mut().enumerate() {
            h.msg_len = 0;
            h.msg_hdr.msg_flags = 0;
            h.msg_hdr.msg_control = self.control[i * CONTROL_LEN..].as_mut_ptr().cast();
            h.msg_hdr.msg_controllen = CONTROL_LEN as _;
        }
        // SAFETY: every header points at a live slot of `data` of SLOT bytes and a control
        // buffer of CONTROL_LEN bytes; no name is requested.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                self.hdrs.as_mut_ptr(),
                self.hdrs.len() as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(0),
                _ => Err(e),
            };
        }
        Ok(n as usize)
    }

    /// Number of slots.
    pub fn capacity(&self) -> usize {
        self.hdrs.len()
    }

    /// Datagram `i` of the last `recv` (truncated ones are cut to [`SLOT`]).
    pub fn get_mut(&mut self, i: usize) -> &mut [u8] {
        let len = (self.hdrs[i].msg_len as usize).min(SLOT);
        &mut self.data[i * SLOT..i * SLOT + len]
    }

    /// When datagram `i` of the last `recv` reached the socket (wall clock, ns), if the socket
    /// timestamps.
    pub fn timestamp(&self, i: usize) -> Option<u64> {
        #[allow(clippy::unnecessary_cast)] // socklen_t or size_t, by libc target
        let len = (self.hdrs[i].msg_hdr.msg_controllen as usize).min(CONTROL_LEN);
        parse_timestamp(&self.control[i * CONTROL_LEN..i * CONTROL_LEN + len])
    }

    /// Whether datagram `i` was longer than its slot.
    pub fn truncated(&self, i: usize) -> bool {
        self.hdrs[i].msg_hdr.msg_flags & libc::MSG_TRUNC != 0
    }
}

/// Fixed transmit slots for one sendmmsg call on a connected socket.
pub struct TxBatch {
    data: Box<[u8]>,
    iovs: Box<[libc::iovec]>,
    hdrs: Box<[libc::mmsghdr]>,
    len: usize,
}

impl std::fmt::Debug for TxBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TxBatch")
            .field("slots", &self.hdrs.len())
            .field("len", &self.len)
            .finish()
    }
}

/// What one flush did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flushed {
    pub datagrams: u64,
    pub bytes: u64,
    pub errors: u64,
}

impl TxBatch {
    /// `slots` transmit slots of [`SLOT`] bytes.
    pub fn new(slots: usize) -> Self {
        let slots = slots.max(1);
        let mut b = TxBatch {
            data: vec![0u8; slots * SLOT].into_boxed_slice(),
            iovs: vec![
                libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0
                };
                slots
            ]
            .into_boxed_slice(),
            // SAFETY: mmsghdr is plain old data; all-zero is valid.
            hdrs: vec![unsafe { std::mem::zeroed::<libc::mmsghdr>() }; slots].into_boxed_slice(),
            len: 0,
        };
        // Boxed slices never move or resize, so these pointers stay valid for the batch's life.
        for i in 0..slots {
            b.iovs[i].iov_base = b.data[i * SLOT..].as_mut_ptr().cast();
            b.hdrs[i].msg_hdr.msg_iov = &mut b.iovs[i];
            b.hdrs[i].msg_hdr.msg_iovlen = 1;
        }
        b
    }

    /// Datagrams staged.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is staged.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether every slot is taken.
    pub fn is_full(&self) -> bool {
        self.len == self.hdrs.len()
    }

    /// The next free slot ([`SLOT`] bytes); [`commit`](Self::commit) makes it part of the batch.
    /// `None` when full.
    pub fn slot(&mut self) -> Option<&mut [u8]> {
        if self.is_full() {
            return None;
        }
        let i = self.len;
        Some(&mut self.data[i * SLOT..(i + 1) * SLOT])
    }

    /// Stages the slot returned by the last [`slot`](Self::slot) call with `len` bytes.
    pub fn commit(&mut self, len: usize) {
        if self.is_full() {
            return;
        }
        self.iovs[self.len].iov_len = len.min(SLOT);
        self.len += 1;
    }

    /// Sends everything staged on the connected socket `fd` and empties the batch. Datagrams the
    /// kernel refuses are counted and dropped, not retried.
    pub fn flush(&mut self, fd: RawFd) -> Flushed {
        let mut out = Flushed::default();
        let mut done = 0;
        while done < self.len {
            // SAFETY: headers `done..len` point at live iovecs over staged slots.
            let n = unsafe {
                libc::sendmmsg(
                    fd,
                    self.hdrs[done..].as_mut_ptr(),
                    (self.len - done) as libc::c_uint,
                    libc::MSG_DONTWAIT,
                )
            };
            if n <= 0 {
                let e = io::Error::last_os_error();
                if n < 0 && e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                // Drop the first datagram (refused) and go on with the rest.
                out.errors += 1;
                done += 1;
                continue;
            }
            for i in done..done + n as usize {
                out.datagrams += 1;
                out.bytes += self.iovs[i].iov_len as u64;
            }
            done += n as usize;
        }
        self.len = 0;
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests an unwrap is an assertion
mod tests {
    use super::*;

    #[test]
    fn connected_sockets_exchange_batches() {
        let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let a = UdpSock::bind(lo, 1 << 20).unwrap();
        let b = UdpSock::bind(lo, 1 << 20).unwrap();
        a.connect(b.local_addr()).unwrap();
        b.connect(a.local_addr()).unwrap();
        let mut tx = TxBatch::new(8);
        for i in 0..8u8 {
            let s = tx.slot().unwrap();
            s[..3].copy_from_slice(&[i, i, i]);
            tx.commit(3 + usize::from(i));
        }
        assert!(tx.is_full() && tx.slot().is_none());
        let f = tx.flush(a.fd());
        assert_eq!((f.datagrams, f.errors), (8, 0));
        assert_eq!(f.bytes, (0..8).map(|i| 3 + i).sum::<u64>());
        assert!(tx.is_empty());
        let mut rx = RxBatch::new(4);
        let mut got = Vec::new();
        for _ in 0..100 {
            let n = rx.recv(b.fd()).unwrap();
            for i in 0..n {
                got.push(rx.get_mut(i).to_vec());
            }
            if got.len() == 8 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert_eq!(got.len(), 8);
        assert_eq!(got[5], vec![5, 5, 5, 0, 0, 0, 0, 0]);
        assert_eq!(rx.recv(b.fd()).unwrap(), 0, "nothing left, no blocking");
    }

    #[test]
    fn a_connected_socket_ignores_other_senders() {
        let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let a = UdpSock::bind(lo, 0).unwrap();
        let b = UdpSock::bind(lo, 0).unwrap();
        let stranger = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        b.connect(a.local_addr()).unwrap();
        stranger.send_to(b"x", b.local_addr()).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let mut rx = RxBatch::new(4);
        assert_eq!(rx.recv(b.fd()).unwrap(), 0);
    }

    #[test]
    fn the_route_to_loopback_is_loopback() {
        let ip = route_ip("127.0.0.1:9".parse().unwrap()).unwrap();
        assert_eq!(ip, IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
}
