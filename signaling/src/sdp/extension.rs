//! The RTP header extensions Ringcast negotiates (`a=extmap`, RFC 8285), by URI.

use sfu::MediaKind;
use sfu::control::ExtMap;

use super::negotiate::Role;

/// A header extension Ringcast understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HeaderExtension {
    /// Media identification (RFC 8843 §15, `sdes:mid`).
    Mid,
    /// RTP stream identifier (RFC 8852, `sdes:rtp-stream-id`).
    Rid,
    /// Repaired RTP stream identifier (RFC 8852, `sdes:repaired-rtp-stream-id`).
    RepairedRid,
    /// Absolute send time (webrtc.org `abs-send-time`), used by REMB-style estimation.
    AbsSendTime,
    /// Transport-wide sequence numbers (draft-holmer-rmcat-transport-wide-cc-extensions-01).
    TransportCc,
    /// Client-to-mixer audio level (RFC 6464, `ssrc-audio-level`).
    AudioLevel,
    /// The AV1 RTP dependency descriptor (the AV1 RTP specification, appendix A): frame
    /// dependencies and the spatial/temporal layer of each frame, for any codec.
    DependencyDescriptor,
}

impl HeaderExtension {
    /// All extensions, in the order they are answered.
    pub const ALL: [HeaderExtension; 7] = [
        HeaderExtension::Mid,
        HeaderExtension::Rid,
        HeaderExtension::RepairedRid,
        HeaderExtension::AbsSendTime,
        HeaderExtension::TransportCc,
        HeaderExtension::AudioLevel,
        HeaderExtension::DependencyDescriptor,
    ];

    /// The URI that names the extension in `a=extmap`.
    pub fn uri(self) -> &'static str {
        match self {
            HeaderExtension::Mid => "urn:ietf:params:rtp-hdrext:sdes:mid",
            HeaderExtension::Rid => "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id",
            HeaderExtension::RepairedRid => {
                "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id"
            }
            HeaderExtension::AbsSendTime => {
                "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
            }
            HeaderExtension::TransportCc => {
                "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
            }
            HeaderExtension::AudioLevel => "urn:ietf:params:rtp-hdrext:ssrc-audio-level",
            HeaderExtension::DependencyDescriptor => {
                "https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension"
            }
        }
    }

    /// The extension a URI names, if Ringcast knows it.
    pub fn from_uri(uri: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.uri() == uri)
    }

    /// Whether the extension may be negotiated on a line of `kind` with a peer in `role`.
    /// Transport-wide sequence numbers are negotiated with everyone: publishers get feedback
    /// on them, and the egress toward viewers stamps them so their feedback drives the send-side
    /// estimate. Absolute send time is accepted from publishers only (the egress does not stamp
    /// it). The audio level belongs on audio lines.
    pub fn allowed(self, role: Role, kind: MediaKind) -> bool {
        match self {
            HeaderExtension::TransportCc => true,
            HeaderExtension::AbsSendTime => role == Role::Publisher,
            HeaderExtension::AudioLevel => kind == MediaKind::Audio,
            HeaderExtension::DependencyDescriptor => kind == MediaKind::Video,
            HeaderExtension::Mid | HeaderExtension::Rid | HeaderExtension::RepairedRid => true,
        }
    }

    /// The id this extension has in `map`.
    pub(crate) fn id_in(self, map: &ExtMap) -> Option<u8> {
        match self {
            HeaderExtension::Mid => map.mid,
            HeaderExtension::Rid => map.rid,
            HeaderExtension::RepairedRid => map.repaired_rid,
            HeaderExtension::AbsSendTime => map.abs_send_time,
            HeaderExtension::TransportCc => map.transport_cc,
            HeaderExtension::AudioLevel => map.audio_level,
            HeaderExtension::DependencyDescriptor => map.dependency_descriptor,
        }
    }

    /// Records `id` for this extension in `map`.
    pub(crate) fn set_in(self, map: &mut ExtMap, id: u8) {
        let slot = match self {
            HeaderExtension::Mid => &mut map.mid,
            HeaderExtension::Rid => &mut map.rid,
            HeaderExtension::RepairedRid => &mut map.repaired_rid,
            HeaderExtension::AbsSendTime => &mut map.abs_send_time,
            HeaderExtension::TransportCc => &mut map.transport_cc,
            HeaderExtension::AudioLevel => &mut map.audio_level,
            HeaderExtension::DependencyDescriptor => &mut map.dependency_descriptor,
        };
        *slot = Some(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_extension_round_trips_through_its_uri() {
        for ext in HeaderExtension::ALL {
            assert_eq!(HeaderExtension::from_uri(ext.uri()), Some(ext));
        }
        assert_eq!(
            HeaderExtension::from_uri("urn:ietf:params:rtp-hdrext:toffset"),
            None
        );
    }

    #[test]
    fn transport_cc_is_for_everyone_and_abs_send_time_publisher_only() {
        for kind in [MediaKind::Audio, MediaKind::Video] {
            assert!(HeaderExtension::TransportCc.allowed(Role::Publisher, kind));
            assert!(HeaderExtension::TransportCc.allowed(Role::Viewer, kind));
        }
        assert!(HeaderExtension::AbsSendTime.allowed(Role::Publisher, MediaKind::Video));
        assert!(!HeaderExtension::AbsSendTime.allowed(Role::Viewer, MediaKind::Video));
        assert!(HeaderExtension::Mid.allowed(Role::Viewer, MediaKind::Audio));
        assert!(!HeaderExtension::AudioLevel.allowed(Role::Publisher, MediaKind::Video));
    }

    #[test]
    fn set_in_and_id_in_address_the_same_field() {
        let mut map = ExtMap::default();
        for (i, ext) in HeaderExtension::ALL.into_iter().enumerate() {
            ext.set_in(&mut map, i as u8 + 1);
        }
        for (i, ext) in HeaderExtension::ALL.into_iter().enumerate() {
            assert_eq!(ext.id_in(&map), Some(i as u8 + 1));
        }
    }
}
