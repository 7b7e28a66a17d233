//! Header-extension numbering (RFC 8285). Packets are cached with their extensions renumbered to
//! one canonical table, so each viewer needs a single map from canonical ids to its own.

use crate::control::ExtMap;

pub const MID: u8 = 1;
pub const RID: u8 = 2;
pub const REPAIRED_RID: u8 = 3;
pub const ABS_SEND_TIME: u8 = 4;
pub const TRANSPORT_CC: u8 = 5;
pub const AUDIO_LEVEL: u8 = 6;
pub const DEPENDENCY_DESCRIPTOR: u8 = 7;

/// Publisher ids → canonical ids. Extensions that only make sense per hop (abs-send-time) and
/// mid (the viewer's mids differ) are blanked. The publisher's transport-wide sequence number
/// is kept under its canonical id: the egress overwrites its value with the viewer's own
/// sequence number in place, instead of adding an element (viewer_bwe.rs).
pub fn ingress_map(ext: &ExtMap) -> [u8; 256] {
    let mut m = [0u8; 256];
    if let Some(id) = ext.transport_cc {
        m[id as usize] = TRANSPORT_CC;
    }
    if let Some(id) = ext.rid {
        m[id as usize] = RID;
    }
    if let Some(id) = ext.repaired_rid {
        m[id as usize] = REPAIRED_RID;
    }
    if let Some(id) = ext.audio_level {
        m[id as usize] = AUDIO_LEVEL;
    }
    if let Some(id) = ext.dependency_descriptor {
        m[id as usize] = DEPENDENCY_DESCRIPTOR;
    }
    m
}

/// Canonical ids → a viewer's ids. Only what is meaningful end to end is kept: the audio level,
/// and the transport-wide sequence number's place (its value is rewritten per viewer).
pub fn egress_map(ext: &ExtMap) -> [u8; 256] {
    let mut m = [0u8; 256];
    if let Some(id) = ext.transport_cc {
        m[TRANSPORT_CC as usize] = id;
    }
    if let Some(id) = ext.audio_level {
        m[AUDIO_LEVEL as usize] = id;
    }
    m
}

/// Canonical ids → a viewer's ids for AV1 packets: [`egress_map`] plus the dependency
/// descriptor, which AV1 receivers use to find frame dependencies and layers. (For VP8 and VP9
/// it is dropped: their payload descriptors say the same, and those are what the SFU rewrites.)
pub fn egress_map_av1(ext: &ExtMap) -> [u8; 256] {
    let mut m = egress_map(ext);
    if let Some(id) = ext.dependency_descriptor {
        m[DEPENDENCY_DESCRIPTOR as usize] = id;
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_keep_audio_level_and_blank_per_hop_extensions() {
        let publisher = ExtMap {
            mid: Some(4),
            abs_send_time: Some(2),
            transport_cc: Some(3),
            audio_level: Some(1),
            rid: Some(10),
            repaired_rid: Some(11),
            dependency_descriptor: Some(12),
        };
        let viewer = ExtMap {
            audio_level: Some(9),
            mid: Some(1),
            dependency_descriptor: Some(2),
            ..ExtMap::default()
        };
        let i = ingress_map(&publisher);
        let e = egress_map(&viewer);
        assert_eq!(e[i[1] as usize], 9, "audio level survives end to end");
        assert_eq!(i[2], 0);
        assert_eq!(
            i[3], TRANSPORT_CC,
            "kept so the egress can overwrite it in place"
        );
        assert_eq!(
            e[TRANSPORT_CC as usize], 0,
            "not sent to a viewer without it"
        );
        assert_eq!(i[4], 0);
        assert_eq!(e[i[10] as usize], 0, "rid is not sent to viewers");
        assert_eq!(e[i[12] as usize], 0, "no dependency descriptor on VP8/VP9");
        assert_eq!(egress_map_av1(&viewer)[i[12] as usize], 2, "but on AV1");
    }
}
