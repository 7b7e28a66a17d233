//! Loopback tests run against both backends through the [`IoBackend`] contract.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use super::*;

fn small_cfg() -> IoConfig {
    IoConfig {
        rx_buffers: 256,
        tx_batch: 1024,
        ..IoConfig::default()
    }
}

fn open_kind(kind: IoKind, addr: &str, cfg: &IoConfig) -> Backend {
    open(kind, addr.parse().unwrap(), cfg)
        .unwrap_or_else(|e| panic!("open {kind:?} on {addr}: {e}"))
}

/// A plain socket with a large receive buffer, so bursts land in its queue.
fn plain_socket(addr: &str) -> UdpSocket {
    let opts = SocketOptions {
        recv_buffer: 8 << 20,
        send_buffer: 8 << 20,
        reuse_port: false,
    };
    let s = socket::bind_udp(addr.parse().unwrap(), &opts)
        .unwrap()
        .socket;
    s.set_nonblocking(false).unwrap();
    s
}

/// Waits and receives until `n` datagrams arrived or `limit` passed.
fn recv_n(io: &mut Backend, n: usize, limit: Duration) -> Vec<(RecvMeta, Vec<u8>)> {
    let end = Instant::now() + limit;
    let mut got = Vec::new();
    while got.len() < n && Instant::now() < end {
        io.wait(Some(end)).unwrap();
        io.recv_batch(|meta, buf| got.push((meta, buf.to_vec())))
            .unwrap();
    }
    got
}

fn receives_with_source_contents_and_dst_ip(kind: IoKind, ip: &str, cfg: &IoConfig) {
    let mut io = open_kind(kind, &format!("{ip}:0"), cfg);
    let peer = plain_socket(&format!("{ip}:0"));
    for i in 0..20u8 {
        peer.send_to(&[i; 100], io.local_addr()).unwrap();
    }
    let got = recv_n(&mut io, 20, Duration::from_secs(5));
    assert_eq!(got.len(), 20);
    for (i, (meta, data)) in got.iter().enumerate() {
        assert_eq!(meta.src, peer.local_addr().unwrap());
        assert_eq!(
            meta.dst_ip,
            Some(ip.trim_matches(['[', ']']).parse::<IpAddr>().unwrap())
        );
        assert_eq!(
            data,
            &vec![i as u8; 100],
            "datagram {i} arrives intact and in order"
        );
    }
    let st = io.stats();
    assert_eq!((st.datagrams_in, st.bytes_in, st.truncated), (20, 2000, 0));
}

fn sends_a_batch_of_1000(kind: IoKind, cfg: &IoConfig) {
    let mut io = open_kind(kind, "127.0.0.1:0", cfg);
    let peer = plain_socket("127.0.0.1:0");
    let dest = peer.local_addr().unwrap();
    let receiver = std::thread::spawn(move || {
        peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 2048];
        let mut seen = vec![false; 1000];
        for _ in 0..1000 {
            let Ok((n, _)) = peer.recv_from(&mut buf) else {
                break;
            };
            assert_eq!(n, 1200);
            let i = u16::from_be_bytes([buf[0], buf[1]]) as usize;
            assert!(
                buf[2..n].iter().all(|&b| b == i as u8),
                "payload of datagram {i} intact"
            );
            seen[i] = true;
        }
        seen.iter().filter(|&&s| s).count()
    });
    let b = io.tx_batch();
    for i in 0..1000u16 {
        assert!(b.push_with(dest, |slot| {
            slot[..2].copy_from_slice(&i.to_be_bytes());
            slot[2..1200].fill(i as u8);
            Some(1200)
        }));
    }
    io.flush().unwrap();
    assert!(
        io.tx_batch().is_empty(),
        "tx_batch after flush is an empty batch"
    );
    // uring sends are submitted at the latest by wait.
    let end = Instant::now() + Duration::from_secs(5);
    while io.stats().datagrams_out + io.stats().send_errors < 1000 && Instant::now() < end {
        io.wait(Some(Instant::now() + Duration::from_millis(10)))
            .unwrap();
        io.recv_batch(|_, _| {}).unwrap();
    }
    assert_eq!(receiver.join().unwrap(), 1000);
    let st = io.stats();
    assert_eq!(
        (st.datagrams_out, st.bytes_out, st.send_errors),
        (1000, 1_200_000, 0)
    );
}

fn waker_interrupts_wait_without_deadline(kind: IoKind, cfg: &IoConfig) {
    let mut io = open_kind(kind, "127.0.0.1:0", cfg);
    let waker = io.waker();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        waker.wake();
    });
    let start = Instant::now();
    io.wait(None).unwrap();
    let took = start.elapsed();
    t.join().unwrap();
    assert!(
        took >= Duration::from_millis(40),
        "returned before the wake-up ({took:?})"
    );
    assert!(
        took < Duration::from_secs(5),
        "the wake-up was missed ({took:?})"
    );
    // The wake-up is consumed: the next wait sleeps until its deadline.
    let start = Instant::now();
    io.wait(Some(start + Duration::from_millis(30))).unwrap();
    assert!(
        start.elapsed() >= Duration::from_millis(25),
        "a consumed wake-up fired again"
    );
}

fn wake_before_wait_is_not_lost(kind: IoKind, cfg: &IoConfig) {
    let mut io = open_kind(kind, "127.0.0.1:0", cfg);
    io.waker().wake();
    let start = Instant::now();
    io.wait(Some(start + Duration::from_secs(5))).unwrap();
    assert!(start.elapsed() < Duration::from_secs(2));
}

fn deadline_returns_on_time(kind: IoKind, cfg: &IoConfig) {
    let mut io = open_kind(kind, "127.0.0.1:0", cfg);
    for ms in [1u64, 20, 60] {
        let start = Instant::now();
        io.wait(Some(start + Duration::from_millis(ms))).unwrap();
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(ms),
            "{ms} ms deadline returned early ({took:?})"
        );
        assert!(
            took < Duration::from_millis(ms + 250),
            "{ms} ms deadline returned late ({took:?})"
        );
    }
    let start = Instant::now();
    io.wait(Some(start - Duration::from_millis(1))).unwrap();
    assert!(
        start.elapsed() < Duration::from_millis(100),
        "a past deadline returns at once"
    );
}

fn oversize_datagram_is_truncated_and_next_arrives(kind: IoKind, cfg: &IoConfig) {
    let mut io = open_kind(kind, "127.0.0.1:0", cfg);
    let peer = plain_socket("127.0.0.1:0");
    peer.send_to(&[1u8; SLOT_SIZE + 1], io.local_addr())
        .unwrap();
    peer.send_to(&[2u8; SLOT_SIZE], io.local_addr()).unwrap();
    peer.send_to(&[3u8; 64], io.local_addr()).unwrap();
    let got = recv_n(&mut io, 2, Duration::from_secs(5));
    let lens: Vec<usize> = got.iter().map(|(_, d)| d.len()).collect();
    assert_eq!(lens, [SLOT_SIZE, 64]);
    assert!(got[0].1.iter().all(|&b| b == 2) && got[1].1.iter().all(|&b| b == 3));
    assert_eq!(io.stats().truncated, 1);
}

fn wait_returns_at_once_when_datagrams_wait(kind: IoKind, cfg: &IoConfig) {
    let mut io = open_kind(kind, "127.0.0.1:0", cfg);
    let peer = plain_socket("127.0.0.1:0");
    peer.send_to(b"x", io.local_addr()).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let start = Instant::now();
    io.wait(None).unwrap();
    assert!(start.elapsed() < Duration::from_secs(1));
    assert_eq!(io.recv_batch(|_, b| assert_eq!(b, b"x")).unwrap(), 1);
}

fn gso_sends_equal_runs_as_separate_datagrams(kind: IoKind, cfg: &IoConfig) {
    let mut io = open_kind(kind, "127.0.0.1:0", cfg);
    if !io.socket().gso {
        return; // kernel without UDP_SEGMENT
    }
    let peer = plain_socket("127.0.0.1:0");
    let dest = peer.local_addr().unwrap();
    let b = io.tx_batch();
    for i in 0..130u16 {
        let len = if i == 129 { 300 } else { 1000 }; // a shorter last segment
        assert!(b.push(dest, &vec![i as u8; len]));
    }
    io.flush().unwrap();
    let end = Instant::now() + Duration::from_secs(5);
    while io.stats().datagrams_out + io.stats().send_errors < 130 && Instant::now() < end {
        io.wait(Some(Instant::now() + Duration::from_millis(10)))
            .unwrap();
    }
    peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 2048];
    for i in 0..130u16 {
        let (n, _) = peer.recv_from(&mut buf).unwrap();
        assert_eq!(n, if i == 129 { 300 } else { 1000 });
        assert_eq!(buf[0], i as u8, "segments arrive in order");
    }
    assert_eq!(io.stats().datagrams_out, 130);
}

fn echoes_through_the_lent_tx_batch(kind: IoKind, cfg: &IoConfig) {
    let mut io = open_kind(kind, "127.0.0.1:0", cfg);
    let peer = plain_socket("127.0.0.1:0");
    for i in 0..10u8 {
        peer.send_to(&[i; 300], io.local_addr()).unwrap();
    }
    let end = Instant::now() + Duration::from_secs(5);
    let mut echoed = 0;
    while echoed < 10 && Instant::now() < end {
        io.wait(Some(end)).unwrap();
        io.recv_batch_with_tx(|meta, buf, tx| {
            buf[0] ^= 0xff; // modified in place, then forwarded from the receive buffer
            assert!(tx.push(meta.src, buf));
            echoed += 1;
        })
        .unwrap();
        io.flush().unwrap();
    }
    io.wait(Some(Instant::now() + Duration::from_millis(20)))
        .unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 512];
    for i in 0..10u8 {
        let (n, from) = peer.recv_from(&mut buf).unwrap();
        assert_eq!((n, from), (300, io.local_addr()));
        assert_eq!((buf[0], buf[1]), (i ^ 0xff, i));
    }
}

macro_rules! backend_suite {
    ($name:ident, $kind:expr, $cfg:expr) => {
        mod $name {
            use super::*;

            #[test]
            fn receives_ipv4_with_source_contents_and_dst_ip() {
                receives_with_source_contents_and_dst_ip($kind, "127.0.0.1", &$cfg);
            }
            #[test]
            fn receives_ipv6_with_source_contents_and_dst_ip() {
                if UdpSocket::bind("[::1]:0").is_ok() {
                    receives_with_source_contents_and_dst_ip($kind, "[::1]", &$cfg);
                }
            }
            #[test]
            fn sends_a_batch_of_1000_datagrams() {
                sends_a_batch_of_1000($kind, &$cfg);
            }
            #[test]
            fn waker_interrupts_a_wait_without_deadline() {
                waker_interrupts_wait_without_deadline($kind, &$cfg);
            }
            #[test]
            fn a_wake_before_wait_is_not_lost() {
                wake_before_wait_is_not_lost($kind, &$cfg);
            }
            #[test]
            fn a_deadline_returns_on_time() {
                deadline_returns_on_time($kind, &$cfg);
            }
            #[test]
            fn an_oversize_datagram_is_counted_truncated_and_the_next_arrives() {
                oversize_datagram_is_truncated_and_next_arrives($kind, &$cfg);
            }
            #[test]
            fn wait_returns_at_once_when_datagrams_are_waiting() {
                wait_returns_at_once_when_datagrams_wait($kind, &$cfg);
            }
            #[test]
            fn echoes_through_the_lent_tx_batch() {
                super::echoes_through_the_lent_tx_batch($kind, &$cfg);
            }
            #[test]
            fn gso_runs_arrive_as_separate_datagrams() {
                gso_sends_equal_runs_as_separate_datagrams($kind, &$cfg);
            }
        }
    };
}

backend_suite!(uring, IoKind::Uring, small_cfg());
backend_suite!(
    uring_defer_taskrun,
    IoKind::Uring,
    IoConfig {
        uring_defer_taskrun: true,
        ..small_cfg()
    }
);
backend_suite!(mmsg, IoKind::Mmsg, small_cfg());

#[test]
fn uring_buffer_ring_exhaustion_is_counted_and_reception_resumes() {
    let cfg = IoConfig {
        rx_buffers: 16,
        ..small_cfg()
    };
    let mut io = open_kind(IoKind::Uring, "127.0.0.1:0", &cfg);
    let peer = plain_socket("127.0.0.1:0");
    // Queue far more datagrams than there are buffers before the backend reaps anything.
    for i in 0..400u16 {
        peer.send_to(&i.to_be_bytes(), io.local_addr()).unwrap();
    }
    let got = recv_n(&mut io, 400, Duration::from_secs(10));
    assert!(
        io.stats().rx_overruns >= 1,
        "running out of buffers is counted"
    );
    assert_eq!(got.len(), 400, "reception resumes after the ring ran dry");
    for (i, (_, d)) in got.iter().enumerate() {
        assert_eq!(
            d.as_slice(),
            (i as u16).to_be_bytes(),
            "nothing lost or reordered"
        );
    }
    // And later traffic still flows.
    peer.send_to(b"after", io.local_addr()).unwrap();
    let got = recv_n(&mut io, 1, Duration::from_secs(5));
    assert_eq!(got[0].1, b"after");
}

#[test]
fn uring_rotates_tx_batches_without_reusing_memory_in_flight() {
    let cfg = IoConfig {
        tx_batch: 64,
        tx_batches: 2,
        ..small_cfg()
    };
    let mut io = open_kind(IoKind::Uring, "127.0.0.1:0", &cfg);
    let peer = plain_socket("127.0.0.1:0");
    let dest = peer.local_addr().unwrap();
    // Many flushes without a wait in between: each flush must hand out a free batch.
    for round in 0..50u16 {
        let b = io.tx_batch();
        assert!(b.is_empty());
        for k in 0..64u16 {
            assert!(b.push(dest, &(round * 64 + k).to_be_bytes()));
        }
        io.flush().unwrap();
    }
    let end = Instant::now() + Duration::from_secs(5);
    while io.stats().datagrams_out < 3200 && Instant::now() < end {
        io.wait(Some(Instant::now() + Duration::from_millis(10)))
            .unwrap();
    }
    peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 64];
    for i in 0..3200u16 {
        let (n, _) = peer.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], i.to_be_bytes(), "datagram {i} intact");
    }
}

#[test]
fn open_with_fallback_prefers_uring_where_available() {
    let io =
        open_with_fallback(IoKind::Uring, "127.0.0.1:0".parse().unwrap(), &small_cfg()).unwrap();
    assert_eq!(io.kind(), IoKind::Uring);
    let io =
        open_with_fallback(IoKind::Mmsg, "127.0.0.1:0".parse().unwrap(), &small_cfg()).unwrap();
    assert_eq!(io.kind(), IoKind::Mmsg);
}

#[test]
fn config_out_of_range_is_rejected() {
    let bad = IoConfig {
        rx_buffers: 1000,
        ..IoConfig::default()
    };
    assert!(matches!(
        open(IoKind::Uring, "127.0.0.1:0".parse().unwrap(), &bad),
        Err(IoError::Config(_))
    ));
    let bad = IoConfig {
        tx_batches: 1,
        ..IoConfig::default()
    };
    assert!(matches!(
        open(IoKind::Mmsg, "127.0.0.1:0".parse().unwrap(), &bad),
        Err(IoError::Config(_))
    ));
}

#[test]
fn an_ipv6_socket_sends_to_ipv4_peers_v4_mapped() {
    if UdpSocket::bind("[::1]:0").is_err() {
        return;
    }
    for kind in [IoKind::Uring, IoKind::Mmsg] {
        let mut io = open_kind(kind, "[::]:0", &small_cfg());
        let peer = plain_socket("127.0.0.1:0");
        let port = io.local_addr().port();
        peer.send_to(b"ping", SocketAddr::from(([127, 0, 0, 1], port)))
            .unwrap();
        let got = recv_n(&mut io, 1, Duration::from_secs(5));
        assert_eq!(
            got[0].0.src,
            peer.local_addr().unwrap(),
            "{kind:?}: v4-mapped source reads as IPv4"
        );
        assert_eq!(got[0].0.dst_ip, Some(IpAddr::from([127, 0, 0, 1])));
        io.tx_batch().push(got[0].0.src, b"pong");
        io.flush().unwrap();
        io.wait(Some(Instant::now() + Duration::from_millis(20)))
            .unwrap();
        peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 16];
        let (n, _) = peer.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"pong");
    }
}
