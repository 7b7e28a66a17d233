//! Packet grouping for delay-based estimation (draft-ietf-rmcat-gcc-02 §5.2, libwebrtc
//! `InterArrivalDelta`): packets sent within 5 ms form one group, and a burst that arrives
//! faster than it was sent joins the group too; each completed group yields the send-time and
//! arrival-time deltas to the group before it.
//!
//! Times are microseconds on two unrelated clocks (the sender's and the receiver's); only
//! differences within each clock are used.

/// Packets sent within this span of the group's first packet belong to the group.
pub const GROUP_SPAN_US: i64 = 5_000;
/// Arrival gaps up to this long within a burst keep packets in the same group.
const BURST_DELTA_US: i64 = 5_000;
/// Longest burst merged into one group.
const MAX_BURST_US: i64 = 100_000;
/// An arrival-time jump larger than this (relative to the send-time jump) resets the grouping:
/// the receiver's clock or the path changed.
const ARRIVAL_OFFSET_RESET_US: i64 = 3_000_000;
/// Consecutive groups that arrive before their predecessor before the grouping is reset.
const REORDERED_RESET: u32 = 3;

/// One group of packets.
#[derive(Debug, Clone, Copy)]
struct Group {
    first_send_us: i64,
    last_send_us: i64,
    first_arrival_us: i64,
    last_arrival_us: i64,
    size: usize,
}

impl Group {
    fn new(send_us: i64, arrival_us: i64, size: usize) -> Self {
        Group {
            first_send_us: send_us,
            last_send_us: send_us,
            first_arrival_us: arrival_us,
            last_arrival_us: arrival_us,
            size,
        }
    }
}

/// Differences between two consecutive packet groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupDeltas {
    /// Send time of the last packet of the newer group minus that of the older one.
    pub send_delta_us: i64,
    /// Arrival time of the last packet of the newer group minus that of the older one.
    pub arrival_delta_us: i64,
    /// Size of the newer group minus the older one, in bytes.
    pub size_delta: i64,
    /// Arrival time of the newer group's last packet.
    pub arrival_us: i64,
}

/// Groups packets and reports deltas between completed groups. Fixed-size state.
#[derive(Debug, Clone, Default)]
pub struct InterArrival {
    current: Option<Group>,
    prev: Option<Group>,
    reordered: u32,
}

impl InterArrival {
    /// An empty grouping.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets all groups.
    pub fn reset(&mut self) {
        *self = Self::default();
    }

    /// Adds one packet (in the order feedback reports them). Returns the deltas between the two
    /// previous groups when this packet starts a new group and there were two to compare.
    pub fn on_packet(&mut self, send_us: i64, arrival_us: i64, size: usize) -> Option<GroupDeltas> {
        let Some(cur) = self.current.as_mut() else {
            self.current = Some(Group::new(send_us, arrival_us, size));
            return None;
        };
        if send_us < cur.first_send_us {
            // Sent before the current group began: reordered, ignored as libwebrtc does.
            return None;
        }
        if !Self::starts_new_group(cur, send_us, arrival_us) {
            cur.last_send_us = cur.last_send_us.max(send_us);
            cur.last_arrival_us = cur.last_arrival_us.max(arrival_us);
            cur.size += size;
            return None;
        }
        let cur = *cur;
        let mut out = None;
        if let Some(prev) = self.prev {
            let send_delta_us = cur.last_send_us - prev.last_send_us;
            let arrival_delta_us = cur.last_arrival_us - prev.last_arrival_us;
            if arrival_delta_us - send_delta_us > ARRIVAL_OFFSET_RESET_US {
                self.reset();
                self.current = Some(Group::new(send_us, arrival_us, size));
                return None;
            }
            if arrival_delta_us < 0 {
                self.reordered += 1;
                if self.reordered >= REORDERED_RESET {
                    self.reset();
                    self.current = Some(Group::new(send_us, arrival_us, size));
                    return None;
                }
                // Keep the older group as the reference; drop the reordered one.
                self.current = Some(Group::new(send_us, arrival_us, size));
                return None;
            }
            self.reordered = 0;
            out = Some(GroupDeltas {
                send_delta_us,
                arrival_delta_us,
                size_delta: cur.size as i64 - prev.size as i64,
                arrival_us: cur.last_arrival_us,
            });
        }
        self.prev = Some(cur);
        self.current = Some(Group::new(send_us, arrival_us, size));
        out
    }

    fn starts_new_group(cur: &Group, send_us: i64, arrival_us: i64) -> bool {
        if Self::in_burst(cur, send_us, arrival_us) {
            return false;
        }
        send_us - cur.first_send_us > GROUP_SPAN_US
    }

    /// A packet that arrived sooner after the group than it was sent after it (the path was
    /// queueing and released a burst) belongs to the group.
    fn in_burst(cur: &Group, send_us: i64, arrival_us: i64) -> bool {
        let arrival_delta = arrival_us - cur.last_arrival_us;
        let send_delta = send_us - cur.last_send_us;
        if send_delta == 0 {
            return true;
        }
        let propagation_delta = arrival_delta - send_delta;
        propagation_delta < 0
            && arrival_delta <= BURST_DELTA_US
            && arrival_us - cur.first_arrival_us < MAX_BURST_US
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_within_five_milliseconds_form_one_group() {
        let mut ia = InterArrival::new();
        // Group A: sent at 0, 2, 4 ms; group B: 10, 12 ms; group C starts at 20 ms.
        let mut outs = Vec::new();
        for (s, a) in [(0, 50), (2, 52), (4, 54), (10, 60), (12, 63), (20, 70)] {
            outs.push(ia.on_packet(s * 1000, a * 1000, 100));
        }
        let got: Vec<_> = outs.into_iter().flatten().collect();
        assert_eq!(got.len(), 1, "only B is complete with a predecessor");
        assert_eq!(got[0].send_delta_us, 8_000, "12 ms - 4 ms");
        assert_eq!(got[0].arrival_delta_us, 9_000, "63 ms - 54 ms");
        assert_eq!(got[0].size_delta, -100);
    }

    #[test]
    fn a_compressed_burst_joins_the_current_group() {
        let mut ia = InterArrival::new();
        ia.on_packet(0, 100_000, 100);
        // Sent 8 ms later but arrives 1 ms later: a queue released it, same group.
        assert!(ia.on_packet(8_000, 101_000, 100).is_none());
        ia.on_packet(30_000, 130_000, 100);
        let d = ia.on_packet(60_000, 160_000, 100).expect("deltas");
        assert_eq!(
            d.send_delta_us, 22_000,
            "the first group ends at the burst's packet"
        );
    }

    #[test]
    fn reordered_packets_are_ignored() {
        let mut ia = InterArrival::new();
        ia.on_packet(10_000, 10_000, 100);
        assert!(ia.on_packet(0, 12_000, 100).is_none());
        ia.on_packet(20_000, 20_000, 100);
        let d = ia.on_packet(30_000, 30_000, 100).expect("deltas");
        assert_eq!(d.send_delta_us, 10_000);
        assert_eq!(d.size_delta, 0, "the reordered packet was not counted");
    }
}
