//! Ringcast signaling: WHIP/WHEP over HTTP, SDP negotiation, placement of sessions on shards,
//! `/metrics` and `/health`. With no remote media node configured it runs the media plane in
//! process (the all-in-one server).

pub mod api;
pub mod auth;
pub mod config;
pub mod events;
pub mod host_check;
pub mod livestream;
pub mod media;
pub mod media_server;
pub mod netif;
pub mod placement;
pub mod problem;
pub mod quality;
pub mod recording;
pub mod registry;
pub mod sdp;
pub mod service_metrics;
pub mod session_spec;
pub mod state;
pub mod store;
pub mod stream_service;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use sfu::control::Event;

use crate::config::Config;
use crate::media::MediaNode;
use crate::placement::Placer;
use crate::registry::Registry;
use crate::state::AppState;

/// Why the server stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("media plane: {0}")]
    Media(#[from] media::MediaError),
    #[error("cannot listen on {0}: {1}")]
    Listen(SocketAddr, #[source] std::io::Error),
    #[error("HTTP server: {0}")]
    Http(#[source] std::io::Error),
    #[error("stream service: {0}")]
    Stream(#[from] stream_service::StartError),
    #[error("media server: {0}")]
    MediaServer(#[from] media_server::StartError),
    #[error("{0}")]
    RtcPorts(#[from] media_server::RtcPortsError),
    #[error("livestream service: {0}")]
    Livestream(#[from] livestream::StartError),
}

/// Starts the media node and builds the shared state. Shard events arrive on the returned
/// receiver; feed them to [`handle_event`].
pub fn build(
    cfg: Config,
) -> Result<(Arc<AppState>, tokio::sync::mpsc::UnboundedReceiver<Event>), ServerError> {
    media_server::check_rtc_ports(
        cfg.rtc_min_port,
        cfg.media_server.rtc_max_port,
        cfg.shard_count(),
    )?;
    media_server::check_recording_config(&cfg.media_server, &cfg.livestream.data_dir)?;
    let (ev_tx, ev_rx) = tokio::sync::mpsc::unbounded_channel::<Event>();
    host_check::warn_about_host(
        &sfu::io::IoConfig::default(),
        cfg.shard_count(),
        cfg.io == config::IoChoice::Uring,
    );
    let media = MediaNode::start(&cfg, move |ev| {
        let _ = ev_tx.send(ev);
    })?;
    let placer = Placer {
        policy: cfg.placement,
        max_per_shard: cfg.max_sessions_per_shard,
    };
    let state = Arc::new(AppState {
        registry: Mutex::new(Registry::new(media.shard_count(), placer)),
        capabilities: sdp::Capabilities::default(),
        ice_links: state::ice_links(&cfg),
        services: Default::default(),
        media,
        cfg,
    });
    Ok((state, ev_rx))
}

/// Runs the all-in-one server until `shutdown` resolves, then closes every session, stops the
/// shards and returns.
pub async fn serve(
    cfg: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let (state, mut ev_rx) = build(cfg)?;
    let addr = SocketAddr::new(state.cfg.bind, state.cfg.port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| ServerError::Listen(addr, e))?;
    let local = listener
        .local_addr()
        .map_err(|e| ServerError::Listen(addr, e))?;
    let streams =
        stream_service::StreamService::start(Arc::clone(&state), format!("http://{local}")).await?;
    let media_server = media_server::MediaServer::start(Arc::clone(&state), &streams).await?;
    let live = livestream::LivestreamService::start(Arc::clone(&state)).await?;
    let events_live = Arc::clone(&live);
    let events_state = Arc::clone(&state);
    let events_streams = Arc::clone(&streams);
    let events_media = Arc::clone(&media_server);
    let events = tokio::spawn(async move {
        while let Some(ev) = ev_rx.recv().await {
            let copy = ev.clone();
            handle_event(&events_state, ev);
            events_streams.on_media_event(&copy);
            events_media.on_media_event(&copy);
            events_live.on_media_event(&copy);
        }
    });

    tracing::info!(shards = state.media.shard_count(), candidates = ?state.media.candidate_ips, "listening on http://{local}");
    let app = api::router(Arc::clone(&state))
        .merge(stream_service::router(Arc::clone(&streams)))
        .merge(media_server::router(Arc::clone(&media_server)))
        .merge(livestream::router(Arc::clone(&live)));
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(ServerError::Http);

    tracing::info!("shutting down: stopping streams, closing sessions and stopping shards");
    // Recordings first: their files are finished (playable) and stored while the shards run.
    if tokio::time::timeout(
        std::time::Duration::from_secs(20),
        media_server.stop_recordings(),
    )
    .await
    .is_err()
    {
        tracing::warn!(
            "gave up storing recordings at shutdown after 20 s; their files stay in DATA_DIR/recordings"
        );
    }
    media_server.shutdown().await;
    live.shutdown().await;
    streams.shutdown().await;
    let st = Arc::clone(&state);
    let _ = tokio::task::spawn_blocking(move || st.media.shutdown()).await;
    events.abort();
    result
}

/// Applies a shard's event to the registry.
pub fn handle_event(st: &AppState, ev: Event) {
    match ev {
        Event::SessionConnected { id, shard } => {
            tracing::info!(session = %id, %shard, "session connected")
        }
        Event::SessionClosed { id, shard, reason } => {
            tracing::info!(session = %id, %shard, ?reason, "session closed");
            forget(st, id);
        }
        Event::LayerOrder {
            stream,
            track,
            mid,
            layers,
        } => {
            tracing::info!(
                ?stream,
                ?mid,
                ?layers,
                "simulcast order learned from bit rates"
            );
            if let Ok(mut reg) = st.registry.lock() {
                reg.set_layer_order(stream, track, layers);
            }
        }
        Event::ViewerEstimate { id, stats, .. } => {
            if let Ok(mut reg) = st.registry.lock() {
                reg.set_bwe(id, stats);
            }
        }
        Event::ViewerStats { id, stats, .. } => {
            if let Ok(mut reg) = st.registry.lock() {
                reg.set_stats(id, stats);
            }
        }
        Event::QualityDegraded {
            id,
            shard,
            degraded,
            allocated,
            wanted,
        } => {
            tracing::info!(session = %id, %shard, degraded, allocated_bps = allocated.0, wanted_bps = wanted.0, "viewer quality");
            if let Ok(mut reg) = st.registry.lock() {
                reg.set_degraded(id, degraded, allocated, wanted);
            }
        }
        Event::LayerDemand {
            stream,
            track,
            mid,
            active,
        } => {
            if let Ok(mut reg) = st.registry.lock()
                && reg.set_layer_demand(stream, track, mid.clone(), active.clone())
            {
                tracing::info!(?stream, mid = %mid.0, ?active, "encodings viewers need");
            }
        }
        // Active speakers are the media server's (see `media_server::speakers`).
        Event::ActiveSpeaker { .. } => {}
        Event::CommandFailed { id, shard, error } => {
            tracing::warn!(session = ?id, %shard, %error, "shard refused a command");
            if let Some(id) = id {
                forget(st, id);
            }
        }
    }
}

fn forget(st: &AppState, id: sfu::SessionId) {
    if let Ok(mut reg) = st.registry.lock()
        && let Some((_, commands)) = reg.remove(id)
    {
        for (to, cmd) in commands {
            st.media.send(to, cmd);
        }
    }
}
