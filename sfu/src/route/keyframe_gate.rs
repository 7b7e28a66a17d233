//! Keyframe gating for one subscriber's video stream: nothing is forwarded until a packet that
//! starts a keyframe, so a decoder never receives frames that reference pictures it does not have
//! (the delta frames it would otherwise get are undecodable and only provoke NACKs and PLIs).

use crate::types::MediaKind;

/// Holds a subscriber's stream closed until the next keyframe.
#[derive(Debug, Clone, Copy)]
pub struct KeyframeGate {
    open: bool,
    /// The gate never closes (audio).
    always_open: bool,
    held: u64,
}

impl Default for KeyframeGate {
    fn default() -> Self {
        Self::new()
    }
}

impl KeyframeGate {
    /// A closed gate, for a new video subscriber.
    pub fn new() -> Self {
        Self {
            open: false,
            always_open: false,
            held: 0,
        }
    }

    /// A gate fit for `kind`: closed for video, permanently open for audio (every audio packet
    /// decodes on its own).
    pub fn for_kind(kind: MediaKind) -> Self {
        Self {
            open: kind == MediaKind::Audio,
            always_open: kind == MediaKind::Audio,
            held: 0,
        }
    }

    /// Whether to forward a packet. A closed gate opens at the first packet that starts a
    /// keyframe (and forwards it); an open gate forwards everything.
    pub fn admit(&mut self, is_keyframe_start: bool) -> bool {
        if !self.open && is_keyframe_start {
            self.open = true;
        }
        if !self.open {
            self.held += 1;
        }
        self.open
    }

    /// Closes the gate again: the source changed and the subscriber needs a new keyframe.
    pub fn reset(&mut self) {
        self.open = self.always_open;
    }

    /// Whether the gate is open.
    pub fn is_open(&self) -> bool {
        self.open
    }

    /// Whether the gate waits for a keyframe (so one should be requested from the publisher).
    pub fn wants_keyframe(&self) -> bool {
        !self.open
    }

    /// Packets held back since creation.
    pub fn held(&self) -> u64 {
        self.held
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_gate_holds_delta_frames_and_wants_keyframe() {
        let mut g = KeyframeGate::new();
        assert!(g.wants_keyframe());
        assert!(!g.admit(false));
        assert!(!g.admit(false));
        assert_eq!(g.held(), 2);
    }

    #[test]
    fn keyframe_start_opens_the_gate_for_everything_after() {
        let mut g = KeyframeGate::new();
        assert!(!g.admit(false));
        assert!(g.admit(true));
        assert!(g.admit(false));
        assert!(g.admit(false));
        assert!(!g.wants_keyframe());
        assert_eq!(g.held(), 1);
    }

    #[test]
    fn reset_closes_until_the_next_keyframe() {
        let mut g = KeyframeGate::new();
        g.admit(true);
        g.reset();
        assert!(g.wants_keyframe());
        assert!(!g.admit(false));
        assert!(g.admit(true));
    }

    #[test]
    fn audio_gate_never_closes() {
        let mut g = KeyframeGate::for_kind(MediaKind::Audio);
        assert!(!g.wants_keyframe());
        assert!(g.admit(false));
        g.reset();
        assert!(g.admit(false));
    }

    #[test]
    fn video_gate_for_kind_starts_closed() {
        let mut g = KeyframeGate::for_kind(MediaKind::Video);
        assert!(!g.admit(false));
    }
}
