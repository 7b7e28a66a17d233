//! What the allocator knows about one media section of a viewer, and what it decides for it.

use std::time::Duration;

use crate::control::{MAX_SIMULCAST_LAYERS, TrackContent};
use crate::{Bitrate, MediaKind};

/// Most media sections of one viewer the allocator considers; further ones get nothing decided
/// (they keep what they had).
pub const MAX_SECTIONS: usize = 16;

/// The layer a section receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Choice {
    /// Nothing decided yet (no source, or audio).
    #[default]
    Unset,
    /// Video paused: even its lowest layer does not fit.
    Paused,
    /// A spatial layer (rank, 0 = lowest) and, when not every temporal layer, the highest
    /// temporal layer id.
    Layer { spatial: u8, temporal: Option<u8> },
}

impl Choice {
    /// The spatial layer, when one is chosen.
    pub fn spatial(self) -> Option<u8> {
        match self {
            Choice::Layer { spatial, .. } => Some(spatial),
            _ => None,
        }
    }

    /// The temporal cap, when a layer is chosen and capped.
    pub fn temporal(self) -> Option<u8> {
        match self {
            Choice::Layer { temporal, .. } => temporal,
            _ => None,
        }
    }
}

/// One media section as the allocator sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SectionInput {
    pub kind: MediaKind,
    pub content: TrackContent,
    /// Audio: `rates[0]` is its rate. Video: the rate of each spatial layer, lowest first
    /// (`None`: not measured yet).
    pub rates: [Option<Bitrate>; MAX_SIMULCAST_LAYERS],
    /// Spatial layers the source has (0: no source bound).
    pub layer_count: u8,
    /// The rate of the lowest spatial layer's base temporal layer, when the source has temporal
    /// layers (VP8/VP9) and it was measured.
    pub base_temporal: Option<Bitrate>,
    /// The highest spatial layer allowed (the viewer's explicit selection, its quality cap's
    /// height); `None`: every layer.
    pub max_spatial: Option<u8>,
    /// The highest temporal layer allowed; `None`: every layer.
    pub max_temporal: Option<u8>,
    /// What the section receives now.
    pub current: Choice,
    /// Time since the section last went down (or paused); `None`: never.
    pub since_down: Option<Duration>,
    /// Time since the section last went up (or resumed); `None`: never.
    pub since_up: Option<Duration>,
    /// How long after going down it may not go up; `None`: the configured hold.
    pub hold: Option<Duration>,
}

impl SectionInput {
    /// An audio section of rate `rate`.
    pub fn audio(rate: Option<Bitrate>) -> Self {
        let mut rates = [None; MAX_SIMULCAST_LAYERS];
        rates[0] = rate;
        SectionInput {
            kind: MediaKind::Audio,
            content: TrackContent::Camera,
            rates,
            layer_count: u8::from(rate.is_some()),
            base_temporal: None,
            max_spatial: None,
            max_temporal: None,
            current: Choice::Unset,
            since_down: None,
            since_up: None,
            hold: None,
        }
    }

    /// A video section with spatial layers of `rates` (lowest first), nothing capped, nothing
    /// chosen yet.
    pub fn video(content: TrackContent, rates: &[Option<Bitrate>]) -> Self {
        let mut r = [None; MAX_SIMULCAST_LAYERS];
        let n = rates.len().min(MAX_SIMULCAST_LAYERS);
        r[..n].copy_from_slice(&rates[..n]);
        SectionInput {
            kind: MediaKind::Video,
            content,
            rates: r,
            layer_count: n as u8,
            base_temporal: None,
            max_spatial: None,
            max_temporal: None,
            current: Choice::Unset,
            since_down: None,
            since_up: None,
            hold: None,
        }
    }

    /// The highest spatial layer the section may get (None: no source).
    pub fn top_allowed(&self) -> Option<u8> {
        let top = self.layer_count.checked_sub(1)?;
        Some(self.max_spatial.map_or(top, |m| m.min(top)))
    }
}

/// What the allocator decided for one section.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SectionResult {
    pub choice: Choice,
    /// The rate budgeted for it (the chosen layer's rate).
    pub allocated: Bitrate,
    /// What it would get with no bandwidth limit (within its caps and the viewer's video cap).
    pub best: Choice,
    /// The rate of `best`.
    pub best_rate: Bitrate,
}
