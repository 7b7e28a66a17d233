//! Who joins, where, and in which order: publishers first (room by room), then subscribers
//! round-robin over the publishers so every audience grows evenly during the ramp.

use crate::target::{JoinRequest, Role};

/// The stream name of the publisher of rank `rank` in room `room`: `PREFIX-ROOM`, and
/// `PREFIX-ROOM-RANK` for the second and later publishers of a room.
pub fn stream_name(prefix: &str, room: usize, rank: usize) -> String {
    if rank == 0 {
        format!("{prefix}-{room}")
    } else {
        format!("{prefix}-{room}-{rank}")
    }
}

/// Every join of a run, in order. Publisher `p` sits in room `p % rooms`; clients are numbered
/// in join order from 0.
pub fn plan(prefix: &str, publishers: usize, subscribers: usize, rooms: usize) -> Vec<JoinRequest> {
    let rooms = rooms.clamp(1, publishers.max(1));
    let stream = |p: usize| stream_name(prefix, p % rooms, p / rooms);
    let mut out = Vec::with_capacity(publishers * (1 + subscribers));
    for p in 0..publishers {
        out.push(JoinRequest {
            role: Role::Publisher,
            client: out.len(),
            room: p % rooms,
            publisher: p,
            stream: stream(p),
        });
    }
    for _ in 0..subscribers {
        for p in 0..publishers {
            out.push(JoinRequest {
                role: Role::Subscriber,
                client: out.len(),
                room: p % rooms,
                publisher: p,
                stream: stream(p),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publishers_come_first_and_subscribers_spread_over_them() {
        let p = plan("lg", 2, 3, 2);
        assert_eq!(p.len(), 8);
        assert!(p[..2].iter().all(|r| r.role == Role::Publisher));
        assert_eq!(
            p.iter().map(|r| r.stream.as_str()).collect::<Vec<_>>(),
            [
                "lg-0", "lg-1", "lg-0", "lg-1", "lg-0", "lg-1", "lg-0", "lg-1"
            ]
        );
        assert!(p.iter().enumerate().all(|(i, r)| r.client == i));
        assert_eq!(p.iter().filter(|r| r.publisher == 1).count(), 4);
    }

    #[test]
    fn fewer_rooms_than_publishers_give_distinct_names_per_room() {
        let p = plan("x", 4, 0, 2);
        let names: Vec<&str> = p.iter().map(|r| r.stream.as_str()).collect();
        assert_eq!(names, ["x-0", "x-1", "x-0-1", "x-1-1"]);
        assert_eq!(p.iter().map(|r| r.room).collect::<Vec<_>>(), [0, 1, 0, 1]);
        // More rooms than publishers is clamped.
        assert_eq!(plan("x", 1, 0, 5)[0].stream, "x-0");
    }
}
