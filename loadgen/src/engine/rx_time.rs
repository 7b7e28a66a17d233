//! Kernel receive timestamps (`SO_TIMESTAMPNS`, socket(7)): when a datagram reached the socket,
//! read from its control message, and turned into an [`Instant`]. The clients of a capacity
//! class take datagrams in at that time (their rate-limited downlink, their transport-cc
//! arrival times, their frame timing), so the worker's own scheduling delays do not stretch
//! the modeled link or show as freezes.

use std::os::fd::RawFd;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Control buffer bytes per datagram: one `SCM_TIMESTAMPNS` message (16-byte header and a
/// 16-byte timespec) with room to spare.
pub const CONTROL_LEN: usize = 64;

/// Asks the kernel to timestamp every datagram `fd` receives. Failure leaves datagrams
/// without timestamps, which is fine.
pub fn enable(fd: RawFd) {
    let on: libc::c_int = 1;
    // SAFETY: setsockopt with a live descriptor and a c_int value of the right size.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
}

fn read_usize(b: &[u8]) -> Option<usize> {
    Some(usize::from_ne_bytes(b.get(..8)?.try_into().ok()?))
}

fn read_i32(b: &[u8]) -> Option<i32> {
    Some(i32::from_ne_bytes(b.get(..4)?.try_into().ok()?))
}

fn read_i64(b: &[u8]) -> Option<i64> {
    Some(i64::from_ne_bytes(b.get(..8)?.try_into().ok()?))
}

/// The `SCM_TIMESTAMPNS` time (wall clock, ns since the Unix epoch) among the control messages
/// in `control` (64-bit Linux layout: `cmsg_len` as 8 bytes, level, type, then the data, each
/// message aligned to 8 bytes).
pub fn parse_timestamp(control: &[u8]) -> Option<u64> {
    let mut at = 0;
    while at + 16 <= control.len() {
        let c = &control[at..];
        let len = read_usize(c)?;
        if len < 16 || len > c.len() {
            return None;
        }
        let (level, kind) = (read_i32(&c[8..])?, read_i32(&c[12..])?);
        if level == libc::SOL_SOCKET && kind == libc::SCM_TIMESTAMPNS && len >= 32 {
            let (sec, nsec) = (read_i64(&c[16..])?, read_i64(&c[24..])?);
            return u64::try_from(sec)
                .ok()?
                .checked_mul(1_000_000_000)?
                .checked_add(u64::try_from(nsec).ok()?);
        }
        at += len.next_multiple_of(8);
    }
    None
}

/// The monotonic and wall clocks read together, to place wall-clock timestamps on the
/// monotonic clock. Read anew for every batch, so wall-clock steps do not accumulate.
#[derive(Debug, Clone, Copy)]
pub struct ClockAnchor {
    mono: Instant,
    wall_ns: u64,
}

impl ClockAnchor {
    /// Both clocks now.
    pub fn now() -> Self {
        let mono = Instant::now();
        let wall_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        ClockAnchor { mono, wall_ns }
    }

    /// The monotonic instant of the anchor.
    pub fn mono(&self) -> Instant {
        self.mono
    }

    /// The instant of wall-clock time `ns`: at most the anchor's (a timestamp from the future
    /// is taken as now), and no more than a second before it.
    pub fn instant_of(&self, ns: u64) -> Instant {
        let ago = self.wall_ns.saturating_sub(ns).min(1_000_000_000);
        self.mono - std::time::Duration::from_nanos(ago)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests an unwrap is an assertion
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};
    use std::time::Duration;

    fn cmsg(level: i32, kind: i32, data: &[u8]) -> Vec<u8> {
        let len = 16 + data.len();
        let mut v = Vec::new();
        v.extend_from_slice(&len.to_ne_bytes());
        v.extend_from_slice(&level.to_ne_bytes());
        v.extend_from_slice(&kind.to_ne_bytes());
        v.extend_from_slice(data);
        v.resize(len.next_multiple_of(8), 0);
        v
    }

    #[test]
    fn the_timestamp_is_found_among_control_messages() {
        let mut ts = Vec::new();
        ts.extend_from_slice(&5i64.to_ne_bytes());
        ts.extend_from_slice(&7i64.to_ne_bytes());
        let mut control = cmsg(libc::IPPROTO_IP, 8, &[1, 2, 3, 4]);
        control.extend(cmsg(libc::SOL_SOCKET, libc::SCM_TIMESTAMPNS, &ts));
        assert_eq!(parse_timestamp(&control), Some(5_000_000_007));
        assert_eq!(parse_timestamp(&control[..24]), None);
        assert_eq!(parse_timestamp(&[]), None);
        assert_eq!(parse_timestamp(&[0xff; 40]), None);
    }

    #[test]
    fn a_wall_clock_time_lands_before_the_anchor() {
        let a = ClockAnchor::now();
        let t = a.instant_of(a.wall_ns - 3_000_000);
        assert_eq!(a.mono - t, Duration::from_millis(3));
        assert_eq!(a.instant_of(a.wall_ns + 5), a.mono);
        assert_eq!(a.mono - a.instant_of(0), Duration::from_secs(1));
    }

    #[test]
    fn a_timestamped_socket_reports_when_the_datagram_arrived() {
        use crate::engine::UdpSock;
        let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let a = UdpSock::bind(lo, 1 << 16).unwrap();
        let b = UdpSock::bind(lo, 1 << 16).unwrap();
        b.connect(a.local_addr()).unwrap();
        a.connect(b.local_addr()).unwrap();
        enable(a.fd());
        let mut tx = crate::engine::TxBatch::new(1);
        let mut rx = crate::engine::RxBatch::new(1);
        // The kernel turns receive timestamps on shortly after the first socket asks (until
        // then a datagram is stamped when it is read): let it, and pass a first datagram.
        std::thread::sleep(Duration::from_millis(20));
        tx.slot().unwrap()[..3].copy_from_slice(b"abc");
        tx.commit(3);
        tx.flush(b.fd());
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(rx.recv(a.fd()).unwrap(), 1);
        tx.slot().unwrap()[..3].copy_from_slice(b"abc");
        tx.commit(3);
        let sent = ClockAnchor::now();
        tx.flush(b.fd());
        // Read it 50 ms later: the timestamp says when it arrived.
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(rx.recv(a.fd()).unwrap(), 1);
        let ts = rx.timestamp(0).expect("a timestamp");
        let anchor = ClockAnchor::now();
        let at = anchor.instant_of(ts);
        assert!(
            anchor.mono - at >= Duration::from_millis(45),
            "{:?}",
            anchor.mono - at
        );
        assert!(at + Duration::from_millis(5) >= sent.mono);
    }
}
