//! Which offered payload formats Ringcast accepts, with which answer parameters, in which order:
//! Opus (RFC 7587), VP8 (RFC 7741), VP9 (RFC 9628) profiles 0 and 2, H.264 (RFC 6184)
//! packetization-mode 1, AV1 (AV1 RTP specification §7) profile 0. RED, ULPFEC and FlexFEC are
//! never accepted; RTX (RFC 4588) rides along with the format it repairs.

use sfu::Codec;
use sfu::MediaKind;

use super::extension::HeaderExtension;
use super::fmtp::{self, ProfileLevelId};
use super::negotiate::Role;
use super::offered_media::OfferedCodec;

/// What this server accepts, in preference order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    /// Video codecs, most preferred first. Default: VP8, H.264, VP9, AV1.
    pub video_codecs: Vec<Codec>,
    /// Audio codecs, most preferred first. Default: Opus.
    pub audio_codecs: Vec<Codec>,
    /// Header extensions that may be negotiated (each still subject to
    /// [`HeaderExtension::allowed`]). Default: all of them.
    pub header_extensions: Vec<HeaderExtension>,
}

impl Default for Capabilities {
    fn default() -> Self {
        Capabilities {
            video_codecs: vec![Codec::Vp8, Codec::H264, Codec::Vp9, Codec::Av1],
            audio_codecs: vec![Codec::Opus],
            header_extensions: HeaderExtension::ALL.to_vec(),
        }
    }
}

impl Capabilities {
    /// The codecs accepted on a line of `kind`, most preferred first.
    pub fn codecs_for(&self, kind: MediaKind) -> &[Codec] {
        match kind {
            MediaKind::Audio => &self.audio_codecs,
            MediaKind::Video => &self.video_codecs,
        }
    }
}

/// An offered format Ringcast accepts: which codec, the `a=fmtp` for the answer, and how it sorts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Accepted {
    /// Position in the offer's codec list.
    pub offer_index: usize,
    pub codec: Codec,
    pub answer_fmtp: String,
    /// Position of the codec in the capabilities (lower is preferred).
    pub preference: usize,
    /// Among H.264 formats: 0 for `42e01f`, 1 otherwise.
    pub h264_rank: u8,
}

/// Checks one offered format against the rules for its codec; returns the answer's fmtp.
pub(crate) fn answer_fmtp(codec: Codec, offered: &OfferedCodec) -> Option<String> {
    if offered.clock_rate != codec.clock_rate() {
        return None;
    }
    let fmtp = offered.fmtp.as_str();
    match codec {
        Codec::Opus => {
            if offered.channels != 2 {
                return None;
            }
            let mut params = Vec::new();
            if let Some(v) = fmtp::get(fmtp, "minptime").filter(|v| fmtp::is_small_number(v, 3)) {
                params.push(format!("minptime={v}"));
            }
            if let Some(v) = fmtp::get(fmtp, "useinbandfec").filter(|v| *v == "0" || *v == "1") {
                params.push(format!("useinbandfec={v}"));
            }
            Some(params.join(";"))
        }
        Codec::Vp8 => Some(String::new()),
        Codec::Vp9 => match fmtp::get(fmtp, "profile-id") {
            None => Some(String::new()),
            Some(p @ ("0" | "2")) => Some(format!("profile-id={p}")),
            Some(_) => None,
        },
        Codec::H264 => {
            if fmtp::get(fmtp, "packetization-mode") != Some("1") {
                return None;
            }
            let mut params = Vec::new();
            if fmtp::get(fmtp, "level-asymmetry-allowed") == Some("1") {
                params.push("level-asymmetry-allowed=1".to_owned());
            }
            params.push("packetization-mode=1".to_owned());
            if let Some(v) = fmtp::get(fmtp, "profile-level-id") {
                params.push(format!("profile-level-id={}", ProfileLevelId::parse(v)?));
            }
            Some(params.join(";"))
        }
        Codec::Av1 => {
            if fmtp::get(fmtp, "profile").is_some_and(|p| p != "0") {
                return None;
            }
            let mut params = Vec::new();
            for key in ["level-idx", "profile", "tier"] {
                if let Some(v) = fmtp::get(fmtp, key).filter(|v| fmtp::is_small_number(v, 2)) {
                    params.push(format!("{key}={v}"));
                }
            }
            Some(params.join(";"))
        }
    }
}

/// Selects the formats of one line and orders them. Publishers get Ringcast's preferred codec
/// first (the sender uses the answer's first format, RFC 3264 §6.1); viewers keep the offerer's
/// order. Among H.264 formats, `42e01f` comes before the other profiles in both cases.
pub(crate) fn select(
    offered: &[OfferedCodec],
    kind: MediaKind,
    role: Role,
    caps: &Capabilities,
) -> Vec<Accepted> {
    let preferences = caps.codecs_for(kind);
    let mut accepted: Vec<Accepted> = offered
        .iter()
        .enumerate()
        .filter_map(|(offer_index, oc)| {
            let codec = oc.codec()?;
            if codec.kind() != kind {
                return None;
            }
            let preference = preferences.iter().position(|c| *c == codec)?;
            let answer_fmtp = answer_fmtp(codec, oc)?;
            let h264_rank = match codec {
                Codec::H264 => {
                    let plid = fmtp::get(&oc.fmtp, "profile-level-id")
                        .and_then(ProfileLevelId::parse)
                        .unwrap_or(ProfileLevelId::DEFAULT);
                    if plid.is_42e01f() { 0 } else { 1 }
                }
                _ => 0,
            };
            Some(Accepted {
                offer_index,
                codec,
                answer_fmtp,
                preference,
                h264_rank,
            })
        })
        .collect();
    match role {
        Role::Publisher => {
            accepted.sort_by_key(|a| (a.preference, a.h264_rank, a.offer_index));
        }
        Role::Viewer => {
            // Reorder the H.264 formats among the positions they already hold.
            let slots: Vec<usize> = (0..accepted.len())
                .filter(|&i| accepted[i].codec == Codec::H264)
                .collect();
            let mut h264: Vec<Accepted> = slots.iter().map(|&i| accepted[i].clone()).collect();
            h264.sort_by_key(|a| (a.h264_rank, a.offer_index));
            for (slot, a) in slots.into_iter().zip(h264) {
                accepted[slot] = a;
            }
        }
    }
    accepted
}

/// Names of the codecs accepted on a line of `kind`, for error messages.
pub(crate) fn describe(caps: &Capabilities, kind: MediaKind) -> String {
    let names: Vec<&str> = caps
        .codecs_for(kind)
        .iter()
        .map(|c| match c {
            Codec::Opus => "Opus 48000/2",
            Codec::Vp8 => "VP8",
            Codec::Vp9 => "VP9 profile 0 or 2",
            Codec::H264 => "H.264 packetization-mode=1",
            Codec::Av1 => "AV1 profile 0",
        })
        .collect();
    if names.is_empty() {
        "nothing".to_owned()
    } else {
        names.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sfu::PayloadType;
    use sfu::control::RtcpFeedback;

    fn offered(pt: u8, name: &str, clock_rate: u32, channels: u8, fmtp: &str) -> OfferedCodec {
        OfferedCodec {
            pt: PayloadType(pt),
            name: name.into(),
            clock_rate,
            channels,
            fmtp: fmtp.into(),
            feedback: RtcpFeedback::default(),
            rtx_pt: None,
        }
    }

    #[test]
    fn opus_keeps_only_minptime_and_useinbandfec() {
        let oc = offered(
            111,
            "opus",
            48000,
            2,
            "minptime=10;stereo=1;useinbandfec=1;usedtx=1",
        );
        assert_eq!(
            answer_fmtp(Codec::Opus, &oc).as_deref(),
            Some("minptime=10;useinbandfec=1")
        );
        assert_eq!(
            answer_fmtp(Codec::Opus, &offered(111, "opus", 48000, 1, "")),
            None
        );
        assert_eq!(
            answer_fmtp(Codec::Opus, &offered(111, "opus", 16000, 2, "")),
            None
        );
    }

    #[test]
    fn h264_requires_packetization_mode_1_and_echoes_the_profile() {
        let oc = offered(
            102,
            "H264",
            90000,
            1,
            "profile-level-id=42E01F;level-asymmetry-allowed=1;packetization-mode=1",
        );
        assert_eq!(
            answer_fmtp(Codec::H264, &oc).as_deref(),
            Some("level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f")
        );
        let mode0 = offered(
            97,
            "H264",
            90000,
            1,
            "profile-level-id=42e01f;level-asymmetry-allowed=1",
        );
        assert_eq!(answer_fmtp(Codec::H264, &mode0), None);
        let bad_profile = offered(
            97,
            "H264",
            90000,
            1,
            "profile-level-id=zz;packetization-mode=1",
        );
        assert_eq!(answer_fmtp(Codec::H264, &bad_profile), None);
    }

    #[test]
    fn vp9_accepts_profiles_0_and_2_only() {
        assert_eq!(
            answer_fmtp(Codec::Vp9, &offered(98, "VP9", 90000, 1, "profile-id=2")).as_deref(),
            Some("profile-id=2")
        );
        assert_eq!(
            answer_fmtp(Codec::Vp9, &offered(98, "VP9", 90000, 1, "")).as_deref(),
            Some("")
        );
        assert_eq!(
            answer_fmtp(Codec::Vp9, &offered(98, "VP9", 90000, 1, "profile-id=1")),
            None
        );
    }

    #[test]
    fn av1_accepts_profile_0_and_echoes_numeric_parameters() {
        let oc = offered(45, "AV1", 90000, 1, "level-idx=5;profile=0;tier=0");
        assert_eq!(
            answer_fmtp(Codec::Av1, &oc).as_deref(),
            Some("level-idx=5;profile=0;tier=0")
        );
        assert_eq!(
            answer_fmtp(Codec::Av1, &offered(47, "AV1", 90000, 1, "profile=1")),
            None
        );
    }

    #[test]
    fn publishers_get_our_preferred_codec_first_and_42e01f_before_other_h264() {
        let offer = vec![
            offered(
                96,
                "H264",
                90000,
                1,
                "packetization-mode=1;profile-level-id=640c1f",
            ),
            offered(97, "rtx", 90000, 1, "apt=96"),
            offered(
                98,
                "H264",
                90000,
                1,
                "packetization-mode=1;profile-level-id=42e01f",
            ),
            offered(100, "VP9", 90000, 1, "profile-id=0"),
            offered(102, "VP8", 90000, 1, ""),
            offered(104, "red", 90000, 1, ""),
        ];
        let caps = Capabilities::default();
        let pts = |role| -> Vec<u8> {
            select(&offer, MediaKind::Video, role, &caps)
                .iter()
                .map(|a| offer[a.offer_index].pt.0)
                .collect()
        };
        assert_eq!(pts(Role::Publisher), vec![102, 98, 96, 100]);
        assert_eq!(pts(Role::Viewer), vec![98, 96, 100, 102]);
    }

    #[test]
    fn codecs_missing_from_the_capabilities_are_not_accepted() {
        let offer = vec![
            offered(96, "VP8", 90000, 1, ""),
            offered(45, "AV1", 90000, 1, ""),
        ];
        let caps = Capabilities {
            video_codecs: vec![Codec::Av1],
            ..Capabilities::default()
        };
        let chosen = select(&offer, MediaKind::Video, Role::Publisher, &caps);
        assert_eq!(chosen.len(), 1);
        assert_eq!(chosen[0].codec, Codec::Av1);
        assert!(select(&offer, MediaKind::Audio, Role::Publisher, &caps).is_empty());
    }
}
