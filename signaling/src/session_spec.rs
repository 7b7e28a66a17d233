//! Turns a negotiated offer into the shard's `SessionSpec` and the local half of the answer.

use rand::Rng;
use rand::distr::Alphanumeric;

use sfu::control::{IceParams, PublishSpec, SessionSpec, SubscribeSpec};
use sfu::{SessionId, Ssrc, StreamKey, TrackId};

use crate::media::MediaNode;
use crate::registry::Role;
use crate::sdp::{Candidate, LocalDescription, Negotiated, SendSsrcs};

fn random_string(len: usize) -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// A random non-zero 64-bit id.
pub fn random_id() -> u64 {
    loop {
        let v: u64 = rand::rng().random();
        if v != 0 {
            return v;
        }
    }
}

fn random_ssrc() -> Ssrc {
    loop {
        let v: u32 = rand::rng().random();
        if v != 0 {
            return Ssrc(v);
        }
    }
}

/// Fresh ICE credentials for our side (RFC 8839 §5.4: ufrag ≥ 4, pwd ≥ 22 ice-chars).
pub fn local_ice() -> IceParams {
    IceParams {
        ufrag: random_string(8),
        pwd: random_string(24),
    }
}

/// Host candidates on `port` for every announced address (RFC 8445 §5.1.2 priorities).
pub fn host_candidates(node: &MediaNode, port: u16) -> Vec<Candidate> {
    node.candidate_ips
        .iter()
        .enumerate()
        .map(|(i, ip)| {
            let local_pref = 65535u32.saturating_sub(i as u32);
            Candidate {
                foundation: format!("{}", i + 1),
                ip: *ip,
                port,
                priority: (126u32 << 24) | (local_pref << 8) | 255,
            }
        })
        .collect()
}

/// The session a shard runs, and the local description for the answer.
#[allow(clippy::too_many_arguments)]
pub fn build(
    id: SessionId,
    role: Role,
    stream: StreamKey,
    stream_name: &str,
    neg: &Negotiated,
    ice: IceParams,
    node: &MediaNode,
    port: u16,
) -> (SessionSpec, LocalDescription) {
    let mut publish = Vec::new();
    let mut subscribe = Vec::new();
    let mut send_ssrcs = Vec::new();
    let cname = random_string(16);
    for m in &neg.media {
        if !m.accepted {
            send_ssrcs.push(None);
            continue;
        }
        match role {
            Role::Publisher => {
                let (layers, layer_order) = crate::sdp::order_layers(&m.rids);
                publish.push(PublishSpec {
                    stream,
                    track: TrackId(random_id()),
                    kind: m.kind,
                    mid: m.mid.clone(),
                    ssrc: m.remote_ssrc,
                    rtx_ssrc: m.remote_rtx_ssrc,
                    codecs: m.codecs.clone(),
                    layers,
                    layer_order,
                    content: sfu::control::TrackContent::Camera,
                });
                send_ssrcs.push(None);
            }
            Role::Viewer => {
                let ssrc = random_ssrc();
                let rtx_ssrc = m
                    .codecs
                    .iter()
                    .any(|c| c.rtx_pt.is_some())
                    .then(random_ssrc);
                subscribe.push(SubscribeSpec {
                    stream,
                    kind: m.kind,
                    mid: m.mid.clone(),
                    ssrc,
                    rtx_ssrc,
                    codecs: m.codecs.clone(),
                });
                send_ssrcs.push(Some(SendSsrcs {
                    ssrc,
                    rtx_ssrc,
                    msid_stream: stream_name.to_string(),
                    msid_track: format!("{stream_name}-{}", m.mid.0),
                }));
            }
        }
    }
    let spec = SessionSpec {
        id,
        local_ice: ice.clone(),
        remote_ice: neg.remote_ice.clone(),
        remote_fingerprint: neg.remote_fingerprint.clone(),
        extmap: neg.extmap,
        publish,
        subscribe,
    };
    let local = LocalDescription {
        ice,
        fingerprint: node.fingerprint.clone(),
        candidates: host_candidates(node, port),
        session_id: id.0 >> 1,
        cname,
        send_ssrcs,
    };
    (spec, local)
}
