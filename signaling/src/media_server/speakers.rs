//! The active speaker of each channel, from the shards' [`sfu::control::Event::ActiveSpeaker`]
//! reports. A shard chooses among the channel's producers published on it (with its hold against
//! flapping); a channel placed on one shard, as the media server places them while they fit, has
//! one report. When a channel spans shards, the speaker keeps the floor while its shard still
//! names it, and otherwise the loudest speaker any shard names takes it.

use std::collections::HashMap;

use sfu::{ShardId, TrackId};
use uuid::Uuid;

/// One channel's reports.
#[derive(Debug, Default)]
struct ChannelSpeakers {
    /// Each shard's speaker and its level (dBov).
    by_shard: HashMap<ShardId, (TrackId, i8)>,
    current: Option<(TrackId, i8)>,
}

/// The active speakers of every channel with one.
#[derive(Debug, Default)]
pub struct Speakers {
    channels: HashMap<Uuid, ChannelSpeakers>,
}

impl Speakers {
    /// Applies shard `shard`'s report for `channel` (`None`: nobody speaks there). Returns the
    /// channel's new speaker and level when it changed (`Some(None)`: nobody any more).
    pub fn report(
        &mut self,
        channel: Uuid,
        shard: ShardId,
        track: Option<TrackId>,
        level: i8,
    ) -> Option<Option<(TrackId, i8)>> {
        let c = self.channels.entry(channel).or_default();
        match track {
            Some(t) => {
                c.by_shard.insert(shard, (t, level));
            }
            None => {
                c.by_shard.remove(&shard);
            }
        }
        let keep = c
            .current
            .and_then(|(cur, _)| c.by_shard.values().find(|(t, _)| *t == cur).copied());
        let next = keep.or_else(|| {
            c.by_shard
                .values()
                .copied()
                .max_by_key(|&(t, level)| (level, std::cmp::Reverse(t)))
        });
        let changed = next.map(|n| n.0) != c.current.map(|n| n.0);
        c.current = next;
        if c.by_shard.is_empty() {
            self.channels.remove(&channel);
        }
        changed.then_some(next)
    }

    /// The channel's active speaker.
    pub fn current(&self, channel: Uuid) -> Option<TrackId> {
        self.channels.get(&channel)?.current.map(|c| c.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_shard_reports_are_the_channels_speaker() {
        let mut s = Speakers::default();
        let ch = Uuid::new_v4();
        assert_eq!(
            s.report(ch, ShardId(0), Some(TrackId(1)), -10),
            Some(Some((TrackId(1), -10)))
        );
        assert_eq!(s.current(ch), Some(TrackId(1)));
        assert_eq!(
            s.report(ch, ShardId(0), Some(TrackId(2)), -30),
            Some(Some((TrackId(2), -30)))
        );
        assert_eq!(s.report(ch, ShardId(0), None, -127), Some(None));
        assert_eq!(s.current(ch), None);
        assert_eq!(s.report(ch, ShardId(0), None, -127), None, "no change");
    }

    #[test]
    fn across_shards_the_speaker_holds_while_its_shard_names_it() {
        let mut s = Speakers::default();
        let ch = Uuid::new_v4();
        s.report(ch, ShardId(0), Some(TrackId(1)), -30);
        // Louder on another shard: the speaker keeps the floor while shard 0 still names it.
        assert_eq!(s.report(ch, ShardId(1), Some(TrackId(2)), -5), None);
        assert_eq!(s.current(ch), Some(TrackId(1)));
        // Shard 0's speaker stops: shard 1's takes over.
        assert_eq!(
            s.report(ch, ShardId(0), None, -127),
            Some(Some((TrackId(2), -5)))
        );
        // Other channels are separate.
        assert_eq!(s.current(Uuid::new_v4()), None);
    }
}
