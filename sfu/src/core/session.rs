//! One peer connection on a shard: its ICE-lite agent, DTLS association and SRTP contexts, and the
//! tracks it publishes and media sections it views.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::bwe::{RembConfig, RembEstimator, TwccReceiver};
use crate::control::{ExtMap, SessionSpec};
use crate::dtls::DtlsConn;
use crate::ice::IceLite;
use crate::srtp::SrtpSession;

use super::allocation::ViewerAllocation;
use super::viewer_bwe::ViewerBwe;
use crate::{SessionId, Ssrc};

/// Most SSRCs one session may send (media and RTX of every track, simulcast included).
pub const MAX_INBOUND_SSRCS: usize = 32;

/// An inbound SSRC's meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InboundSsrc {
    pub ssrc: Ssrc,
    /// Index into the core's tracks.
    pub track: usize,
    pub rtx: bool,
}

/// A peer connection.
#[derive(Debug)]
pub struct Session {
    pub id: SessionId,
    pub ice: IceLite,
    pub dtls: DtlsConn,
    /// Where the DTLS peer last spoke from (flights go back there).
    pub dtls_peer: Option<SocketAddr>,
    pub srtp: Option<SrtpSession>,
    /// Where media and RTCP go: the nominated address once DTLS is up.
    pub dest: Option<SocketAddr>,
    pub extmap: ExtMap,
    /// Tracks this session publishes (indices into the core's tracks).
    pub tracks: Vec<usize>,
    /// Media sections this session views (indices into the core's subscriptions).
    pub subs: Vec<usize>,
    pub inbound: Vec<InboundSsrc>,
    /// Our SSRC as the sender of RTCP feedback toward this peer.
    pub rtcp_ssrc: Ssrc,
    pub twcc: Option<TwccReceiver>,
    /// Receive-side estimation reported with REMB: only for a peer that negotiated
    /// abs-send-time but not transport-cc (boxed: most sessions have none).
    pub remb: Option<Box<RembEstimator>>,
    /// Send-side estimation toward a viewer that negotiated transport-wide sequence numbers
    /// (boxed: publishers have none).
    pub viewer_bwe: Option<Box<ViewerBwe>>,
    /// The viewer's bandwidth allocation (caps, reports).
    pub alloc: ViewerAllocation,
    pub rtt: Duration,
}

impl Session {
    pub fn new(
        spec: &SessionSpec,
        ice: IceLite,
        dtls: DtlsConn,
        rtcp_ssrc: Ssrc,
        now: Instant,
    ) -> Self {
        Session {
            id: spec.id,
            ice,
            dtls,
            dtls_peer: None,
            srtp: None,
            dest: None,
            extmap: spec.extmap,
            tracks: Vec::new(),
            subs: Vec::new(),
            inbound: Vec::with_capacity(4),
            rtcp_ssrc,
            twcc: spec.extmap.transport_cc.map(|_| TwccReceiver::default()),
            remb: (spec.extmap.abs_send_time.is_some() && spec.extmap.transport_cc.is_none())
                .then(|| Box::new(RembEstimator::new(RembConfig::default()))),
            viewer_bwe: match spec.extmap.transport_cc {
                Some(id) if !spec.subscribe.is_empty() => Some(ViewerBwe::new(id, now)),
                _ => None,
            },
            alloc: ViewerAllocation::new(now),
            rtt: Duration::from_millis(100),
        }
    }

    #[inline]
    pub fn lookup_ssrc(&self, ssrc: Ssrc) -> Option<InboundSsrc> {
        self.inbound.iter().find(|i| i.ssrc == ssrc).copied()
    }

    /// Records a learned SSRC; false when the session already has too many.
    pub fn learn_ssrc(&mut self, entry: InboundSsrc) -> bool {
        if self.inbound.len() >= MAX_INBOUND_SSRCS {
            return false;
        }
        self.inbound.push(entry);
        true
    }
}
