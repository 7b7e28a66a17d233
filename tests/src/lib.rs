//! Helpers shared by the end-to-end tests: starting the real server, running peers, reading /metrics.
//!
//! The end-to-end tests drive the release build of the `signaling` binary (the all-in-one server)
//! with real WebRTC clients: Debian's Chromium through `tests/browser/peer.mjs` and aiortc through
//! `tests/peers/aiortc_peer.py`. Everything here is synchronous: tests are plain `#[test]`s that
//! spawn processes and poll them.
//!
//! ```no_run
//! use ringcast_tests::{Io, Server, ServerOptions, PeerProcess, PeerSpec, Stack};
//! let server = Server::start(ServerOptions::new(1, Io::Mmsg)).expect("server starts");
//! let run = PeerProcess::spawn(Stack::Chromium, &server.base_url(),
//!     &[PeerSpec::publish("s"), PeerSpec::view("s")], std::time::Duration::from_secs(10), &[])
//!     .expect("browser starts");
//! let report = run.wait().expect("browser run ends");
//! let fps = report.video_fps_last("view-0", std::time::Duration::from_secs(5)).expect("samples");
//! assert!(fps >= 20.0);
//! ```

pub mod deps;
pub mod doc_examples;
pub mod error;
pub mod garbage;
pub mod http;
pub mod media_lock;
pub mod metrics;
pub mod netns;
pub mod paths;
pub mod peers;
pub mod ports;
pub mod postgres;
pub mod s3;
pub mod script;
pub mod server;

pub use error::HarnessError;
pub use http::HttpResponse;
pub use media_lock::{MediaLock, media_lock};
pub use metrics::{Metrics, Sample};
pub use netns::NetNs;
pub use peers::{PeerEvent, PeerProcess, PeerReport, PeerSpec, Stack};
pub use postgres::PgServer;
pub use server::{Io, Server, ServerOptions};
