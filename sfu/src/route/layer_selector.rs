//! Per-subscriber layer selection (RFC 7667 §3.7 selective forwarding, RFC 8853 simulcast): which
//! simulcast encoding a viewer receives and, within it, which temporal (VP8/VP9 TID) and spatial
//! (VP9 SID) layers. Switches happen only where the decoder can follow: a spatial switch on a
//! keyframe of the new layer, a temporal switch up on a sync/switching-up point (VP8 Y, VP9 U, a
//! dependency descriptor's Switch indication), any switch down at a picture start.

use crate::control::LayerSelection;
use crate::wire::codec::PacketLayers;

/// "Everything there is".
pub const HIGHEST: u8 = u8::MAX;

/// What to do with one packet of the encoding a viewer currently receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Forward it; `set_marker`: set the RTP marker bit (the packet now ends the picture, VP9).
    Forward { set_marker: bool },
    /// Not for this viewer: drop it without leaving a sequence gap.
    Drop {
        /// It was the first packet of a dropped picture (VP8 picture ids skip one).
        picture: bool,
    },
}

/// What to do with a packet of a simulcast encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimulcastStep {
    /// The packet belongs to the encoding being forwarded.
    Current,
    /// A keyframe of the wanted encoding: switch to it here.
    SwitchHere,
    /// Another encoding: not this viewer's business.
    Ignore,
}

/// Decides, for a packet of simulcast encoding `layer`, given the encoding being forwarded
/// (`current`, `None` before the first) and the one wanted: stay, switch (only on a keyframe of
/// the wanted encoding) or ignore.
pub fn simulcast_step(current: Option<u8>, wanted: u8, layer: u8, keyframe: bool) -> SimulcastStep {
    if current == Some(layer) {
        SimulcastStep::Current
    } else if layer == wanted && keyframe {
        SimulcastStep::SwitchHere
    } else {
        SimulcastStep::Ignore
    }
}

/// The wanted encoding: the requested one capped by the maximum and by the encodings there are,
/// then lowered to the highest one that is sending (`active(i)`); the requested one when none is.
pub fn wanted_encoding(requested: u8, count: u8, active: impl Fn(u8) -> bool) -> u8 {
    if count == 0 {
        return 0;
    }
    let top = requested.min(count - 1);
    (0..=top).rev().find(|&i| active(i)).unwrap_or(top)
}

/// A viewer's layer target and the temporal/spatial layers it currently receives within one
/// encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerSelector {
    target_spatial: u8,
    target_temporal: u8,
    max_spatial: u8,
    max_temporal: u8,
    /// Temporal layers forwarded now (tid ≤ this).
    cur_temporal: u8,
    /// VP9 spatial layers forwarded now (sid ≤ this).
    cur_spatial: u8,
    /// Highest temporal layer id seen in the stream.
    max_tid: u8,
    /// Highest spatial layer id seen in the stream.
    max_sid: u8,
}

impl Default for LayerSelector {
    fn default() -> Self {
        Self::new()
    }
}

impl LayerSelector {
    /// Everything: the highest layers.
    pub fn new() -> Self {
        LayerSelector {
            target_spatial: HIGHEST,
            target_temporal: HIGHEST,
            max_spatial: HIGHEST,
            max_temporal: HIGHEST,
            cur_temporal: HIGHEST,
            cur_spatial: HIGHEST,
            max_tid: 0,
            max_sid: 0,
        }
    }

    /// Applies a viewer's (or an allocator's) choice; takes effect at the next switching point.
    pub fn set(&mut self, s: &LayerSelection) {
        self.target_spatial = s.spatial.unwrap_or(HIGHEST);
        self.target_temporal = s.temporal.unwrap_or(HIGHEST);
        self.max_spatial = s.max_spatial.unwrap_or(HIGHEST);
        self.max_temporal = s.max_temporal.unwrap_or(HIGHEST);
    }

    /// The spatial layer wanted (target capped by the maximum).
    pub fn spatial(&self) -> u8 {
        self.target_spatial.min(self.max_spatial)
    }

    /// The temporal layer wanted.
    pub fn temporal(&self) -> u8 {
        self.target_temporal.min(self.max_temporal)
    }

    /// The temporal layers forwarded now.
    pub fn current_temporal(&self) -> u8 {
        self.cur_temporal
    }

    /// The VP9 spatial layers forwarded now.
    pub fn current_spatial(&self) -> u8 {
        self.cur_spatial
    }

    /// Whether the wanted VP9 spatial layer is above what is forwarded (a keyframe is needed).
    pub fn wants_spatial_up(&self) -> bool {
        self.spatial() > self.cur_spatial
    }

    /// Whether temporal layers the stream has are wanted but not yet forwarded (waiting for a
    /// switching point; codecs without one need a keyframe).
    pub fn wants_temporal_up(&self) -> bool {
        self.cur_temporal < self.temporal() && self.cur_temporal < self.max_tid
    }

    /// Decides for a packet of the encoding being forwarded, updating the current layers at
    /// switching points. `spatial_select`: whether VP9 SIDs select spatial layers (a single SVC
    /// stream; in simulcast the encoding is the spatial layer).
    pub fn filter(&mut self, p: &PacketLayers, spatial_select: bool) -> Verdict {
        let want_t = self.temporal();
        let want_s = if spatial_select {
            self.spatial()
        } else {
            HIGHEST
        };
        if let Some(tid) = p.tid {
            self.max_tid = self.max_tid.max(tid);
        }
        if let Some(sid) = p.sid {
            self.max_sid = self.max_sid.max(sid);
        }
        if p.keyframe {
            self.cur_temporal = want_t;
            self.cur_spatial = want_s;
        } else if p.picture_start {
            if want_s < self.cur_spatial {
                self.cur_spatial = want_s;
            }
            if want_t < self.cur_temporal {
                self.cur_temporal = want_t;
            }
        }
        if let Some(tid) = p.tid
            && p.picture_start
            && want_t > self.cur_temporal
        {
            if p.layer_sync && tid > self.cur_temporal && tid <= want_t {
                // VP8 Y: this picture needs only the base layer, so its layer can start here.
                self.cur_temporal = tid;
            } else if p.switching_up && tid <= self.cur_temporal {
                // VP9 U: later pictures of higher layers do not look behind this one.
                self.cur_temporal = want_t;
            }
        }
        if want_t > self.cur_temporal && p.switch_points.0 != 0 {
            // Dependency descriptor: the frame is a switch point for the decode targets of
            // these layers; within the spatial layer forwarded, the highest wanted starts here.
            let sid = if spatial_select {
                self.cur_spatial.min(self.max_sid)
            } else {
                0
            };
            let top = want_t.min(self.max_tid);
            if let Some(t) = (self.cur_temporal + 1..=top)
                .rev()
                .find(|&t| p.switch_points.contains(sid, t))
            {
                self.cur_temporal = t;
            }
        }
        if let Some(tid) = p.tid
            && tid > self.cur_temporal
        {
            return Verdict::Drop {
                picture: p.picture_start,
            };
        }
        if spatial_select && let Some(sid) = p.sid {
            if sid > self.cur_spatial {
                return Verdict::Drop { picture: false };
            }
            return Verdict::Forward {
                set_marker: sid == self.cur_spatial && p.end_of_layer_frame,
            };
        }
        Verdict::Forward { set_marker: false }
    }

    /// A new encoding starts (simulcast switch, on its keyframe): the current layers restart at
    /// the wanted ones.
    pub fn restart(&mut self) {
        self.cur_temporal = self.temporal();
        self.cur_spatial = self.spatial();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vp8(tid: u8, start: bool, sync: bool, key: bool) -> PacketLayers {
        PacketLayers {
            keyframe: key,
            picture_start: start,
            tid: Some(tid),
            layer_sync: sync,
            ..PacketLayers::default()
        }
    }

    fn vp9(sid: u8, tid: u8, start: bool, end: bool, key: bool) -> PacketLayers {
        PacketLayers {
            keyframe: key,
            picture_start: start && sid == 0,
            tid: Some(tid),
            sid: Some(sid),
            end_of_layer_frame: end,
            ..PacketLayers::default()
        }
    }

    const FWD: Verdict = Verdict::Forward { set_marker: false };

    /// The first packet of an AV1 L3T3_KEY delta frame (dependency descriptor): a switch point
    /// for the higher temporal layers of its own spatial layer.
    fn av1_key_svc(sid: u8, tid: u8) -> PacketLayers {
        let mut switch = 0u32;
        for t in tid..3 {
            if t > tid || t == 0 {
                switch |= 1 << (sid * 8 + t);
            }
        }
        PacketLayers {
            picture_start: sid == 0,
            tid: Some(tid),
            sid: Some(sid),
            switch_points: crate::wire::codec::LayerSet(switch),
            ..PacketLayers::default()
        }
    }

    #[test]
    fn av1_temporal_up_starts_at_a_switch_indication_of_the_spatial_layer_forwarded() {
        let mut s = LayerSelector::new();
        s.set(&LayerSelection {
            temporal: Some(0),
            ..LayerSelection::default()
        });
        for sid in 0..3 {
            s.filter(&av1_key_svc(sid, 0), true);
        }
        for sid in 0..3 {
            assert!(matches!(
                s.filter(&av1_key_svc(sid, 2), true),
                Verdict::Drop { .. }
            ));
        }
        assert_eq!(s.current_temporal(), 0);
        s.set(&LayerSelection::default());
        assert!(s.wants_temporal_up());
        // S0/S1 T1 frames are switch points for their own spatial layers, not S2's: T1 stays
        // dropped until S2's own switch point.
        assert!(matches!(
            s.filter(&av1_key_svc(0, 1), true),
            Verdict::Drop { .. }
        ));
        assert!(matches!(
            s.filter(&av1_key_svc(1, 1), true),
            Verdict::Drop { .. }
        ));
        // S2T1: a switch point for S2T2 (it references only T0, later frames of T1 and T2 only
        // it and T0): both layers from here, this frame included.
        assert!(matches!(
            s.filter(&av1_key_svc(2, 1), true),
            Verdict::Forward { .. }
        ));
        assert_eq!(s.current_temporal(), 2);
        assert!(!s.wants_temporal_up());
        assert!(matches!(
            s.filter(&av1_key_svc(2, 2), true),
            Verdict::Forward { .. }
        ));
    }

    #[test]
    fn default_forwards_every_layer() {
        let mut s = LayerSelector::new();
        for tid in [0, 2, 1, 2, 0] {
            assert_eq!(s.filter(&vp8(tid, true, false, false), false), FWD);
        }
    }

    #[test]
    fn temporal_target_drops_higher_tids_from_the_next_picture() {
        let mut s = LayerSelector::new();
        s.set(&LayerSelection {
            temporal: Some(0),
            ..LayerSelection::default()
        });
        assert_eq!(
            s.filter(&vp8(2, true, false, false), false),
            Verdict::Drop { picture: true }
        );
        assert_eq!(
            s.filter(&vp8(2, false, false, false), false),
            Verdict::Drop { picture: false }
        );
        assert_eq!(s.filter(&vp8(0, true, false, false), false), FWD);
        assert_eq!(s.current_temporal(), 0);
    }

    #[test]
    fn temporal_up_waits_for_a_sync_picture() {
        let mut s = LayerSelector::new();
        s.set(&LayerSelection {
            temporal: Some(0),
            ..LayerSelection::default()
        });
        s.filter(&vp8(0, true, false, true), false);
        s.set(&LayerSelection::default());
        // TID 1 without Y: still dropped.
        assert!(matches!(
            s.filter(&vp8(1, true, false, false), false),
            Verdict::Drop { .. }
        ));
        // TID 1 with Y: layer 1 starts here.
        assert_eq!(s.filter(&vp8(1, true, true, false), false), FWD);
        assert_eq!(s.current_temporal(), 1);
        assert!(matches!(
            s.filter(&vp8(2, true, false, false), false),
            Verdict::Drop { .. }
        ));
        assert!(s.wants_temporal_up(), "TID 2 exists and is wanted");
        // A keyframe brings everything.
        s.filter(&vp8(0, true, false, true), false);
        assert_eq!(s.filter(&vp8(2, true, false, false), false), FWD);
        assert!(!s.wants_temporal_up());
    }

    #[test]
    fn vp9_spatial_target_drops_upper_layers_and_marks_the_last_forwarded() {
        let mut s = LayerSelector::new();
        s.set(&LayerSelection {
            spatial: Some(1),
            ..LayerSelection::default()
        });
        assert_eq!(s.filter(&vp9(0, 0, true, true, true), true), FWD);
        assert_eq!(s.filter(&vp9(1, 0, true, false, false), true), FWD);
        assert_eq!(
            s.filter(&vp9(1, 0, false, true, false), true),
            Verdict::Forward { set_marker: true }
        );
        assert_eq!(
            s.filter(&vp9(2, 0, true, true, false), true),
            Verdict::Drop { picture: false }
        );
    }

    #[test]
    fn vp9_spatial_up_waits_for_a_keyframe_and_down_happens_at_a_picture_start() {
        let mut s = LayerSelector::new();
        s.set(&LayerSelection {
            spatial: Some(0),
            ..LayerSelection::default()
        });
        s.filter(&vp9(0, 0, true, true, true), true);
        s.set(&LayerSelection::default());
        assert!(s.wants_spatial_up());
        s.filter(&vp9(0, 0, true, true, false), true);
        assert!(matches!(
            s.filter(&vp9(1, 0, true, true, false), true),
            Verdict::Drop { .. }
        ));
        s.filter(&vp9(0, 0, true, true, true), true);
        assert_eq!(s.filter(&vp9(2, 0, true, true, false), true), FWD);
        s.set(&LayerSelection {
            max_spatial: Some(1),
            ..LayerSelection::default()
        });
        s.filter(&vp9(0, 0, true, true, false), true);
        assert!(matches!(
            s.filter(&vp9(2, 0, true, true, false), true),
            Verdict::Drop { .. }
        ));
    }

    #[test]
    fn simulcast_switches_only_on_a_keyframe_of_the_wanted_encoding() {
        use SimulcastStep::*;
        assert_eq!(simulcast_step(None, 2, 2, false), Ignore);
        assert_eq!(simulcast_step(None, 2, 1, true), Ignore);
        assert_eq!(simulcast_step(None, 2, 2, true), SwitchHere);
        assert_eq!(simulcast_step(Some(2), 0, 2, false), Current);
        assert_eq!(simulcast_step(Some(2), 0, 0, false), Ignore);
        assert_eq!(simulcast_step(Some(2), 0, 0, true), SwitchHere);
    }

    #[test]
    fn wanted_encoding_falls_back_to_the_highest_sending_one() {
        assert_eq!(wanted_encoding(HIGHEST, 3, |_| true), 2);
        assert_eq!(wanted_encoding(HIGHEST, 3, |i| i < 2), 1);
        assert_eq!(wanted_encoding(1, 3, |_| true), 1);
        assert_eq!(wanted_encoding(2, 3, |_| false), 2);
        assert_eq!(wanted_encoding(0, 3, |i| i == 2), 0);
    }
}
