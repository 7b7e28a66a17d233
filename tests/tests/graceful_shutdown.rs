//! SIGTERM with live sessions: the server exits 0 within a few seconds and lets go of its ports.

use std::time::Duration;

use ringcast_tests::ports::{tcp_port_is_free, udp_port_is_free};
use ringcast_tests::{Io, PeerProcess, PeerSpec, Server, ServerOptions, Stack, deps, media_lock};

const SHUTDOWN_BUDGET: Duration = Duration::from_secs(5);

fn sigterm_with_active_sessions(io: Io) {
    deps::require_aiortc();
    let _media = media_lock();
    let mut server = Server::start(ServerOptions::new(2, io)).expect("server starts");
    let stream = format!("shutdown-{}", io.as_str());
    let mut run = PeerProcess::spawn(
        Stack::Aiortc,
        &server.base_url(),
        &[PeerSpec::publish(&stream), PeerSpec::view(&stream)],
        Duration::from_secs(30),
        &["--width", "320", "--height", "240"],
    )
    .expect("aiortc starts");
    run.wait_decoding("view-0", Duration::from_secs(40))
        .unwrap_or_else(|e| panic!("{e}"));
    server
        .wait_for_metrics(Duration::from_secs(5), |m| {
            m.sum("ringcast_sessions", &[]) == 2.0
        })
        .unwrap_or_else(|m| panic!("want 2 sessions before SIGTERM, got {m}"));

    let (status, took) = server
        .terminate(SHUTDOWN_BUDGET)
        .unwrap_or_else(|e| panic!("{e}\n{}", server.log_tail(100)));
    assert!(
        status.success(),
        "server exited with {status} after SIGTERM ({took:?})\n{}",
        server.log_tail(100)
    );
    eprintln!(
        "{}: exit {status} {took:?} after SIGTERM with 2 live sessions",
        io.as_str()
    );

    for shard in 0..server.shards() {
        let port = server.rtc_port(shard);
        assert!(
            udp_port_is_free(port),
            "UDP port {port} of shard {shard} still bound after exit"
        );
    }
    assert!(
        tcp_port_is_free(server.http_port()),
        "HTTP port {} still bound after exit",
        server.http_port()
    );
    drop(run); // the peers notice nothing useful any more; stop them
}

#[test]
fn sigterm_with_active_sessions_exits_zero_and_frees_ports_over_uring() {
    sigterm_with_active_sessions(Io::Uring);
}

#[test]
fn sigterm_with_active_sessions_exits_zero_and_frees_ports_over_mmsg() {
    sigterm_with_active_sessions(Io::Mmsg);
}
