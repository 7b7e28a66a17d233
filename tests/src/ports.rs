//! Free ports for one server: an HTTP port and a contiguous UDP range (one port per shard).
//!
//! Tests run in parallel threads, and other test processes may run beside them, so ports are
//! picked at random below the kernel's ephemeral range (where peers' own ICE sockets land), probed
//! by binding, and reserved in-process until the server using them is gone. A collision with
//! another process between probe and bind is still possible; `Server::start` retries on it.

use std::collections::HashSet;
use std::hash::{BuildHasher, Hasher};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, UdpSocket};
use std::sync::{Mutex, MutexGuard};

use crate::HarnessError;

/// Ports are drawn from [LOW, HIGH): below Linux's default ephemeral range (32768–60999).
const LOW: u16 = 20000;
const HIGH: u16 = 32000;

static RESERVED: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

fn reserved() -> MutexGuard<'static, Option<HashSet<u16>>> {
    // A panic while holding the lock leaves a usable set behind; take it anyway.
    RESERVED.lock().unwrap_or_else(|e| e.into_inner())
}

fn random_u64() -> u64 {
    // RandomState is seeded randomly per instance; no extra dependency needed.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(std::process::id() as u64);
    h.finish()
}

/// A reservation of ports; released (for reuse by later servers in this process) on drop.
#[derive(Debug)]
pub struct PortReservation {
    /// The HTTP port.
    pub http: u16,
    /// First UDP port (shard 0).
    pub rtc_min: u16,
    /// Number of consecutive UDP ports.
    pub rtc_count: u16,
}

impl PortReservation {
    fn ports(&self) -> impl Iterator<Item = u16> + '_ {
        std::iter::once(self.http).chain(self.rtc_min..self.rtc_min + self.rtc_count)
    }
}

impl Drop for PortReservation {
    fn drop(&mut self) {
        let mut guard = reserved();
        if let Some(set) = guard.as_mut() {
            for p in self.ports() {
                set.remove(&p);
            }
        }
    }
}

fn tcp_free(port: u16) -> bool {
    TcpListener::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port)).is_ok()
        && TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)).is_ok()
}

fn udp_free(port: u16) -> bool {
    UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port)).is_ok()
}

/// Whether a UDP port can be bound on every address (used to check a stopped server let go).
pub fn udp_port_is_free(port: u16) -> bool {
    udp_free(port)
}

/// Whether a TCP port can be bound on every address.
pub fn tcp_port_is_free(port: u16) -> bool {
    tcp_free(port)
}

/// Reserves an HTTP port and `udp_count` consecutive UDP ports, all free right now.
pub fn reserve(udp_count: u16) -> Result<PortReservation, HarnessError> {
    let udp_count = udp_count.max(1);
    let mut rng = random_u64();
    let span = u64::from(HIGH - LOW - udp_count - 1);
    for _ in 0..200 {
        // xorshift64
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let base = LOW + (rng % span) as u16;
        let (http, rtc_min) = (base, base + 1);
        let ports = || std::iter::once(http).chain(rtc_min..rtc_min + udp_count);
        let mut guard = reserved();
        let set = guard.get_or_insert_with(HashSet::new);
        if ports().any(|p| set.contains(&p)) {
            continue;
        }
        if !(tcp_free(http) && (rtc_min..rtc_min + udp_count).all(udp_free)) {
            continue;
        }
        set.extend(ports());
        return Ok(PortReservation {
            http,
            rtc_min,
            rtc_count: udp_count,
        });
    }
    Err(HarnessError::Ports(format!(
        "no free HTTP port + {udp_count} UDP ports in {LOW}..{HIGH} after 200 tries"
    )))
}
