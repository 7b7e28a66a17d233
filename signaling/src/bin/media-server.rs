//! The Ringcast server under the media server's name and default port (seed 002: `cargo run
//! --bin media-server --release`, http://localhost:8089). The same server as `signaling`: every
//! API, the media server's `/sessions` among them; only `PORT` defaults to 8089.

use clap::Parser;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The media server's default HTTP port.
const DEFAULT_PORT: &str = "8089";

fn main() -> anyhow::Result<()> {
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let port_given = std::env::var_os("PORT").is_some()
        || args
            .iter()
            .any(|a| a == "--port" || a.to_string_lossy().starts_with("--port="));
    if !port_given {
        args.push("--port".into());
        args.push(DEFAULT_PORT.into());
    }
    let cfg = signaling::config::Config::parse_from(args);
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(signaling::serve(cfg, shutdown_signal()))?;
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        tracing::error!("cannot install signal handlers; stop with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => tracing::info!("SIGINT received"),
        _ = term.recv() => tracing::info!("SIGTERM received"),
    }
}
