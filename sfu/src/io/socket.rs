//! The shard's UDP socket: bound non-blocking (IPv4 or IPv6), socket buffers as large as the host
//! grants, IP_PKTINFO / IPV6_RECVPKTINFO (RFC 3542) for the local address, optional SO_REUSEPORT.

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use super::IoError;

// Generic Linux values (x86, arm, riscv, powerpc); libc does not export them for glibc targets.
const SO_SNDBUFFORCE: libc::c_int = 32;
const SO_RCVBUFFORCE: libc::c_int = 33;
/// UDP generic segmentation offload (Linux 4.18): the segment size, as a socket option or cmsg.
pub(crate) const UDP_SEGMENT: libc::c_int = 103;

/// What to ask of the socket.
#[derive(Debug, Clone, Copy)]
pub struct SocketOptions {
    /// Requested SO_RCVBUF in bytes (the kernel may grant less, and doubles what it grants).
    pub recv_buffer: usize,
    /// Requested SO_SNDBUF in bytes.
    pub send_buffer: usize,
    /// Sets SO_REUSEPORT so several sockets may share the port.
    pub reuse_port: bool,
}

impl Default for SocketOptions {
    fn default() -> Self {
        SocketOptions {
            recv_buffer: 16 << 20,
            send_buffer: 16 << 20,
            reuse_port: false,
        }
    }
}

/// A bound UDP socket with the facts the backends need about it.
#[derive(Debug)]
pub struct BoundSocket {
    /// The socket (non-blocking).
    pub socket: UdpSocket,
    /// The address actually bound (port resolved when 0 was asked for).
    pub local_addr: SocketAddr,
    /// SO_RCVBUF as granted (the kernel's doubled figure, as getsockopt reports it).
    pub recv_buffer: usize,
    /// SO_SNDBUF as granted.
    pub send_buffer: usize,
    /// Whether UDP_SEGMENT (GSO) is available on this socket.
    pub gso: bool,
}

impl BoundSocket {
    /// The raw descriptor.
    pub fn fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }

    /// Whether the socket is AF_INET6 (IPv4 destinations are then written v4-mapped).
    pub fn is_ipv6(&self) -> bool {
        self.local_addr.is_ipv6()
    }
}

/// Creates, configures and binds a non-blocking UDP socket.
pub fn bind_udp(addr: SocketAddr, opts: &SocketOptions) -> Result<BoundSocket, IoError> {
    let err = |op: &'static str| IoError::Socket {
        op,
        addr,
        source: std::io::Error::last_os_error(),
    };
    let family = if addr.is_ipv6() {
        libc::AF_INET6
    } else {
        libc::AF_INET
    };
    // SAFETY: plain socket(2) call; the result is checked.
    let fd = unsafe {
        libc::socket(
            family,
            libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        return Err(err("create"));
    }
    // SAFETY: `fd` is a fresh descriptor that nothing else owns.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };

    if opts.reuse_port {
        set_int(fd, libc::SOL_SOCKET, libc::SO_REUSEPORT, 1).map_err(|source| IoError::Socket {
            op: "set SO_REUSEPORT on",
            addr,
            source,
        })?;
    }
    let recv_buffer = grow_buffer(fd, SO_RCVBUFFORCE, libc::SO_RCVBUF, opts.recv_buffer);
    let send_buffer = grow_buffer(fd, SO_SNDBUFFORCE, libc::SO_SNDBUF, opts.send_buffer);

    if addr.is_ipv6() {
        set_int(fd, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, 1).map_err(|source| {
            IoError::Socket {
                op: "set IPV6_RECVPKTINFO on",
                addr,
                source,
            }
        })?;
        // Dual-stack sockets also see IPv4 datagrams; ask for their local address too.
        let _ = set_int(fd, libc::IPPROTO_IP, libc::IP_PKTINFO, 1);
    } else {
        set_int(fd, libc::IPPROTO_IP, libc::IP_PKTINFO, 1).map_err(|source| IoError::Socket {
            op: "set IP_PKTINFO on",
            addr,
            source,
        })?;
    }

    let (storage, len) = super::addr::encode_sockaddr(addr, addr.is_ipv6());
    // SAFETY: `storage` holds a valid sockaddr of `len` bytes for this family.
    let rc = unsafe { libc::bind(fd, (&storage as *const libc::sockaddr_in6).cast(), len) };
    if rc < 0 {
        return Err(err("bind"));
    }
    let gso = get_int(fd, libc::SOL_UDP, UDP_SEGMENT).is_ok();
    let socket = UdpSocket::from(owned);
    let local_addr = socket.local_addr().map_err(|source| IoError::Socket {
        op: "query",
        addr,
        source,
    })?;
    Ok(BoundSocket {
        socket,
        local_addr,
        recv_buffer,
        send_buffer,
        gso,
    })
}

/// Sets a buffer size: the privileged FORCE option first (ignores rmem_max/wmem_max), then the
/// ordinary one (clamped by the kernel). Returns what getsockopt reports afterwards.
fn grow_buffer(fd: RawFd, force: libc::c_int, plain: libc::c_int, want: usize) -> usize {
    let want = want.min(i32::MAX as usize / 2) as libc::c_int;
    if set_int(fd, libc::SOL_SOCKET, force, want).is_err() {
        let _ = set_int(fd, libc::SOL_SOCKET, plain, want);
    }
    get_int(fd, libc::SOL_SOCKET, plain)
        .map(|v| v.max(0) as usize)
        .unwrap_or(0)
}

pub(crate) fn set_int(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> std::io::Result<()> {
    // SAFETY: passes a pointer to a live c_int and its size.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

pub(crate) fn get_int(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
) -> std::io::Result<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: passes a pointer to a live c_int and its size.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            level,
            name,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(value)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn binds_ipv4_with_pktinfo_and_reports_buffers() {
        let s = bind_udp("127.0.0.1:0".parse().unwrap(), &SocketOptions::default()).unwrap();
        assert_ne!(s.local_addr.port(), 0);
        assert!(s.recv_buffer > 0 && s.send_buffer > 0);
        assert_eq!(
            get_int(s.fd(), libc::IPPROTO_IP, libc::IP_PKTINFO).unwrap(),
            1
        );
    }

    #[test]
    fn binds_ipv6_with_recvpktinfo() {
        let Ok(s) = bind_udp("[::1]:0".parse().unwrap(), &SocketOptions::default()) else {
            return; // host without IPv6 loopback
        };
        assert!(s.is_ipv6());
        assert_eq!(
            get_int(s.fd(), libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO).unwrap(),
            1
        );
    }

    #[test]
    fn reuse_port_lets_two_sockets_share_a_port() {
        let opts = SocketOptions {
            reuse_port: true,
            ..SocketOptions::default()
        };
        let a = bind_udp("127.0.0.1:0".parse().unwrap(), &opts).unwrap();
        let b = bind_udp(a.local_addr, &opts).unwrap();
        assert_eq!(a.local_addr, b.local_addr);
        let plain = SocketOptions::default();
        assert!(
            bind_udp(a.local_addr, &plain).is_err(),
            "without SO_REUSEPORT the port is taken"
        );
    }
}
