//! One client's join: a UDP socket, our description (ICE credentials, the DTLS certificate's
//! fingerprint, SSRCs), the SDP exchange through the [`Target`] in whichever direction it
//! offers, the negotiated media plan, and the server's candidate; the result is ready for a
//! worker. Control path: allocates freely.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use rand::distr::Alphanumeric;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sfu::Ssrc;
use sfu::client::{ClientConfig, ClientRoles, IceRole, dtls_role_from_setup};
use sfu::control::IceParams;
use sfu::dtls::DtlsCert;

use crate::classes::ClassPlan;
use crate::client::{PublisherConfig, SubscriberConfig};
use crate::engine::{ClientMedia, NewClient, UdpSock};
use crate::media::{AudioConfig, VideoConfig};
use crate::relay::ImpairPlan;
use crate::sdp::{self, Direction, LocalDescription, PublisherSsrcs, RemoteDescription, SdpError};
use crate::target::{JoinRequest, OfferSide, Role, SessionHandle, Target, TargetError};

/// Packets a publisher keeps for retransmission.
const RING_SLOTS: usize = 1024;

/// What every join of a run shares.
#[derive(Debug, Clone)]
pub struct JoinContext {
    pub target: Arc<dyn Target>,
    /// The certificate all clients present (its fingerprint goes into every offer).
    pub cert: Arc<DtlsCert>,
    /// Local address of the client sockets.
    pub bind_ip: IpAddr,
    /// The server's address as the target URL names it: the candidate with this address is
    /// preferred.
    pub prefer_ip: Option<IpAddr>,
    pub video: VideoConfig,
    pub audio: Option<AudioConfig>,
    /// Publishers offer three simulcast encodings (`--simulcast`).
    pub simulcast: bool,
    pub seed: u64,
    pub socket_buffer: usize,
    /// The impairing relay and the subscribers it serves (`--impair`).
    pub impair: Option<ImpairPlan>,
    /// Capacity classes of the subscribers (`--subscriber-classes`).
    pub classes: Option<Arc<ClassPlan>>,
}

/// A join that worked: the client for a worker, and the session to end at the end of the run.
#[derive(Debug)]
pub struct Joined {
    pub client: NewClient,
    pub session: SessionHandle,
}

/// Why a join failed.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error("UDP socket: {0}")]
    Socket(#[from] std::io::Error),
    #[error("{0}")]
    Target(#[from] TargetError),
    #[error("SDP from the server: {0}")]
    Sdp(#[from] SdpError),
    #[error("the server's description has no usable UDP candidate")]
    NoCandidate,
}

fn token(rng: &mut StdRng, len: usize) -> String {
    rng.sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

fn nonzero(rng: &mut StdRng) -> u32 {
    loop {
        let v: u32 = rng.random();
        if v != 0 {
            return v;
        }
    }
}

/// Joins one client. `post_at` (the moment the first signaling request goes out) is taken here.
pub fn join(ctx: &JoinContext, req: &JoinRequest) -> Result<Joined, JoinError> {
    let mut rng = StdRng::seed_from_u64(
        ctx.seed
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .wrapping_add(req.client as u64),
    );
    let sock = UdpSock::bind(ctx.bind_ip, ctx.socket_buffer)?;
    let publisher = req.role == Role::Publisher;
    let ssrcs = publisher.then(|| {
        let video = nonzero(&mut rng);
        let mut rtx = nonzero(&mut rng);
        let mut audio = nonzero(&mut rng);
        while rtx == video {
            rtx = nonzero(&mut rng);
        }
        while audio == video || audio == rtx {
            audio = nonzero(&mut rng);
        }
        PublisherSsrcs {
            video: Ssrc(video),
            video_rtx: Ssrc(rtx),
            audio: Ssrc(audio),
        }
    });
    let local = LocalDescription {
        ice: IceParams {
            ufrag: token(&mut rng, 8),
            pwd: token(&mut rng, 24),
        },
        fingerprint: ctx.cert.fingerprint(),
        candidate: Some(sock.local_addr()),
        direction: if publisher {
            Direction::SendOnly
        } else {
            Direction::RecvOnly
        },
        video: true,
        audio: ctx.audio.is_some(),
        session_id: rng.random::<u64>() >> 1,
        cname: token(&mut rng, 16),
        ssrcs,
        simulcast: if publisher && ctx.simulcast {
            sdp::SIMULCAST_RIDS.iter().map(|r| r.to_string()).collect()
        } else {
            Vec::new()
        },
    };
    let post_at = Instant::now();
    let offer_side = ctx.target.offer_side(req.role);
    let (remote, session) = match offer_side {
        OfferSide::Client => {
            let answered = ctx.target.send_offer(req, &sdp::write_offer(&local))?;
            match RemoteDescription::parse(&answered.sdp) {
                Ok(r) => (r, answered.session),
                Err(e) => {
                    let _ = ctx.target.leave(answered.session);
                    return Err(e.into());
                }
            }
        }
        OfferSide::Server => {
            let offer = ctx.target.fetch_offer(req)?;
            let remote = RemoteDescription::parse(&offer.sdp)?;
            let answer = sdp::write_answer(&local, &remote)?;
            let session = ctx.target.send_answer(req, offer.pending, &answer)?;
            (remote, session)
        }
    };
    let finish = move || -> Result<NewClient, JoinError> {
        let plan = sdp::plan_media(&local, &remote)?;
        let server = remote
            .pick_candidate(ctx.prefer_ip)
            .ok_or(JoinError::NoCandidate)?;
        // An impaired client talks to the relay, which forwards to the server.
        let server = match &ctx.impair {
            Some(plan) if plan.applies(req) => plan.route(ctx.bind_ip, server)?,
            _ => server,
        };
        sock.connect(server)?;
        // The offerer controls ICE, and toward an ICE-lite server we always do (RFC 8445
        // §6.1.1); the DTLS role follows the server's a=setup.
        let roles = ClientRoles {
            ice: if remote.ice_lite || offer_side == OfferSide::Client {
                IceRole::Controlling
            } else {
                IceRole::Controlled
            },
            dtls: dtls_role_from_setup(match remote.setup {
                Some(sdp::Setup::Active) => "active",
                Some(sdp::Setup::Passive) => "passive",
                Some(sdp::Setup::ActPass) | None => "actpass",
            })
            .unwrap_or(sfu::dtls::DtlsRole::Client),
            tie_breaker: rng.random(),
        };
        let media = if publisher {
            ClientMedia::Publisher(PublisherConfig {
                video: Some(ctx.video),
                audio: ctx.audio,
                plan,
                cname: local.cname.clone(),
                seed: rng.random(),
                ring_slots: RING_SLOTS,
            })
        } else {
            ClientMedia::Subscriber(SubscriberConfig {
                plan,
                rtcp_ssrc: nonzero(&mut rng),
                cname: local.cname.clone(),
            })
        };
        let class = ctx.classes.as_ref().and_then(|c| c.class_of(req));
        let downlink = match (&ctx.classes, class) {
            (Some(plan), Some(c)) => plan.downlink(c),
            _ => None,
        };
        Ok(NewClient {
            class,
            downlink,
            index: req.client,
            transport: ClientConfig {
                local_ice: local.ice.clone(),
                remote_ice: remote.ice.clone(),
                server,
                remote_fingerprint: remote.fingerprint.clone(),
                cert: Arc::clone(&ctx.cert),
            },
            roles,
            sock,
            media,
            post_at,
        })
    };
    match finish() {
        Ok(client) => Ok(Joined { client, session }),
        Err(e) => {
            let _ = ctx.target.leave(session);
            Err(e)
        }
    }
}
