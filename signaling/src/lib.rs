//! Ringcast signaling: WHIP/WHEP over HTTP, SDP negotiation, placement of sessions on shards,
//! `/metrics` and `/health`. With no remote media node configured it runs the media plane in
//! process (the all-in-one server).

pub mod sdp;

pub fn run_from_args() -> anyhow::Result<()> {
    Ok(())
}
