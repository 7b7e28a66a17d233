//! Offer/answer negotiation (RFC 3264, RFC 8829 §5.3) for the two roles Ringcast answers: WHIP
//! publishers, whose media it receives, and WHEP viewers, to whom it sends.

use sfu::control::{CodecParams, ExtMap, IceParams, RtcpFeedback, TrackContent};
use sfu::dtls::Fingerprint;
use sfu::{MediaKind, Mid, Rid, Ssrc};

use super::codec::{self, Capabilities};
use super::error::SdpError;
use super::extension::HeaderExtension;
use super::offer::Offer;
use super::offered_media::{Direction, OfferedMedia};

/// Which side of a broadcast the offerer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// A WHIP client sending media to Ringcast.
    Publisher,
    /// A WHEP client receiving media from Ringcast.
    Viewer,
}

/// The outcome of negotiating one offer: what the answer says and what the media plane needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    pub role: Role,
    /// The offerer's ICE credentials.
    pub remote_ice: IceParams,
    /// The fingerprint the offerer's DTLS certificate must match.
    pub remote_fingerprint: Fingerprint,
    /// Header-extension ids negotiated on the accepted lines (one id per extension in a BUNDLE).
    pub extmap: ExtMap,
    /// One entry per audio or video `m=` line of the offer, in order.
    pub media: Vec<NegotiatedMedia>,
    /// The other `m=` lines (data channels and the like), always rejected.
    pub(crate) other_lines: Vec<OtherLine>,
    /// Whether the offer had an `a=group:BUNDLE` (the answer only has one if it did).
    pub(crate) bundle_offered: bool,
    /// Whether the offer allowed two-byte header extensions (answered in kind).
    pub(crate) extmap_allow_mixed: bool,
}

impl Negotiated {
    /// The accepted lines.
    pub fn accepted(&self) -> impl Iterator<Item = &NegotiatedMedia> {
        self.media.iter().filter(|m| m.accepted)
    }

    /// The mids of the answer's BUNDLE group, in line order.
    pub fn bundle(&self) -> Vec<&Mid> {
        self.accepted().map(|m| &m.mid).collect()
    }
}

/// One audio or video line of the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiatedMedia {
    pub mid: Mid,
    pub kind: MediaKind,
    /// `false`: the answer rejects the line with port 0.
    pub accepted: bool,
    /// Why the line was rejected, for logs; `None` when accepted.
    pub rejection: Option<String>,
    /// The direction the answer writes: `recvonly` toward publishers, `sendonly` toward viewers,
    /// `inactive` when rejected.
    pub direction: Direction,
    /// The accepted formats in the offerer's payload numbering, answer order (first preferred).
    pub codecs: Vec<CodecParams>,
    /// Accepted header extensions of this line (id, URI).
    pub extmaps: Vec<(u8, String)>,
    /// SSRCs the offerer announced (`a=ssrc`, `a=ssrc-group:FID`).
    pub remote_ssrc: Option<Ssrc>,
    pub remote_rtx_ssrc: Option<Ssrc>,
    /// The offerer's `a=msid`, verbatim.
    pub remote_msid: Option<String>,
    /// Simulcast encodings the answer accepts (`a=rid:<id> recv`, `a=simulcast:recv`), in the
    /// offer's order; empty when the line is not simulcast. Only publishers' video lines with the
    /// RID header extension negotiated get them; otherwise the publisher sends one encoding
    /// (RFC 8853 §5.3).
    pub rids: Vec<Rid>,
    /// `a=rtcp-rsize` was offered and is answered (RFC 5506).
    pub rtcp_rsize: bool,
    /// What a publisher's video line shows: [`TrackContent::Screen`] when the offer marks it
    /// `a=content:slides` (RFC 4796), else camera. Always camera for audio and for viewers.
    pub content: TrackContent,
    /// Position of the line in the offer.
    pub(crate) line: usize,
    pub(crate) proto: String,
    pub(crate) first_format: String,
}

/// A non-RTP line of the offer, rejected in the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OtherLine {
    pub line: usize,
    pub mid: Mid,
    pub media_type: String,
    pub proto: String,
    pub first_format: String,
}

/// Negotiates an offer for `role`. Lines that cannot be accepted are rejected one by one; the
/// offer fails only when nothing can be accepted (with the reason of the first rejected line) or
/// when the shared transport itself is unsupported (no `a=rtcp-mux`, not DTLS-SRTP).
pub fn negotiate(offer: &Offer, role: Role, caps: &Capabilities) -> Result<Negotiated, SdpError> {
    let mut extmap = ExtMap::default();
    let mut id_owner: [Option<HeaderExtension>; 256] = [None; 256];
    let mut media = Vec::new();
    let mut other_lines = Vec::new();
    let mut first_failure: Option<SdpError> = None;

    for (line, om) in offer.media.iter().enumerate() {
        let Some(kind) = om.kind else {
            other_lines.push(OtherLine {
                line,
                mid: om.mid.clone(),
                media_type: om.media_type.clone(),
                proto: om.proto.clone(),
                first_format: om.first_format.clone(),
            });
            continue;
        };
        let mut nm = NegotiatedMedia {
            mid: om.mid.clone(),
            kind,
            accepted: false,
            rejection: None,
            direction: Direction::Inactive,
            codecs: Vec::new(),
            extmaps: Vec::new(),
            remote_ssrc: om.ssrc,
            remote_rtx_ssrc: om.rtx_ssrc,
            remote_msid: om.msid.clone(),
            rids: Vec::new(),
            rtcp_rsize: false,
            content: TrackContent::Camera,
            line,
            proto: om.proto.clone(),
            first_format: om.first_format.clone(),
        };
        if !om.enabled() {
            nm.rejection = Some("disabled by the offer (port 0)".into());
        } else if !om.bundled {
            nm.rejection = Some("not in the offer's BUNDLE group".into());
        } else {
            check_transport(om)?;
            match accept_line(om, kind, role, caps, &mut extmap, &mut id_owner) {
                Ok(accepted) => nm = NegotiatedMedia { line, ..accepted },
                Err(e) => {
                    nm.rejection = Some(e.to_string());
                    first_failure.get_or_insert(e);
                }
            }
        }
        media.push(nm);
    }

    if !media.iter().any(|m| m.accepted) {
        return Err(first_failure.unwrap_or(SdpError::NoUsableMedia));
    }
    Ok(Negotiated {
        role,
        remote_ice: offer.ice.clone(),
        remote_fingerprint: offer.fingerprint.clone(),
        extmap,
        media,
        other_lines,
        bundle_offered: !offer.bundle.is_empty(),
        extmap_allow_mixed: offer.extmap_allow_mixed,
    })
}

/// RFC 4796 `a=content:slides` on a publisher's video line: a shared screen or slides.
fn content_of(om: &OfferedMedia, kind: MediaKind, role: Role) -> TrackContent {
    if role == Role::Publisher && kind == MediaKind::Video && om.is_slides() {
        TrackContent::Screen
    } else {
        TrackContent::Camera
    }
}

/// The bundled transport must be DTLS-SRTP with RTP/RTCP multiplexing.
fn check_transport(om: &OfferedMedia) -> Result<(), SdpError> {
    if !om.proto.ends_with("TLS/RTP/SAVPF") {
        return Err(SdpError::UnsupportedTransport {
            mid: om.mid.0.clone(),
            proto: om.proto.clone(),
        });
    }
    if !om.rtcp_mux {
        return Err(SdpError::NoRtcpMux {
            mid: om.mid.0.clone(),
        });
    }
    Ok(())
}

fn accept_line(
    om: &OfferedMedia,
    kind: MediaKind,
    role: Role,
    caps: &Capabilities,
    extmap: &mut ExtMap,
    id_owner: &mut [Option<HeaderExtension>; 256],
) -> Result<NegotiatedMedia, SdpError> {
    let direction = match role {
        Role::Publisher if om.direction.sends() => Direction::RecvOnly,
        Role::Publisher => return Err(SdpError::PublisherNotSending),
        Role::Viewer if om.direction.receives() => Direction::SendOnly,
        Role::Viewer => return Err(SdpError::ViewerNotReceiving),
    };
    let chosen = codec::select(&om.codecs, kind, role, caps);
    if chosen.is_empty() {
        return Err(SdpError::NoUsableCodec {
            mid: om.mid.0.clone(),
            kind: match kind {
                MediaKind::Audio => "audio",
                MediaKind::Video => "video",
            },
            accepted: codec::describe(caps, kind),
        });
    }

    // Header extensions: ids 1..=14 (the one-byte form, RFC 8285 §4.2), each extension with one id
    // and each id with one extension across the BUNDLE group.
    let mut extmaps = Vec::new();
    for (id, uri) in &om.extmaps {
        let Some(ext) = HeaderExtension::from_uri(uri) else {
            continue;
        };
        if !(1..=14).contains(id)
            || !caps.header_extensions.contains(&ext)
            || !ext.allowed(role, kind)
        {
            continue;
        }
        let owner = &mut id_owner[usize::from(*id)];
        let consistent =
            ext.id_in(extmap).is_none_or(|known| known == *id) && owner.is_none_or(|o| o == ext);
        if !consistent || extmaps.iter().any(|(_, u): &(u8, String)| u == ext.uri()) {
            continue;
        }
        *owner = Some(ext);
        ext.set_in(extmap, *id);
        extmaps.push((*id, ext.uri().to_owned()));
    }
    let twcc = extmaps
        .iter()
        .any(|(_, u)| u == HeaderExtension::TransportCc.uri());
    let rid_ext = extmaps.iter().any(|(_, u)| u == HeaderExtension::Rid.uri());
    let rids = if role == Role::Publisher && kind == MediaKind::Video && rid_ext {
        super::simulcast::offered_layers(om)
    } else {
        Vec::new()
    };

    let codecs = chosen
        .into_iter()
        .map(|a| {
            let oc = &om.codecs[a.offer_index];
            CodecParams {
                pt: oc.pt,
                codec: a.codec,
                clock_rate: oc.clock_rate,
                channels: oc.channels,
                fmtp: a.answer_fmtp,
                rtx_pt: oc.rtx_pt,
                feedback: RtcpFeedback {
                    nack: oc.feedback.nack,
                    nack_pli: oc.feedback.nack_pli,
                    ccm_fir: oc.feedback.ccm_fir,
                    // Only with the extension it reports on: publishers get feedback from us,
                    // viewers send feedback on what we send them.
                    transport_cc: oc.feedback.transport_cc && twcc,
                    goog_remb: false,
                },
            }
        })
        .collect();

    Ok(NegotiatedMedia {
        mid: om.mid.clone(),
        kind,
        accepted: true,
        rejection: None,
        direction,
        codecs,
        extmaps,
        remote_ssrc: om.ssrc,
        remote_rtx_ssrc: om.rtx_ssrc,
        remote_msid: om.msid.clone(),
        rids,
        rtcp_rsize: om.rtcp_rsize,
        content: content_of(om, kind, role),
        line: 0,
        proto: om.proto.clone(),
        first_format: om.first_format.clone(),
    })
}
