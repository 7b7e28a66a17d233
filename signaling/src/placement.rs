//! Which shard a new session goes to: the least loaded, except that a stream's sessions stay on
//! the stream's shard while it has room (DESIGN.md "Between shards").

use sfu::ShardId;

use crate::config::Placement;

/// Picks a shard given each shard's session count.
#[derive(Debug, Clone, Copy)]
pub struct Placer {
    pub policy: Placement,
    pub max_per_shard: usize,
}

impl Placer {
    /// `home`: the shard the stream already lives on, if any. None when every shard is full.
    pub fn choose(&self, loads: &[usize], home: Option<ShardId>) -> Option<ShardId> {
        if self.policy == Placement::Stream
            && let Some(h) = home
            && loads
                .get(h.0 as usize)
                .is_some_and(|&l| l < self.max_per_shard)
        {
            return Some(h);
        }
        loads
            .iter()
            .enumerate()
            .filter(|(_, l)| **l < self.max_per_shard)
            .min_by_key(|(i, l)| (**l, *i))
            .map(|(i, _)| ShardId(i as u16))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_policy_keeps_viewers_home_until_full() {
        let p = Placer {
            policy: Placement::Stream,
            max_per_shard: 2,
        };
        assert_eq!(p.choose(&[1, 0], Some(ShardId(0))), Some(ShardId(0)));
        assert_eq!(
            p.choose(&[2, 0], Some(ShardId(0))),
            Some(ShardId(1)),
            "spills when home is full"
        );
        assert_eq!(p.choose(&[2, 2], Some(ShardId(0))), None);
    }

    #[test]
    fn spread_policy_picks_least_loaded() {
        let p = Placer {
            policy: Placement::Spread,
            max_per_shard: 10,
        };
        assert_eq!(p.choose(&[1, 0, 0], Some(ShardId(0))), Some(ShardId(1)));
        assert_eq!(p.choose(&[0, 0], None), Some(ShardId(0)));
    }
}
