//! What a client uses after negotiation: per kind the payload types, the SSRCs it sends with
//! (publishers) or expects (subscribers, from the remote `a=ssrc` lines), and the header
//! extension ids both sides agreed on.

use sfu::MediaKind;

use super::SdpError;
use super::local::{ExtIds, LocalDescription};
use super::remote::{RemoteDescription, RemoteMedia};

/// One negotiated media kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackPlan {
    pub mid: String,
    pub pt: u8,
    pub rtx_pt: Option<u8>,
    pub clock_rate: u32,
    /// Publishers: the SSRC sent with. Subscribers: the SSRC the server announced (may be
    /// `None` when it announced none; the first packet's SSRC is taken then).
    pub ssrc: Option<u32>,
    pub rtx_ssrc: Option<u32>,
    /// Extension ids agreed on this section.
    pub ext: ExtIds,
    /// Publishers' video: the simulcast encodings the answer accepted (`a=rid:<id> recv`), in
    /// our order; empty: one encoding with `ssrc`.
    pub rids: Vec<String>,
}

/// Everything negotiated for one client.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MediaPlan {
    pub video: Option<TrackPlan>,
    pub audio: Option<TrackPlan>,
}

fn track(
    m: &RemoteMedia,
    kind: MediaKind,
    sends: bool,
    local: &LocalDescription,
) -> Option<TrackPlan> {
    let name = match kind {
        MediaKind::Video => "VP8",
        MediaKind::Audio => "opus",
    };
    let pt = m.pt_of(name)?;
    let codec = m.codec(pt)?;
    let (ssrc, rtx_ssrc) = if sends {
        match (kind, local.ssrcs) {
            (MediaKind::Video, Some(s)) => (Some(s.video.0), Some(s.video_rtx.0)),
            (MediaKind::Audio, Some(s)) => (Some(s.audio.0), None),
            _ => (None, None),
        }
    } else {
        (m.primary_ssrc(), m.fid.map(|(_, r)| r))
    };
    let rids = if sends && kind == MediaKind::Video && ExtIds::of(m).rid.is_some() {
        local
            .simulcast
            .iter()
            .filter(|r| m.recv_rids.contains(r))
            .cloned()
            .collect()
    } else {
        Vec::new()
    };
    Some(TrackPlan {
        rids,
        mid: m.mid.clone(),
        pt,
        rtx_pt: codec.rtx_pt,
        clock_rate: codec.clock_rate,
        ssrc,
        rtx_ssrc: rtx_ssrc.filter(|_| codec.rtx_pt.is_some()),
        ext: ExtIds::of(m),
    })
}

/// Combines our description with the remote one. Errors when nothing the client asked for was
/// accepted.
pub fn plan_media(
    local: &LocalDescription,
    remote: &RemoteDescription,
) -> Result<MediaPlan, SdpError> {
    let sends = local.direction.sends();
    let video = if local.video {
        remote
            .section(MediaKind::Video)
            .and_then(|m| track(m, MediaKind::Video, sends, local))
    } else {
        None
    };
    let audio = if local.audio {
        remote
            .section(MediaKind::Audio)
            .and_then(|m| track(m, MediaKind::Audio, sends, local))
    } else {
        None
    };
    if video.is_none() && audio.is_none() {
        return Err(SdpError::Unusable("VP8 or Opus section"));
    }
    Ok(MediaPlan { video, audio })
}
