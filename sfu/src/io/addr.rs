//! Socket addresses and control messages in kernel layout: encoding destinations (IPv4 written
//! v4-mapped on IPv6 sockets), decoding sources, and reading IP_PKTINFO / IPV6_PKTINFO (RFC 3542).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// Bytes reserved for a received source address (a `sockaddr_in6` is 28).
pub(crate) const NAME_SPACE: usize = 32;
/// Bytes reserved for received control messages: IP_PKTINFO (32) and IPV6_PKTINFO (40), which a
/// dual-stack socket may get together, with room to spare.
pub(crate) const CONTROL_SPACE: usize = 96;

const CMSG_HDR: usize = std::mem::size_of::<libc::cmsghdr>();
const CMSG_ALIGN: usize = std::mem::size_of::<usize>();

#[inline]
const fn cmsg_align(n: usize) -> usize {
    (n + CMSG_ALIGN - 1) & !(CMSG_ALIGN - 1)
}

/// Writes `addr` as a kernel sockaddr into a `sockaddr_in6`-sized container. On an IPv6 socket an
/// IPv4 address is written v4-mapped. Returns the container and the length to pass.
#[inline]
pub(crate) fn encode_sockaddr(
    addr: SocketAddr,
    ipv6_socket: bool,
) -> (libc::sockaddr_in6, libc::socklen_t) {
    // SAFETY: sockaddr_in6 is plain old data; all-zero is a valid value.
    let mut out: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
    let len = write_sockaddr(&mut out, addr, ipv6_socket);
    (out, len)
}

/// As [`encode_sockaddr`], in place.
#[inline]
pub(crate) fn write_sockaddr(
    out: &mut libc::sockaddr_in6,
    addr: SocketAddr,
    ipv6_socket: bool,
) -> libc::socklen_t {
    match addr {
        SocketAddr::V4(a) if !ipv6_socket => {
            let v4 = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_in (16 bytes, align 4) fits inside sockaddr_in6 (28 bytes, align 4).
            unsafe {
                std::ptr::write(
                    (out as *mut libc::sockaddr_in6).cast::<libc::sockaddr_in>(),
                    v4,
                )
            };
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t
        }
        SocketAddr::V4(a) => {
            *out = v6_raw(a.ip().to_ipv6_mapped(), a.port(), 0, 0);
            std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t
        }
        SocketAddr::V6(a) => {
            *out = v6_raw(*a.ip(), a.port(), a.flowinfo(), a.scope_id());
            std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t
        }
    }
}

#[inline]
fn v6_raw(ip: Ipv6Addr, port: u16, flowinfo: u32, scope_id: u32) -> libc::sockaddr_in6 {
    libc::sockaddr_in6 {
        sin6_family: libc::AF_INET6 as libc::sa_family_t,
        sin6_port: port.to_be(),
        sin6_flowinfo: flowinfo.to_be(),
        sin6_addr: libc::in6_addr {
            s6_addr: ip.octets(),
        },
        sin6_scope_id: scope_id,
    }
}

/// Reads a kernel sockaddr from raw bytes; v4-mapped IPv6 sources come back as IPv4.
#[inline]
pub(crate) fn decode_sockaddr(b: &[u8]) -> Option<SocketAddr> {
    if b.len() < 2 {
        return None;
    }
    let family = libc::sa_family_t::from_ne_bytes([b[0], b[1]]) as libc::c_int;
    match family {
        libc::AF_INET if b.len() >= 8 => {
            let port = u16::from_be_bytes([b[2], b[3]]);
            let ip = Ipv4Addr::new(b[4], b[5], b[6], b[7]);
            Some(SocketAddr::V4(SocketAddrV4::new(ip, port)))
        }
        libc::AF_INET6 if b.len() >= 28 => {
            let port = u16::from_be_bytes([b[2], b[3]]);
            let flow = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
            let ip = Ipv6Addr::from(<[u8; 16]>::try_from(&b[8..24]).ok()?);
            let scope = u32::from_ne_bytes([b[24], b[25], b[26], b[27]]);
            match ip.to_ipv4_mapped() {
                Some(v4) => Some(SocketAddr::V4(SocketAddrV4::new(v4, port))),
                None => Some(SocketAddr::V6(SocketAddrV6::new(ip, port, flow, scope))),
            }
        }
        _ => None,
    }
}

/// Finds the local destination address in received control messages (IP_PKTINFO or
/// IPV6_PKTINFO); v4-mapped addresses come back as IPv4.
#[inline]
pub(crate) fn pktinfo_dst(control: &[u8]) -> Option<IpAddr> {
    let mut off = 0;
    while off + CMSG_HDR <= control.len() {
        let h = &control[off..];
        let len = usize::from_ne_bytes(h[..CMSG_ALIGN].try_into().ok()?);
        let level = i32::from_ne_bytes(h[CMSG_ALIGN..CMSG_ALIGN + 4].try_into().ok()?);
        let ty = i32::from_ne_bytes(h[CMSG_ALIGN + 4..CMSG_ALIGN + 8].try_into().ok()?);
        if len < CMSG_HDR || len > control.len() - off {
            return None;
        }
        let data = &control[off + CMSG_HDR..off + len];
        match (level, ty) {
            // struct in_pktinfo { int ipi_ifindex; in_addr ipi_spec_dst; in_addr ipi_addr; }
            (libc::IPPROTO_IP, libc::IP_PKTINFO) if data.len() >= 12 => {
                return Some(IpAddr::V4(Ipv4Addr::new(
                    data[8], data[9], data[10], data[11],
                )));
            }
            // struct in6_pktinfo { in6_addr ipi6_addr; int ipi6_ifindex; }
            (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO) if data.len() >= 16 => {
                let ip = Ipv6Addr::from(<[u8; 16]>::try_from(&data[..16]).ok()?);
                return Some(ip.to_ipv4_mapped().map_or(IpAddr::V6(ip), IpAddr::V4));
            }
            _ => {}
        }
        off += cmsg_align(len);
    }
    None
}

/// Room for one UDP_SEGMENT control message (a u16 segment size), aligned for `cmsghdr`.
#[derive(Debug, Clone, Copy)]
#[repr(C, align(8))]
pub(crate) struct GsoCmsg([u8; GSO_CMSG_SPACE]);

/// CMSG_SPACE(sizeof(u16)).
pub(crate) const GSO_CMSG_SPACE: usize = CMSG_HDR + cmsg_align(2);

impl GsoCmsg {
    pub(crate) const fn new() -> Self {
        GsoCmsg([0; GSO_CMSG_SPACE])
    }

    /// Writes the control message for `segment` bytes per segment.
    #[inline]
    pub(crate) fn set(&mut self, segment: u16) {
        let b = &mut self.0;
        b[..CMSG_ALIGN].copy_from_slice(&(CMSG_HDR + 2).to_ne_bytes());
        b[CMSG_ALIGN..CMSG_ALIGN + 4].copy_from_slice(&libc::SOL_UDP.to_ne_bytes());
        b[CMSG_ALIGN + 4..CMSG_ALIGN + 8]
            .copy_from_slice(&super::socket::UDP_SEGMENT.to_ne_bytes());
        b[CMSG_HDR..CMSG_HDR + 2].copy_from_slice(&segment.to_ne_bytes());
    }

    pub(crate) fn as_mut_ptr(&mut self) -> *mut libc::c_void {
        self.0.as_mut_ptr().cast()
    }
}

/// Room for received control messages, aligned for `cmsghdr`.
#[derive(Debug, Clone, Copy)]
#[repr(C, align(8))]
pub(crate) struct ControlBuf(pub(crate) [u8; CONTROL_SPACE]);

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    fn roundtrip(addr: SocketAddr, v6: bool) -> SocketAddr {
        let (raw, len) = encode_sockaddr(addr, v6);
        // SAFETY: reading the bytes of a plain old data struct.
        let bytes = unsafe {
            std::slice::from_raw_parts(
                (&raw as *const libc::sockaddr_in6).cast::<u8>(),
                len as usize,
            )
        };
        decode_sockaddr(bytes).unwrap()
    }

    #[test]
    fn sockaddr_roundtrips_v4_v6_and_v4_mapped() {
        let v4: SocketAddr = "192.0.2.7:5004".parse().unwrap();
        let v6: SocketAddr = "[2001:db8::1]:443".parse().unwrap();
        assert_eq!(roundtrip(v4, false), v4);
        assert_eq!(
            roundtrip(v4, true),
            v4,
            "v4-mapped on an IPv6 socket decodes as IPv4"
        );
        assert_eq!(roundtrip(v6, true), v6);
    }

    #[test]
    fn decode_rejects_short_and_unknown_families() {
        assert!(decode_sockaddr(&[]).is_none());
        assert!(decode_sockaddr(&(libc::AF_INET6 as u16).to_ne_bytes()).is_none());
        assert!(decode_sockaddr(&[0xff; 32]).is_none());
    }

    #[test]
    fn pktinfo_parser_survives_garbage() {
        for len in 0..64 {
            let junk: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let _ = pktinfo_dst(&junk);
        }
        // A cmsg claiming a huge length must not read out of bounds.
        let mut b = [0u8; 32];
        b[..8].copy_from_slice(&usize::MAX.to_ne_bytes());
        assert!(pktinfo_dst(&b).is_none());
    }
}
