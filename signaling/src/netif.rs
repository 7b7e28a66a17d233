//! Local interface addresses, for the host candidates announced in SDP answers.

use std::net::{IpAddr, Ipv4Addr};

/// IPv4 addresses of the host's interfaces that are up (loopback included, since local browsers
/// and test peers reach the server through it).
pub fn local_ipv4_addrs() -> Vec<IpAddr> {
    let mut out = Vec::new();
    let mut ifap: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `ifap` with a list we free below; we only read it in between.
    if unsafe { libc::getifaddrs(&mut ifap) } != 0 {
        return vec![IpAddr::V4(Ipv4Addr::LOCALHOST)];
    }
    let mut cur = ifap;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned and has not been freed.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        if ifa.ifa_addr.is_null() || (ifa.ifa_flags & libc::IFF_UP as u32) == 0 {
            continue;
        }
        // SAFETY: ifa_addr is non-null and points to a sockaddr of the family it declares.
        let family = unsafe { (*ifa.ifa_addr).sa_family } as i32;
        if family == libc::AF_INET {
            // SAFETY: the family is AF_INET, so the sockaddr is a sockaddr_in.
            let sin = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in) };
            let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
            if !ip.is_unspecified() && !ip.is_link_local() && !out.contains(&IpAddr::V4(ip)) {
                out.push(IpAddr::V4(ip));
            }
        }
    }
    // SAFETY: frees the list returned by the successful getifaddrs above, exactly once.
    unsafe { libc::freeifaddrs(ifap) };
    // Loopback last: remote peers should try routable addresses first.
    out.sort_by_key(|ip| ip.is_loopback());
    if out.is_empty() {
        out.push(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_addresses_include_loopback_last() {
        let addrs = local_ipv4_addrs();
        assert!(addrs.contains(&IpAddr::V4(Ipv4Addr::LOCALHOST)));
        assert!(addrs.last().is_some_and(|a| a.is_loopback()));
    }
}
